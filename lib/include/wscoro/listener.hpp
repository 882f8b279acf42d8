#pragma once
// The server's core for the co_await API: accepts TCP connections, answers plain HTTP and the
// upgrade (404 wrong path, 403 origin refused, 503 full, 426 not an upgrade), then runs the
// connection alongside the application's side of it: a coroutine per connection, or completion
// handlers started by a connection_starter (what the callback facade `server` uses).
#include <wscoro/config.hpp>
#include <wscoro/connection.hpp>
#include <wscoro/metrics.hpp>
#include <wscoro/registry.hpp>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace wscoro {

namespace detail {
class address_limiter;
}

/// Reports a failure that belongs to no connection's lifetime: accept errors, refused or failed
/// upgrades, exceptions escaping a handler. `what` is one human-readable line.
using error_handler = std::function<void(error_code ec, std::string_view what)>;

/// Answers a plain (non-upgrade) HTTP request; std::nullopt = 404. Runs on the connection's strand.
using http_handler = std::function<std::optional<http_response>(http_request const&)>;

class listener {
public:
    /// The application's coroutine for one connection; it ends when it returns (the connection is
    /// then closed) or when the connection ends (async_receive fails).
    using connection_handler = std::function<asio::awaitable<void>(connection_ptr)>;
    /// The alternative to a coroutine per connection, for an application that consumes each
    /// connection with completion handlers (the callback facade `server` does: an idle
    /// connection then holds no coroutine frame of the application's, about 1 KB less). Called
    /// once per connection, on its executor. The application must receive until async_receive
    /// fails (the read loop waits once 64 messages are not taken), then call `done` (from any
    /// thread; further calls are ignored): run() waits for that before it returns. A starter that
    /// throws is reported (callback_failed); its connection is closed with 1011 and drained.
    using connection_starter = std::function<void(connection_ptr, std::function<void()> done)>;

    listener(asio::any_io_executor ex, server_config cfg);
    ~listener();
    listener(listener const&) = delete;
    listener& operator=(listener const&) = delete;

    void set_error_handler(error_handler h) { on_error_ = std::move(h); }
    void set_http_handler(http_handler h) { on_http_ = std::move(h); }
    /// Counts into `m` instead of the listener's own metrics (e.g. to keep them across restarts).
    void set_metrics(std::shared_ptr<wscoro::metrics> m) { metrics_ = std::move(m); }
    /// Serves the accepted connections on these executors in turn (e.g. one io_context per
    /// thread) instead of the listener's own. A connection stays on the one it was given, from
    /// the handshake to its end; the acceptor stays on the listener's. Set before run().
    void spread_connections(std::vector<asio::any_io_executor> executors) {
        connection_executors_ = std::move(executors);
    }
    /// Connection counts, refusals by reason, traffic, overflows, ping round trips.
    std::shared_ptr<wscoro::metrics> const& get_metrics() const noexcept { return metrics_; }

    /// Validates the config, then binds and listens. On failure `diag` names the address or field.
    error_code listen(diagnostics& diag);
    /// The bound address, "ip:port" with the real port (valid after listen()).
    std::string address() const;
    asio::ip::tcp::endpoint local_endpoint() const { return endpoint_; }

    /// Accepts until stop(); returns when the accept loop and every connection have ended.
    asio::awaitable<void> run(connection_handler handler);
    /// The same, with a connection_starter instead of a coroutine per connection.
    asio::awaitable<void> run(connection_starter start);
    /// Thread-safe. Stops accepting and sends close 1001 to every client; those that have not
    /// finished the closing handshake after shutdown_timeout are aborted.
    void stop();

    connection_registry& connections() noexcept { return registry_; }
    connection_registry const& connections() const noexcept { return registry_; }
    server_config const& config() const noexcept { return cfg_; }

private:
    // The starter outlives every session: serve_all holds it until they all ended.
    asio::awaitable<void> serve_all(connection_starter start);
    asio::awaitable<void> accept_loop(connection_starter const& start);
    asio::awaitable<void> handle_socket(asio::ip::tcp::socket socket, connection_starter const& start);
    void start_connection(connection_ptr c, connection_starter const& start);
    asio::awaitable<void> run_handler(connection_ptr c, connection_handler const& handler);
    static asio::awaitable<void> drain(connection_ptr c);  // closes c, receives until it ended
    void report(error_code ec, std::string_view what) const;
    bool reserve_slot() noexcept;
    void release_slot() noexcept;
    void session_ended();
    void side_ended(connection& c);        // of an upgraded connection's session (see start_connection)
    static void application_done(listener* owner, connection& c);  // the application's side ended

    server_config cfg_;
    asio::any_io_executor ex_;
    asio::any_io_executor strand_;  // the acceptor, stop() and the drain timer live here
    std::vector<asio::any_io_executor> connection_executors_;  // empty: ex_ (spread_connections)
    std::size_t next_executor_ = 0;  // the accept loop's turn among them
    asio::ip::tcp::acceptor acceptor_;
    asio::steady_timer drained_;  // cancelled when the last session ends, or expires at the deadline
    asio::ip::tcp::endpoint endpoint_;
    connection_registry registry_;
    error_handler on_error_;
    http_handler on_http_;
    std::shared_ptr<wscoro::metrics> metrics_ = std::make_shared<wscoro::metrics>();
    std::atomic<std::size_t> sessions_{0};  // TCP connections being served (HTTP or WebSocket)
    std::atomic<std::size_t> slots_{0};     // upgraded connections, plus upgrades under way
    std::atomic<bool> stopping_{false};
    std::unique_ptr<detail::address_limiter> per_ip_;  // max_connections_per_ip
    struct pending_handshakes;  // TCP connections not yet upgraded, so stop() can drop them
    std::unique_ptr<pending_handshakes> pending_;
    // cfg_.connection(), made once: the connections share it.
    std::shared_ptr<connection_options const> connection_options_;
};

}  // namespace wscoro
