// The JSON that wscoro parses from peers: the chat mode of `wscoro serve` (apps/wscoro/
// chat_protocol.hpp), and what it broadcasts back through message::json. Whatever a client sends,
// the server answers with JSON that parses back to what it meant, in valid UTF-8 (a peer closes
// the connection with 1007 on a text frame that is not).
//
// Input: the message's payload, then one option byte at the end: binary or text.
#include "wscoro/chat_protocol.hpp"

#include "fuzz_check.hpp"

#include <boost/beast/websocket/detail/utf8_checker.hpp>
#include <boost/json/parse.hpp>
#include <fuzzer/FuzzedDataProvider.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace {

namespace json = boost::json;
using wscoro::cli::chat_request;

bool valid_utf8(std::string_view s) { return boost::beast::websocket::detail::check_utf8(s.data(), s.size()); }

/// What a peer receives: a text message that parses back to `v`.
void require_round_trip(json::value const& v) {
    auto const m = wscoro::message::json(v);
    WSCORO_FUZZ_REQUIRE(m.is_text());
    WSCORO_FUZZ_REQUIRE(valid_utf8(m.data()));
    boost::system::error_code ec;
    auto const back = json::parse(m.data(), ec);
    WSCORO_FUZZ_REQUIRE(!ec);
    WSCORO_FUZZ_REQUIRE(back == v);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(std::uint8_t const* data, std::size_t size) {
    FuzzedDataProvider in{data, size};
    bool const binary = in.ConsumeBool();
    std::string payload = in.ConsumeRemainingBytesAsString();
    // Beast closes the connection on a text message that is not UTF-8 (1007): the chat never sees one.
    bool const utf8 = valid_utf8(payload);
    if (!binary && !utf8) return 0;

    auto const m = binary ? wscoro::message::binary(payload) : wscoro::message::text(payload);
    auto const req = wscoro::cli::parse_chat_message(m);
    WSCORO_FUZZ_REQUIRE((req.what == chat_request::kind::relay) == binary);
    switch (req.what) {
    case chat_request::kind::ignore:
    case chat_request::kind::relay:
        break;
    case chat_request::kind::nick:
        WSCORO_FUZZ_REQUIRE(!req.nick.empty() && req.nick.size() <= wscoro::cli::max_nick_size);
        WSCORO_FUZZ_REQUIRE(std::none_of(req.nick.begin(), req.nick.end(), [](char c) {
            return static_cast<unsigned char>(c) < 0x20 || c == 0x7f;
        }));
        require_round_trip(wscoro::cli::nick_event("guest-1", req.nick));
        break;
    case chat_request::kind::say: {
        // Plain text (anything but a JSON object) is said as it is.
        boost::system::error_code ec;
        auto const parsed = json::parse(payload, ec);
        if (ec || !parsed.is_object()) WSCORO_FUZZ_REQUIRE(req.text == payload);
        require_round_trip(wscoro::cli::say_event("guest-1", req.text));
        break;
    }
    }
    // Any string can become a nickname ({"type":"nick","nick":...}); cleaning keeps it UTF-8.
    auto const nick = wscoro::cli::clean_nick(payload);
    WSCORO_FUZZ_REQUIRE(nick.size() <= wscoro::cli::max_nick_size);
    if (utf8 && !nick.empty()) require_round_trip(wscoro::cli::say_event(nick, "hi"));
    return 0;
}
