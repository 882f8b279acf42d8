#pragma once
// The callback facade of the server, for code ported from the Go component (WSServer). It owns its
// I/O threads (server_config.threads) and is a thin adapter over `listener` (a connection_starter):
// each connection's events come from that connection's message stream, in order.
#include <wscoro/config.hpp>
#include <wscoro/connection.hpp>
#include <wscoro/listener.hpp>

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace wscoro {

/// Thread-safe. Callbacks of one connection run one at a time, in order (connect, messages,
/// disconnect), on that connection's strand; with threads > 1, callbacks of different connections
/// may run at the same time. Callbacks may call send, close, broadcast and the lookups freely.
class server {
public:
    using connect_handler = std::function<void(connection_ptr const&)>;
    using disconnect_handler = std::function<void(connection_ptr const&, error_code)>;  // empty = clean
    using message_handler = std::function<void(connection_ptr const&, message const&)>;

    explicit server(server_config cfg = {});
    /// stop(). May run inside one of this server's callbacks: the I/O threads then finish the stop
    /// by themselves, and no callback starts after this returns (with threads > 1, callbacks
    /// already running on the other threads finish).
    ~server();
    server(server const&) = delete;
    server& operator=(server const&) = delete;

    /// Takes effect at the next start(). Any callback may be empty.
    void set_callbacks(connect_handler on_connect, disconnect_handler on_disconnect,
                       message_handler on_message, error_handler on_error);
    /// Answers plain HTTP requests on the same port (takes effect at the next start()).
    void set_http_handler(http_handler h);

    /// Binds and starts the I/O threads. Errors: invalid_config (diag names the field), or the
    /// bind error (diag names the address). Already running: no-op.
    error_code start();
    error_code start(diagnostics& diag);
    /// Sends close 1001 to every client, waits up to shutdown_timeout for them, aborts the rest,
    /// joins the I/O threads and returns. From a callback it initiates all of that and returns at
    /// once (the threads end by themselves). start() may be called again afterwards.
    void stop();
    bool is_running() const;
    /// The address actually bound ("127.0.0.1:43127"); empty when not running.
    std::string address() const;

    std::size_t client_count() const;
    std::vector<connection_ptr> clients() const;
    connection_ptr client(std::string_view id) const;  ///< nullptr if not connected

    /// Queues one shared copy of `m` to every client; returns how many accepted it.
    std::size_t broadcast(message const& m);
    std::size_t broadcast_text(std::string text) { return broadcast(message::text(std::move(text))); }
    std::size_t broadcast_binary(std::string bytes) { return broadcast(message::binary(std::move(bytes))); }
    template <class T> std::size_t broadcast_json(T const& value) { return broadcast(message::json(value)); }

    server_config const& config() const noexcept;
    /// Counters since construction (kept across stop()/start()).
    wscoro::metrics const& get_metrics() const noexcept;

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

}  // namespace wscoro
