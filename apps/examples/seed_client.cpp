// The Go component's client quick start, written with wscoro's callback API (wscoro::client).
//
//   seed_client [URL [HEARTBEATS [INTERVAL_MS]]]
//
// URL defaults to ws://localhost:8080/ws. The client says "Hello from client!" on every
// (re)connect, prints every message it receives on stdout, and sends "Heartbeat message" every
// INTERVAL_MS (default 10000) while connected; its log goes to stderr. It reconnects 5 s after
// losing the server. Without HEARTBEATS it runs until SIGINT/SIGTERM; with it, it stops after that
// many heartbeat ticks (a tick sends nothing while disconnected) plus one more interval for the
// replies, disconnects and exits 0 (for scripts and CI).
#include <wscoro/client.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>

#include <condition_variable>
#include <csignal>
#include <ctime>
#include <iostream>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

namespace asio = boost::asio;
using namespace std::chrono_literals;

namespace {

// Go's log.Printf: a timestamped line on stderr. The client's callbacks run on its I/O thread while
// main() logs too, so lines are written under a lock.
void log(std::string const& line) {
    static std::mutex mutex;
    char stamp[32];
    std::time_t const now = std::time(nullptr);
    std::tm local{};
    std::strftime(stamp, sizeof stamp, "%Y/%m/%d %H:%M:%S", localtime_r(&now, &local));
    std::lock_guard lock{mutex};
    std::clog << stamp << ' ' << line << std::endl;
}

// Set by a signal (or by main when it is done); the heartbeat loop waits on it instead of sleeping,
// so a stop request is seen at once.
struct stop_flag {
    std::mutex mutex;
    std::condition_variable cv;
    bool requested = false;

    void request() {
        {
            std::lock_guard lock{mutex};
            requested = true;
        }
        cv.notify_all();
    }
    /// Waits up to `d`; true if a stop was requested.
    bool wait_for(std::chrono::milliseconds d) {
        std::unique_lock lock{mutex};
        return cv.wait_for(lock, d, [this] { return requested; });
    }
};

}  // namespace

int main(int argc, char** argv) {
    std::optional<long> heartbeats;  // none: run until a signal
    std::chrono::milliseconds interval = 10s;
    try {
        if (argc > 2) heartbeats = std::stol(argv[2]);
        if (argc > 3) interval = std::chrono::milliseconds{std::stol(argv[3])};
    } catch (std::exception const&) {
        std::cerr << "usage: seed_client [URL [HEARTBEATS [INTERVAL_MS]]]\n";
        return 2;
    }

    // WSClientConfig of the Go quick start; the fields keep their names (snake_case).
    wscoro::client_config config{
        .url = argc > 1 ? argv[1] : "ws://localhost:8080/ws",
        .reconnect_delay = 5s,  // first pause; doubles per failure up to reconnect_delay_max
        .max_reconnects = 0,    // 0 = try forever
        .auto_reconnect = true,
        .headers = {},  // extra headers for the upgrade request
        .read_buffer_size = 4096,
        .write_buffer_size = 4096,
    };
    wscoro::client client{config};

    // Callbacks run on the client's I/O thread, one at a time and in order.
    client.set_callbacks(
        [&client] {  // on_connect, after every successful (re)connect
            log("Connected to server");
            client.send_text("Hello from client!");
        },
        [](wscoro::error_code why) {  // on_disconnect: empty = clean close
            if (why) log("Disconnected with error: " + why.message());
            else log("Disconnected gracefully");
        },
        [](wscoro::message const& msg) {  // on_message
            std::cout << "Received message: " << msg.data() << std::endl;
        },
        [](wscoro::error_code ec, std::string_view what) {  // on_error, e.g. a failed reconnect
            log("Client error: " + std::string{what} + " [" + ec.message() + "]");
        });

    // SIGINT/SIGTERM: a signal_set on a small io_context of its own thread raises the stop flag.
    stop_flag stop;
    asio::io_context signals_ctx;
    asio::signal_set signals{signals_ctx, SIGINT, SIGTERM};
    signals.async_wait([&stop](wscoro::error_code ec, int) {
        if (!ec) stop.request();  // operation_aborted: cancelled below, on the way out
    });
    std::thread signal_thread{[&signals_ctx] { signals_ctx.run(); }};
    auto stop_watching_signals = [&] {
        asio::post(signals_ctx, [&signals] { signals.cancel(); });  // signal_set is not thread-safe
        signal_thread.join();
    };

    wscoro::diagnostics diag;
    if (auto ec = client.connect(diag)) {  // blocks until connected or failed (not retried)
        log("Failed to connect: " + diag.message + " [" + ec.message() + "]");
        stop_watching_signals();
        return 1;
    }

    // The Go program's ticker: a heartbeat every interval while connected.
    for (long sent = 0;;) {
        if (stop.wait_for(interval)) break;           // a signal
        if (heartbeats && sent == *heartbeats) break;  // done: the last interval let replies arrive
        if (client.is_connected()) client.send_text("Heartbeat message");
        ++sent;
    }

    client.close();  // closing handshake (1000), no reconnects; on_disconnect has run on return
    stop_watching_signals();
    return 0;
}
