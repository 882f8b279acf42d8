// wscoro::parse_url: the client's parser of the URL it is given (client_config::url, `wscoro
// client URL`). Its result becomes the Host header and the request line of the upgrade request.
#include <wscoro/url.hpp>

#include "fuzz_check.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace {

// Nothing that would end the request line or a header, or split one into two.
bool fits_in_http(std::string_view s) {
    return std::none_of(s.begin(), s.end(), [](char c) {
        auto const b = static_cast<unsigned char>(c);
        return b <= 0x20 || b == 0x7f;
    });
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(std::uint8_t const* data, std::size_t size) {
    std::string_view const text{reinterpret_cast<char const*>(data), size};
    wscoro::ws_url url;
    wscoro::diagnostics diag;
    if (auto ec = wscoro::parse_url(text, url, diag)) {
        WSCORO_FUZZ_REQUIRE(ec == wscoro::error::invalid_url);
        WSCORO_FUZZ_REQUIRE(!diag.message.empty());
        return 0;
    }
    WSCORO_FUZZ_REQUIRE(url.scheme == "ws");
    WSCORO_FUZZ_REQUIRE(!url.host.empty());
    WSCORO_FUZZ_REQUIRE(url.port != 0);
    WSCORO_FUZZ_REQUIRE(!url.target.empty() && url.target.front() == '/');
    WSCORO_FUZZ_REQUIRE(fits_in_http(url.host_header()));
    WSCORO_FUZZ_REQUIRE(fits_in_http(url.target));

    // What the client sends (Host header and target) names the same endpoint when parsed again.
    std::string const again = "ws://" + url.host_header() + url.target;
    wscoro::ws_url back;
    wscoro::diagnostics back_diag;
    WSCORO_FUZZ_REQUIRE(!wscoro::parse_url(again, back, back_diag));
    WSCORO_FUZZ_REQUIRE(back.host == url.host);
    WSCORO_FUZZ_REQUIRE(back.port == url.port);
    WSCORO_FUZZ_REQUIRE(back.target == url.target);
    return 0;
}
