#pragma once
// Peers for server tests that do not go through wscoro's client: a raw Beast WebSocket client, a
// raw HTTP client and a raw TCP socket. Each owns its io_context and offers blocking calls that are
// bounded: the asynchronous operation runs on this thread until it completes or `limit` passes (it
// is then cancelled and reported as asio::error::timed_out). So a test can drive several peers
// one after the other from its own thread, or give each peer a thread of its own, and never hangs.
// A peer that must misbehave (stop reading, never answer pings) simply does not call read().
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/websocket/stream.hpp>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace wscoro::test {

namespace raw {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;
using boost::system::error_code;
using namespace std::chrono_literals;

/// "127.0.0.1:43127" (what server::address() returns) -> endpoint.
inline tcp::endpoint endpoint_of(std::string const& address) {
    auto const colon = address.rfind(':');
    return {asio::ip::make_address(address.substr(0, colon)),
            static_cast<unsigned short>(std::stoul(address.substr(colon + 1)))};
}

/// An io_context driven from the calling thread, one bounded operation at a time.
class bounded_io {
public:
    explicit bounded_io(std::chrono::milliseconds limit) : limit_(limit) {}
    bounded_io(bounded_io const&) = delete;
    bounded_io& operator=(bounded_io const&) = delete;

    asio::io_context& context() noexcept { return ioc_; }
    std::chrono::milliseconds limit() const noexcept { return limit_; }
    void set_limit(std::chrono::milliseconds limit) noexcept { limit_ = limit; }

protected:
    /// Starts one operation with `initiate(handler)` (handler: void(error_code, ...)) and runs the
    /// io_context until it completes. After `limit`, `cancel()` is called (close the socket), the
    /// operation is run to its (aborted) completion, and timed_out is returned.
    template <class Initiate, class Cancel>
    error_code run_op(Initiate&& initiate, Cancel&& cancel) {
        // Shared with the handler: it stays valid even if the handler outlived this call.
        auto result = std::make_shared<std::optional<error_code>>();
        initiate([result](error_code ec, auto&&...) { *result = ec; });
        if (run_until(*result, limit_)) return **result;
        cancel();
        run_until(*result, 2s);  // the cancelled operation completes promptly
        return asio::error::timed_out;
    }

private:
    bool run_until(std::optional<error_code> const& result, std::chrono::milliseconds limit) {
        auto const deadline = std::chrono::steady_clock::now() + limit;
        ioc_.restart();
        while (!result) {
            // 0: the deadline passed, or no work is left (then nothing can complete the operation).
            if (ioc_.run_one_until(deadline) == 0) return result.has_value();
        }
        return true;
    }

    asio::io_context ioc_;
    std::chrono::milliseconds limit_;
};

/// One frame read by ws_client::read().
struct frame {
    error_code ec;  ///< websocket::error::closed when the server closed (see ws_client::reason())
    bool text = false;  ///< the opcode of the message
    std::string data;
};

/// A plain Beast WebSocket client (no wscoro code on this side).
class ws_client : public bounded_io {
public:
    explicit ws_client(std::chrono::milliseconds limit = 5s) : bounded_io(limit), ws_(context()) {}

    /// Sets SO_RCVBUF before connecting (a slow consumer with little room in the kernel).
    void set_receive_buffer(int bytes) { receive_buffer_ = bytes; }
    /// Connects from this local address (e.g. "127.0.0.2": another peer on the loopback network).
    void set_source_address(std::string ip) { source_ = std::move(ip); }

    /// TCP connect plus the upgrade to `target`. `decorate` may add headers to the request.
    template <class Decorate = void (*)(websocket::request_type&)>
    error_code connect(
        std::string const& address, std::string const& target = "/ws",
        Decorate decorate = [](websocket::request_type&) {}) {
        auto& sock = beast::get_lowest_layer(ws_).socket();
        error_code ec;
        auto const ep = endpoint_of(address);
        sock.open(ep.protocol(), ec);
        if (ec) return ec;
        if (receive_buffer_ > 0)
            sock.set_option(asio::socket_base::receive_buffer_size(receive_buffer_), ec);
        if (ec) return ec;
        if (!source_.empty()) sock.bind({asio::ip::make_address(source_, ec), 0}, ec);
        if (ec) return ec;
        ec = run_op([&](auto h) { sock.async_connect(ep, std::move(h)); }, [this] { kill(); });
        if (ec) return ec;
        ws_.set_option(websocket::stream_base::decorator(std::move(decorate)));
        ec = run_op([&](auto h) { ws_.async_handshake(response_, address, target, std::move(h)); },
                    [this] { kill(); });
        return ec;
    }

    error_code send_text(std::string_view s) { return send(true, s); }
    error_code send_binary(std::string_view s) { return send(false, s); }
    error_code send(bool text, std::string_view s) {
        ws_.text(text);
        return run_op(
            [&](auto h) { ws_.async_write(asio::buffer(s.data(), s.size()), std::move(h)); },
            [this] { kill(); });
    }

    /// The next message (answers pings and the closing handshake on the way, as Beast does).
    frame read() {
        buffer_.clear();
        frame f;
        f.ec = run_op([&](auto h) { ws_.async_read(buffer_, std::move(h)); }, [this] { kill(); });
        if (!f.ec) {
            f.text = ws_.got_text();
            f.data = beast::buffers_to_string(buffer_.data());
        }
        return f;
    }

    /// Reads until the server closes; returns the last error (websocket::error::closed when the
    /// closing handshake completed). Messages on the way are counted in `skipped`.
    error_code read_until_closed(std::size_t* skipped = nullptr) {
        for (;;) {
            auto f = read();
            if (f.ec) return f.ec;
            if (skipped) ++*skipped;
        }
    }

    /// Client-initiated closing handshake.
    error_code close(websocket::close_code code = websocket::close_code::normal) {
        return run_op([&](auto h) { ws_.async_close(code, std::move(h)); }, [this] { kill(); });
    }

    /// The close frame received from the server.
    websocket::close_reason reason() const { return ws_.reason(); }
    websocket::response_type const& handshake_response() const { return response_; }
    websocket::stream<beast::tcp_stream>& stream() noexcept { return ws_; }
    tcp::socket& socket() noexcept { return beast::get_lowest_layer(ws_).socket(); }
    /// Drops the TCP connection without a closing handshake.
    void kill() {
        error_code ignored;
        socket().close(ignored);
    }

private:
    websocket::stream<beast::tcp_stream> ws_;
    websocket::response_type response_;
    beast::flat_buffer buffer_;
    std::string source_;
    int receive_buffer_ = 0;
};

/// Raw HTTP/1.1 over TCP: for the statuses the server answers to requests it refuses.
class http_client : public bounded_io {
public:
    explicit http_client(std::chrono::milliseconds limit = 5s)
        : bounded_io(limit), stream_(context()) {}

    error_code connect(std::string const& address) {
        auto const ep = endpoint_of(address);
        return run_op([&](auto h) { stream_.socket().async_connect(ep, std::move(h)); },
                      [this] { kill(); });
    }
    /// Sends `req` (prepare_payload is done here) and reads the response into `res`.
    error_code exchange(http::request<http::string_body> req,
                        http::response<http::string_body>& res) {
        req.prepare_payload();
        if (auto ec = run_op([&](auto h) { http::async_write(stream_, req, std::move(h)); },
                             [this] { kill(); }))
            return ec;
        return run_op([&](auto h) { http::async_read(stream_, buffer_, res, std::move(h)); },
                      [this] { kill(); });
    }
    /// A request with the headers of a WebSocket upgrade (the caller may change any of them).
    static http::request<http::string_body> upgrade_request(std::string const& host,
                                                            std::string target) {
        http::request<http::string_body> req{http::verb::get, target, 11};
        req.set(http::field::host, host);
        req.set(http::field::upgrade, "websocket");
        req.set(http::field::connection, "Upgrade");
        req.set(http::field::sec_websocket_key, "dGhlIHNhbXBsZSBub25jZQ==");
        req.set(http::field::sec_websocket_version, "13");
        return req;
    }
    void kill() {
        error_code ignored;
        stream_.socket().close(ignored);
    }

private:
    beast::tcp_stream stream_;
    beast::flat_buffer buffer_;
};

/// A bare TCP socket: the WebSocket upgrade written by hand, then whatever the test wants (usually
/// nothing at all: it never reads, so it never answers a ping).
class tcp_peer : public bounded_io {
public:
    explicit tcp_peer(std::chrono::milliseconds limit = 5s)
        : bounded_io(limit), socket_(context()) {}

    error_code connect(std::string const& address) {
        auto const ep = endpoint_of(address);
        return run_op([&](auto h) { socket_.async_connect(ep, std::move(h)); }, [this] { kill(); });
    }
    /// Writes `bytes` completely.
    error_code write(std::string_view bytes) {
        return run_op(
            [&](auto h) {
                asio::async_write(socket_, asio::buffer(bytes.data(), bytes.size()), std::move(h));
            },
            [this] { kill(); });
    }
    /// Reads up to and including `delim`; the text read is in `out` (and may go past `delim`).
    error_code read_until(std::string_view delim, std::string& out) {
        auto ec = run_op(
            [&](auto h) {
                asio::async_read_until(socket_, asio::dynamic_buffer(in_), delim, std::move(h));
            },
            [this] { kill(); });
        out = in_;
        return ec;
    }
    /// The upgrade request, by hand. Returns the response head (status line and headers).
    error_code upgrade(std::string const& address, std::string const& target,
                       std::string& response_head) {
        if (auto ec = write("GET " + target + " HTTP/1.1\r\nHost: " + address +
                            "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                            "Sec-WebSocket-Version: 13\r\n\r\n"))
            return ec;
        return read_until("\r\n\r\n", response_head);
    }
    tcp::socket& socket() noexcept { return socket_; }
    void kill() {
        error_code ignored;
        socket_.close(ignored);
    }

private:
    tcp::socket socket_;
    std::string in_;
};

}  // namespace raw

}  // namespace wscoro::test
