// raw-beast-server: the floor of the benchmarks. A plain Boost.Beast WebSocket server with nothing
// of wscoro in it, written the way Beast's own examples write one: the C++20 coroutine server
// (example/websocket/server/awaitable) for the sessions, websocket-chat-multi for the broadcast
// (one shared payload, a per-session queue, one async_write at a time). One thread, Beast's
// default options plus the suggested server timeouts: an honest baseline, not a tuned one.
//
//   raw-beast-server [--host 127.0.0.1] [--port 0] [--mode echo|broadcast]
//
// Prints "listening on ws://HOST:PORT/" once it accepts, runs until SIGINT or SIGTERM, exits 0.
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>

#include <charconv>
#include <cstdio>
#include <deque>
#include <iostream>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_set>

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;
using boost::system::error_code;
using namespace std::chrono_literals;

inline constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);  // (ec, T...), no throw
using stream_type = websocket::stream<beast::tcp_stream>;

/// One received message, built once and shared by every receiver of a broadcast.
struct message {
    bool text;
    std::string payload;
};
using message_ptr = std::shared_ptr<message const>;

class room;

class session : public std::enable_shared_from_this<session> {
public:
    /// Over this many queued messages the peer is not keeping up: drop it, so memory stays bounded.
    static constexpr std::size_t queue_limit = 1024;

    explicit session(tcp::socket socket) : ws_(std::move(socket)) {}

    /// Handshake, then echo (room == nullptr) or relay every message to the room until the peer
    /// goes away.
    asio::awaitable<void> run(room* r);

    /// Queues a broadcast message; the async_write chain sends one at a time.
    void send(message_ptr m);

private:
    asio::awaitable<void> echo();
    asio::awaitable<void> relay(room& r);
    void write_front();
    void on_write(error_code ec, std::size_t);

    stream_type ws_;
    std::deque<message_ptr> queue_;  // front() is being written
    bool dead_ = false;  // a write failed or the queue overflowed: send() drops everything
};

/// The connected sessions of the broadcast mode. One thread runs everything, so no mutex.
class room {
public:
    void join(session* s) { sessions_.insert(s); }
    void leave(session* s) { sessions_.erase(s); }
    void broadcast(message_ptr const& m) {
        // send() never removes a session synchronously (a dropped one leaves when its read fails),
        // so iterating while sending is safe.
        for (session* s : sessions_)
            s->send(m);
    }

private:
    std::unordered_set<session*> sessions_;
};

asio::awaitable<void> session::run(room* r) {
    ws_.set_option(websocket::stream_base::timeout::suggested(beast::role_type::server));
    ws_.set_option(websocket::stream_base::decorator([](websocket::response_type& res) {
        res.set(beast::http::field::server, "raw-beast-server");
    }));
    auto [ec] = co_await ws_.async_accept(use_tuple);  // any path
    if (ec) co_return;
    if (r)
        co_await relay(*r);
    else
        co_await echo();
}

asio::awaitable<void> session::echo() {
    beast::flat_buffer buffer;
    for (;;) {
        auto [ec, n] = co_await ws_.async_read(buffer, use_tuple);
        if (ec) co_return;  // websocket::error::closed after a clean close
        ws_.text(ws_.got_text());
        auto const data = buffer.data();
        auto [wrote, written] = co_await ws_.async_write(data, use_tuple);
        if (wrote) co_return;
        buffer.consume(buffer.size());
    }
}

asio::awaitable<void> session::relay(room& r) {
    struct membership {  // leaves on every way out, including a frame destroyed at shutdown
        room& r;
        session* s;
        ~membership() { r.leave(s); }
    };
    r.join(this);
    membership const member{r, this};
    beast::flat_buffer buffer;
    for (;;) {
        auto [ec, n] = co_await ws_.async_read(buffer, use_tuple);
        if (ec) co_return;
        auto m = std::make_shared<message const>(
            message{ws_.got_text(), beast::buffers_to_string(buffer.data())});
        buffer.consume(buffer.size());
        r.broadcast(m);
    }
}

