#pragma once
// Configuration. server_config and client_config keep the names and fields of the Go component
// (WSServerConfig / WSClientConfig) so that a port finds everything; connection_options is the
// part both share, applied to every connection.
#include <wscoro/error.hpp>
#include <wscoro/http.hpp>

#include <chrono>
#include <cstddef>
#include <functional>
#include <string>

namespace wscoro {

using namespace std::chrono_literals;
using duration = std::chrono::milliseconds;

/// What happens when a non-blocking send finds the outbound queue full.
enum class overflow_policy {
    close_connection,  ///< drop the queue and close with 1008 "send queue overflow" (server default)
    reject_message,    ///< refuse the message with error::send_queue_full, keep the connection (client default)
};

/// Settings of one open connection, on either side.
struct connection_options {
    duration ping_interval = 30s;  ///< a ping is sent this often
    duration pong_wait = 60s;      ///< nothing heard from the peer for this long: error::pong_timeout
    duration write_wait = 10s;     ///< bound on one write and on the closing handshake
    /// Receive budget. While the connection waits for the next message it keeps at most this much
    /// receive buffer (larger messages take one more read; 1 = none). Received messages that wait
    /// for the consumer (application or callbacks) may hold this many payload bytes (and at most 64
    /// messages; one message always fits) before the connection stops reading and TCP slows the
    /// peer down.
    std::size_t read_buffer_size = 4096;
    std::size_t write_buffer_size = 4096;      ///< output buffer capacity kept between writes while traffic
                                               ///< flows (larger bursts allocate while they last; freed once
                                               ///< quiet for a keepalive period); Beast's write buffer
    std::size_t max_message_size = 16u << 20;  ///< larger incoming messages close with 1009
    std::size_t send_queue_limit = 1024;       ///< messages queued for the peer before overflow
    std::size_t send_queue_bytes = 64u << 20;  ///< payload bytes queued before overflow (one larger
                                               ///< message is accepted into an empty queue)
    overflow_policy on_overflow = overflow_policy::close_connection;
};

/// The Go component's WSServerConfig, plus what production servers need.
struct server_config {
    std::string address = ":8080";  ///< ":8080" (all interfaces), "host:port", "[::1]:0"; port 0 = any
    std::string path = "/";         ///< the WebSocket endpoint; other paths answer 404
    std::size_t max_connections = 0;  ///< 0 = unlimited; beyond it upgrades answer 503
    std::size_t max_connections_per_ip = 0;  ///< 0 = unlimited; beyond it upgrades from that address answer 503
    duration ping_interval = 30s;
    duration pong_wait = 60s;
    duration write_wait = 10s;
    std::size_t read_buffer_size = 4096;
    std::size_t write_buffer_size = 4096;
    /// Accepts or refuses a browser's Origin (req[http::field::origin]); empty = allow all. A refusal answers 403.
    std::function<bool(http_request const&)> check_origin{};
    std::size_t max_message_size = 16u << 20;
    std::size_t send_queue_limit = 1024;
    std::size_t send_queue_bytes = 64u << 20;
    overflow_policy on_overflow = overflow_policy::close_connection;
    duration handshake_timeout = 10s;  ///< TCP accept to completed upgrade
    duration shutdown_timeout = 5s;    ///< stop(): how long clients get to answer the 1001 close
    std::size_t threads = 1;           ///< I/O threads of the callback facade (`server`)

    connection_options connection() const;
};

/// The Go component's WSClientConfig.
struct client_config {
    std::string url;                ///< ws://host[:port][/path][?query]
    /// The first pause before reconnecting (the Go component's constant pause). Each failed attempt
    /// in a row doubles the next pause, up to reconnect_delay_max; a successful connection resets it.
    duration reconnect_delay = 5s;
    /// Bound on the pause between attempts (must be >= reconnect_delay; equal = no backoff). Up to
    /// a quarter of each pause is added at random (near this bound taken off instead, so no pause
    /// exceeds it): clients that lost the same server do not all come back at the same instant.
    /// 60 s: reached after four failures (5, 10, 20, 40, 60 s), so a long outage costs one attempt
    /// a minute per client, and a server back after one waits at most a minute for its clients.
    duration reconnect_delay_max = 60s;
    int max_reconnects = 0;         ///< 0 = unlimited
    bool auto_reconnect = true;     ///< reconnect after a connection is lost (never after disconnect())
    http_headers headers{};         ///< added to the upgrade request
    duration ping_interval = 30s;
    duration pong_wait = 60s;
    duration write_wait = 10s;
    std::size_t read_buffer_size = 4096;
    std::size_t write_buffer_size = 4096;
    std::size_t max_message_size = 16u << 20;
    std::size_t send_queue_limit = 1024;
    std::size_t send_queue_bytes = 64u << 20;
    overflow_policy on_overflow = overflow_policy::reject_message;
    duration handshake_timeout = 10s;  ///< TCP connect plus upgrade

    connection_options connection() const;
};

/// Checks every field; on failure returns error::invalid_config and names the field in `diag`.
error_code validate(server_config const& cfg, diagnostics& diag);
error_code validate(client_config const& cfg, diagnostics& diag);
error_code validate(connection_options const& opts, diagnostics& diag);

}  // namespace wscoro
