#pragma once
// The client side of the HTTP/1.1 upgrade (RFC 6455 4.1): the request, and the checks on the
// server's answer: status 101, Upgrade and Connection tokens, Sec-WebSocket-Accept derived from
// our key, and no extension or subprotocol we did not ask for.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace wscoro::bench::epoll {

/// A Sec-WebSocket-Key: 16 bytes from the caller's generator, base64-encoded.
std::string make_key(std::uint64_t random_a, std::uint64_t random_b);

/// base64(SHA-1(key + the RFC's GUID)): what the server must answer to `key`.
std::string accept_for(std::string_view key);

/// The GET request; `host` is the Host header's value (host[:port]), `target` the path and query.
std::string upgrade_request(std::string_view host, std::string_view target, std::string_view key);

/// Bounds the response head (a server that never ends its head must not grow our buffer).
inline constexpr std::size_t max_response_head = 8192;

struct upgrade_check {
    enum status { incomplete, accepted, rejected } result = incomplete;
    std::size_t head_size = 0;  ///< accepted: bytes of the head; frames may follow it
    std::string why;            ///< rejected: for a human
};

/// Checks the response received so far (`data` starts at its first byte) against `accept`.
upgrade_check check_upgrade_response(std::string_view data, std::string_view accept);

}  // namespace wscoro::bench::epoll
