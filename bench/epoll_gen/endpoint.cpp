#include "endpoint.hpp"

#include <netdb.h>

#include <cstring>

namespace wscoro::bench::epoll {

std::string parse_ws_url(std::string const& url, ws_url_parts& out) {
    constexpr std::string_view scheme = "ws://";
    std::string_view rest = url;
    if (rest.substr(0, 6) == "wss://")
        return "wss:// needs TLS, which wscoro-bench-epoll does not speak; use ws://";
    if (rest.substr(0, scheme.size()) != scheme) return "expected ws://host[:port][/path]";
    rest.remove_prefix(scheme.size());
    auto const authority_end = rest.find_first_of("/?#");
    auto const authority = rest.substr(0, authority_end);
    rest.remove_prefix(authority_end == std::string_view::npos ? rest.size() : authority_end);
    if (authority.empty()) return "no host in the URL";
    if (authority.find('@') != std::string_view::npos) return "user information is not supported";

    std::string_view host = authority, port;
    bool has_port = false;
    if (authority.front() == '[') {  // [v6]:port
        auto const close = authority.find(']');
        if (close == std::string_view::npos) return "unterminated IPv6 literal";
        host = authority.substr(1, close - 1);
        auto const after = authority.substr(close + 1);
        if (!after.empty()) {
            if (after.front() != ':') return "unexpected characters after the IPv6 literal";
            port = after.substr(1);
            has_port = true;
        }
    } else if (auto const colon = authority.rfind(':'); colon != std::string_view::npos) {
        host = authority.substr(0, colon);
        port = authority.substr(colon + 1);
        has_port = true;
    }
    if (host.empty()) return "no host in the URL";
    if (has_port) {
        if (port.empty() || port.size() > 5 ||
            port.find_first_not_of("0123456789") != std::string_view::npos ||
            std::stoul(std::string{port}) == 0 || std::stoul(std::string{port}) > 65535)
            return "bad port \"" + std::string{port} + "\"";
        out.port = port;
    }
    out.host = host;
    out.host_header = authority;
    if (rest.find('#') != std::string_view::npos) rest = rest.substr(0, rest.find('#'));
    out.target = rest.empty() || rest.front() == '?' ? "/" + std::string{rest} : std::string{rest};
    return {};
}

std::string resolve(std::string const& url, endpoint& out) {
    if (auto why = parse_ws_url(url, out.url); !why.empty()) return why;
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* found = nullptr;
    if (int const rc = ::getaddrinfo(out.url.host.c_str(), out.url.port.c_str(), &hints, &found))
        return "cannot resolve \"" + out.url.host + "\": " + ::gai_strerror(rc);
    std::memcpy(&out.address, found->ai_addr, found->ai_addrlen);
    out.address_size = found->ai_addrlen;
    ::freeaddrinfo(found);
    return {};
}

}  // namespace wscoro::bench::epoll
