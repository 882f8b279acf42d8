// The Go component's server quick start, written with wscoro's callback API (wscoro::server).
//
//   seed_server [HOST:PORT]      default ":8080" (all interfaces); port 0 = any free port
//
// Every client gets "Welcome to WebSocket Server!", and every message a client sends is broadcast
// to all clients as "Broadcast: <message>". Once listening, the program prints exactly one line on
// stdout, `listening on ws://HOST:PORT/ws` (the real port when port 0 was asked); its log goes to
// stderr, like Go's log package. SIGINT or SIGTERM stops it gracefully (exit status 0).
#include <wscoro/server.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include <csignal>
#include <ctime>
#include <iostream>
#include <mutex>
#include <string>

namespace asio = boost::asio;
using namespace std::chrono_literals;

namespace {

// Go's log.Printf: a timestamped line on stderr. Callbacks of different connections may run on
// different I/O threads (server_config::threads > 1), so lines are written under a lock.
void log(std::string const& line) {
    static std::mutex mutex;
    char stamp[32];
    std::time_t const now = std::time(nullptr);
    std::tm local{};
    std::strftime(stamp, sizeof stamp, "%Y/%m/%d %H:%M:%S", localtime_r(&now, &local));
    std::lock_guard lock{mutex};
    std::clog << stamp << ' ' << line << std::endl;
}

}  // namespace

int main(int argc, char** argv) {
    // WSServerConfig of the Go quick start; the fields keep their names (snake_case).
    wscoro::server_config config{
        .address = argc > 1 ? argv[1] : ":8080",  // listening address
        .path = "/ws",                            // the WebSocket endpoint (other paths: 404)
        .max_connections = 100,                   // beyond it, upgrades are answered 503
        .ping_interval = 30s,
        .pong_wait = 60s,  // nothing heard from a client for this long: it is dropped
        .write_wait = 10s,
        .read_buffer_size = 4096,
        .write_buffer_size = 4096,
        .check_origin = nullptr,  // CheckOrigin: empty = accept every Origin; refusals answer 403
    };
    wscoro::server server{config};

    server.set_callbacks(
        // on_connect. A connection's callbacks run one at a time, in order, on its strand.
        [](wscoro::connection_ptr const& client) {
            log("Client connected: " + client->remote_address() + " (id " + client->id() + ")");
            client->send_text("Welcome to WebSocket Server!");  // queued; never blocks
        },
        // on_disconnect: an empty error_code means a clean closing handshake.
        [](wscoro::connection_ptr const& client, wscoro::error_code why) {
            log("Client disconnected: " + client->remote_address() +
                (why ? " (" + why.message() + ")" : std::string{}));
        },
        // on_message: text and binary messages both arrive here (message::kind() tells them apart).
        [&server](wscoro::connection_ptr const& client, wscoro::message const& msg) {
            std::string text{msg.data()};
            log("Received from " + client->remote_address() + ": " + text);
            // One shared payload for every client; a slow client never delays the others.
            server.broadcast_text("Broadcast: " + text);
        },
        // on_error: failures outside a connection's lifetime (refused upgrades, accept errors...).
        [](wscoro::error_code ec, std::string_view what) {
            log("Server error: " + std::string{what} + " [" + ec.message() + "]");
        });

    // Wait for SIGINT/SIGTERM on a small io_context of our own. The signal_set exists before the
    // server announces itself, so a signal sent right after the announcement is never lost.
    asio::io_context signals_ctx;
    asio::signal_set signals{signals_ctx, SIGINT, SIGTERM};
    int stop_signal = 0;
    signals.async_wait([&stop_signal](wscoro::error_code ec, int sig) {
        if (!ec) stop_signal = sig;
    });

    wscoro::diagnostics diag;
    if (auto ec = server.start(diag)) {  // binds and starts the I/O threads; does not block
        log("Failed to start server: " + diag.message + " [" + ec.message() + "]");
        return 1;
    }
    log("WebSocket server started on " + server.address() + config.path);
    std::cout << "listening on ws://" << server.address() << config.path << std::endl;  // flushed

    signals_ctx.run();  // returns once the signal arrived
    log(std::string{"Received "} + (stop_signal == SIGINT ? "SIGINT" : "SIGTERM") + ", stopping");
    // Clients get close 1001 ("going away") and up to shutdown_timeout to answer it.
    server.stop();
    log("Server stopped");
    return 0;
}
