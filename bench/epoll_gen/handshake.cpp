#include "handshake.hpp"

#include <boost/beast/core/detail/base64.hpp>
#include <boost/beast/core/detail/sha1.hpp>

#include <algorithm>
#include <cctype>

namespace wscoro::bench::epoll {

namespace {

namespace base64 = boost::beast::detail::base64;

bool iequals(std::string_view a, std::string_view b) noexcept {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::tolower(static_cast<unsigned char>(x)) ==
                      std::tolower(static_cast<unsigned char>(y));
           });
}

std::string_view trim(std::string_view s) noexcept {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

// Whether the comma-separated header value holds `token` (case-insensitive): "keep-alive, Upgrade".
bool has_token(std::string_view list, std::string_view token) noexcept {
    while (!list.empty()) {
        auto const comma = list.find(',');
        if (iequals(trim(list.substr(0, comma)), token)) return true;
        if (comma == std::string_view::npos) break;
        list.remove_prefix(comma + 1);
    }
    return false;
}

upgrade_check reject(std::string why) { return {upgrade_check::rejected, 0, std::move(why)}; }

// The first line or header, made printable and short, for an error message.
std::string shown(std::string_view s) {
    std::string out;
    for (char c : s.substr(0, 80)) out += std::isprint(static_cast<unsigned char>(c)) ? c : '?';
    return out;
}

}  // namespace

std::string make_key(std::uint64_t random_a, std::uint64_t random_b) {
    unsigned char raw[16];
    for (unsigned i = 0; i < 8; ++i) {
        raw[i] = static_cast<unsigned char>(random_a >> (8 * i));
        raw[8 + i] = static_cast<unsigned char>(random_b >> (8 * i));
    }
    std::string key(base64::encoded_size(sizeof raw), '\0');
    key.resize(base64::encode(key.data(), raw, sizeof raw));
    return key;
}

std::string accept_for(std::string_view key) {
    static constexpr std::string_view guid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    boost::beast::detail::sha1_context ctx;
    boost::beast::detail::init(ctx);
    boost::beast::detail::update(ctx, key.data(), key.size());
    boost::beast::detail::update(ctx, guid.data(), guid.size());
    char digest[boost::beast::detail::sha1_context::digest_size];
    boost::beast::detail::finish(ctx, digest);
    std::string accept(base64::encoded_size(sizeof digest), '\0');
    accept.resize(base64::encode(accept.data(), digest, sizeof digest));
    return accept;
}

std::string upgrade_request(std::string_view host, std::string_view target, std::string_view key) {
    std::string req;
    req.reserve(160 + host.size() + target.size());
    req.append("GET ").append(target).append(" HTTP/1.1\r\nHost: ").append(host);
    req.append("\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ").append(key);
    req.append("\r\nSec-WebSocket-Version: 13\r\nUser-Agent: wscoro-bench-epoll\r\n\r\n");
    return req;
}

upgrade_check check_upgrade_response(std::string_view data, std::string_view accept) {
    auto const head_end = data.find("\r\n\r\n");
    if (head_end == std::string_view::npos) {
        if (data.size() >= max_response_head)
            return reject("response head longer than " + std::to_string(max_response_head) +
                          " bytes");
        return {};
    }
    std::string_view head = data.substr(0, head_end + 2);  // every line ends with CRLF
    auto const line_end = head.find("\r\n");
    auto const status_line = head.substr(0, line_end);
    head.remove_prefix(line_end + 2);
    // "HTTP/1.1 101 Switching Protocols": the reason phrase is free text.
    if (status_line.size() < 12 || status_line.substr(0, 9) != "HTTP/1.1 " ||
        (status_line.size() > 12 && status_line[12] != ' '))
        return reject("not an HTTP/1.1 status line: \"" + shown(status_line) + "\"");
    if (status_line.substr(9, 3) != "101")
        return reject("upgrade refused: \"" + shown(status_line) + "\"");

    bool upgrade = false, connection = false;
    std::string_view got_accept;
    bool have_accept = false;
    while (!head.empty()) {
        auto const eol = head.find("\r\n");
        auto const line = head.substr(0, eol);
        head.remove_prefix(eol + 2);
        auto const colon = line.find(':');
        if (colon == std::string_view::npos || colon == 0)
            return reject("malformed header line \"" + shown(line) + "\"");
        auto const name = line.substr(0, colon);
        auto const value = trim(line.substr(colon + 1));
        if (iequals(name, "Upgrade")) {
            upgrade = upgrade || has_token(value, "websocket");
        } else if (iequals(name, "Connection")) {
            connection = connection || has_token(value, "upgrade");
        } else if (iequals(name, "Sec-WebSocket-Accept")) {
            if (have_accept) return reject("two Sec-WebSocket-Accept headers");
            have_accept = true;
            got_accept = value;
        } else if (iequals(name, "Sec-WebSocket-Extensions")) {
            return reject("server chose an extension we did not offer: \"" + shown(value) + "\"");
        } else if (iequals(name, "Sec-WebSocket-Protocol")) {
            return reject("server chose a subprotocol we did not offer: \"" + shown(value) + "\"");
        }
    }
    if (!upgrade) return reject("101 without \"Upgrade: websocket\"");
    if (!connection) return reject("101 without \"Connection: Upgrade\"");
    if (!have_accept) return reject("101 without Sec-WebSocket-Accept");
    if (got_accept != accept)
        return reject("wrong Sec-WebSocket-Accept \"" + shown(got_accept) + "\", expected \"" +
                      std::string{accept} + "\"");
    return {upgrade_check::accepted, head_end + 4, {}};
}

}  // namespace wscoro::bench::epoll
