#pragma once
// The callback facade of the client, for code ported from the Go component (WSClient): one I/O
// thread, automatic reconnection, callbacks on that thread, sends from any thread.
#include <wscoro/config.hpp>
#include <wscoro/connection.hpp>
#include <wscoro/listener.hpp>

#include <functional>
#include <memory>

namespace wscoro {

/// Thread-safe. Callbacks run on the client's I/O thread, one at a time and in order.
/// Reconnection (auto_reconnect): after an established connection is lost for any reason but
/// disconnect()/close(), the client waits reconnect_delay and tries again, up to max_reconnects
/// attempts in a row without success (0 = forever); on_error reports each failed attempt. Each
/// failure doubles the next pause, up to reconnect_delay_max (plus up to 25% jitter, never beyond
/// it); a successful connection resets it to reconnect_delay. A failed connect() is returned to its
/// caller and not retried.
class client {
public:
    using connect_handler = std::function<void()>;
    using disconnect_handler = std::function<void(error_code)>;  // empty = clean close
    using message_handler = std::function<void(message const&)>;

    explicit client(client_config cfg);
    /// close(). May run inside one of this client's callbacks: the connection is then closed in the
    /// background, and no callback runs after this returns.
    ~client();
    client(client const&) = delete;
    client& operator=(client const&) = delete;

    /// Takes effect at the next connect(). Any callback may be empty.
    void set_callbacks(connect_handler on_connect, disconnect_handler on_disconnect,
                       message_handler on_message, error_handler on_error);

    /// Connects and returns the result (bounded by name resolution plus handshake_timeout). A bad
    /// URL or config fails at once and starts nothing. Already connected or reconnecting: no-op.
    /// Must not be called from this client's callbacks.
    error_code connect();
    error_code connect(diagnostics& diag);
    /// Closes the connection (1000) and stops reconnecting; waits for on_disconnect unless called
    /// from a callback. connect() may be called again.
    void disconnect();
    /// disconnect(), and releases the I/O thread. Also done by the destructor.
    void close();

    bool is_connected() const;
    /// Reconnect attempts made since construction.
    std::size_t reconnect_count() const;
    /// The current connection, nullptr when disconnected.
    connection_ptr current() const;

    /// Fails with not_connected while disconnected (nothing is buffered across reconnects), and with
    /// send_queue_full when send_queue_limit messages are waiting.
    error_code send(message m);
    error_code send_text(std::string text) { return send(message::text(std::move(text))); }
    error_code send_binary(std::string bytes) { return send(message::binary(std::move(bytes))); }
    template <class T> error_code send_json(T const& value) { return send(message::json(value)); }

    client_config const& config() const noexcept;

private:
    struct impl;
    std::shared_ptr<impl> impl_;
};

}  // namespace wscoro
