#pragma once
// Where the generator connects: a ws:// URL taken apart, and its host resolved once, before any
// connection is opened (every connection then goes to the same address).
#include <sys/socket.h>

#include <string>

namespace wscoro::bench::epoll {

struct ws_url_parts {
    std::string host;          ///< without the brackets of an IPv6 literal
    std::string port = "80";   ///< decimal
    std::string host_header;   ///< the Host header: host[:port] as written in the URL
    std::string target = "/";  ///< path and query
};

/// ws://host[:port][/path][?query]. Returns why the URL is unusable; empty when it is fine.
/// wss:// is refused: this generator speaks plain TCP only.
std::string parse_ws_url(std::string const& url, ws_url_parts& out);

struct endpoint {
    ws_url_parts url;
    sockaddr_storage address{};
    socklen_t address_size = 0;
};

/// Parses and resolves `url` (the first address getaddrinfo gives). Empty on success, else why.
std::string resolve(std::string const& url, endpoint& out);

}  // namespace wscoro::bench::epoll