void session::send(message_ptr m) {
    if (dead_) return;
    if (queue_.size() >= queue_limit) {
        // Closing the socket aborts the pending read and write; the read loop then leaves the room.
        dead_ = true;
        error_code ignored;
        beast::get_lowest_layer(ws_).socket().close(ignored);
        return;
    }
    queue_.push_back(std::move(m));
    if (queue_.size() == 1) write_front();  // otherwise on_write gets to it
}

void session::write_front() {
    message const& m = *queue_.front();
    ws_.text(m.text);
    ws_.async_write(asio::buffer(m.payload),
                    beast::bind_front_handler(&session::on_write, shared_from_this()));
}

void session::on_write(error_code ec, std::size_t) {
    if (ec) {
        dead_ = true;
        queue_.clear();
        return;
    }
    queue_.pop_front();
    if (!queue_.empty()) write_front();
}

asio::awaitable<void> run_session(std::shared_ptr<session> s, room* r) {
    co_await s->run(r);  // the parameter keeps the session alive; pending writes hold it too
}

asio::awaitable<void> listen(tcp::acceptor& acceptor, room* r) {
    auto ex = acceptor.get_executor();
    for (;;) {
        auto [ec, socket] = co_await acceptor.async_accept(use_tuple);
        if (ec == asio::error::operation_aborted) co_return;  // stopping
        if (ec) {  // e.g. out of file descriptors: back off instead of spinning
            std::cerr << "accept: " << ec.message() << "\n";
            asio::steady_timer pause{ex, 100ms};
            co_await pause.async_wait(use_tuple);
            continue;
        }
        socket.set_option(tcp::no_delay(true), ec);
        auto s = std::make_shared<session>(std::move(socket));
        asio::co_spawn(ex, run_session(std::move(s), r), [](std::exception_ptr bug) {
            if (bug) std::rethrow_exception(bug);  // I/O errors are values: this is a bug
        });
    }
}

int usage(char const* why) {
    std::cerr << "raw-beast-server: " << why << "\nusage: raw-beast-server [--host 127.0.0.1] "
              << "[--port 0] [--mode echo|broadcast]\n";
    return 2;
}

}  // namespace

int main(int argc, char** argv) {
    std::string host = "127.0.0.1";
    unsigned short port = 0;
    bool broadcast = false;
    for (int i = 1; i < argc; ++i) {
        std::string_view const arg = argv[i];
        if (arg == "-h" || arg == "--help") {
            usage("a plain Boost.Beast WebSocket server (the benchmark baseline)");
            return 0;
        }
        if (i + 1 >= argc) return usage("missing value after an option");
        std::string_view const value = argv[++i];
        if (arg == "--host") {
            host = value;
        } else if (arg == "--port") {
            auto [end, err] = std::from_chars(value.data(), value.data() + value.size(), port);
            if (err != std::errc{} || end != value.data() + value.size())
                return usage("bad --port");
        } else if (arg == "--mode") {
            if (value != "echo" && value != "broadcast")
                return usage("--mode is echo or broadcast");
            broadcast = value == "broadcast";
        } else {
            return usage("unknown option");
        }
    }

    room the_room;  // before the io_context: session frames destroyed at shutdown leave it
    asio::io_context ioc{1};
    error_code ec;
    auto const address = asio::ip::make_address(host, ec);
    if (ec) return usage("bad --host (an IP address)");
    tcp::acceptor acceptor{ioc};
    tcp::endpoint const endpoint{address, port};
    acceptor.open(endpoint.protocol(), ec);
    if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor.bind(endpoint, ec);
    if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
        std::cerr << "raw-beast-server: cannot listen on " << endpoint << ": " << ec.message()
                  << "\n";
        return 1;
    }

    asio::signal_set signals{ioc, SIGINT, SIGTERM};
    signals.async_wait([&](error_code, int) { ioc.stop(); });
    asio::co_spawn(ioc, listen(acceptor, broadcast ? &the_room : nullptr),
                   [](std::exception_ptr bug) {
                       if (bug) std::rethrow_exception(bug);
                   });

    auto const bound = acceptor.local_endpoint();
    std::string const shown = bound.address().is_v6() ? "[" + host + "]" : host;
    std::cout << "listening on ws://" << shown << ":" << bound.port() << "/" << std::endl;
    ioc.run();
    return 0;
}
