#include <wscoro/url.hpp>

#include <boost/url/parse.hpp>

#include <algorithm>
#include <cctype>
#include <charconv>

namespace wscoro {

namespace {

// A host name goes to the resolver and into the Host header as it is, so after percent-decoding
// it may only have the characters RFC 3986 allows in a name unencoded: "%2F" would move the path
// into the host, "%0D%0A" split the header, "%00" cut the name, "%3A" make it look like IPv6.
bool plain_host_name(std::string_view host) {
    constexpr std::string_view punctuation = "-._~!$&'()*+,;=";
    return std::all_of(host.begin(), host.end(), [&](char c) {  // ASCII, whatever the locale
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               punctuation.find(c) != punctuation.npos;
    });
}

}  // namespace

std::string ws_url::host_header() const {
    std::string h = host.find(':') != std::string::npos ? "[" + host + "]" : host;
    if (port != 80) h += ":" + std::to_string(port);
    return h;
}

error_code parse_url(std::string_view text, ws_url& out, diagnostics& diag) {
    auto fail = [&](std::string why) {
        diag.message = "invalid URL \"" + std::string{text} + "\": " + std::move(why);
        return error_code{error::invalid_url};
    };
    if (text.empty()) return fail("empty");
    auto parsed = boost::urls::parse_uri(text);
    if (!parsed) return fail("not a URL (expected ws://host[:port]/path)");
    auto const& u = *parsed;
    ws_url r;
    r.scheme = u.scheme();
    for (auto& c : r.scheme) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (r.scheme == "wss") return fail("wss:// (TLS) is not supported yet; use ws://");
    if (r.scheme != "ws") return fail("scheme must be ws://, not " + r.scheme + "://");
    if (!u.has_authority() || u.encoded_host().empty()) return fail("missing host");
    if (u.has_userinfo()) return fail("user information is not supported");
    if (u.host_type() == boost::urls::host_type::ipv6) r.host = std::string{u.host_address()};
    else if (u.host_type() == boost::urls::host_type::ipvfuture) return fail("unsupported host");
    else r.host = u.host();  // decoded
    if (!plain_host_name(r.host) && u.host_type() != boost::urls::host_type::ipv6)
        return fail("the host name has characters a host name cannot have");
    if (u.has_port()) {
        auto p = u.port();
        unsigned v = 0;
        auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), v);
        if (p.empty() || ec != std::errc{} || end != p.data() + p.size() || v == 0 || v > 65535)
            return fail("port must be 1-65535");
        r.port = static_cast<std::uint16_t>(v);
    }
    if (u.has_fragment()) return fail("a fragment (#...) is not allowed in a WebSocket URL");
    // After an authority the path is empty or starts with '/' (RFC 3986 3.3); Boost.URL 1.81 takes
    // "ws://h:80:/x" with the path ":/x", which would make an invalid request line.
    auto const path = u.encoded_path();
    if (!path.empty() && path.front() != '/') return fail("the path must start with /");
    r.target = path.empty() ? std::string{"/"} : std::string{path};
    if (u.has_query()) r.target += "?" + std::string{u.encoded_query()};
    out = std::move(r);
    return {};
}

}  // namespace wscoro
