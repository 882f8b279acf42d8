// connection::run() and spawn_run(): the two ways to start a connection's loops
// (lib/src/stream_connection.hpp, start_loops). run() is an awaitable operation: it completes on the
// awaiting coroutine's executor once the connection has ended, and cancelling the co_await ends
// the connection. spawn_run() calls its handler once, after the end. Internal pieces (a
// connection made from a socket by hand), so this file includes lib/src headers.
#include "stream_connection.hpp"
#include "support/corked_pair.hpp"

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/websocket.hpp>
#include <doctest/doctest.h>

#include <optional>
#include <string>

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using boost::system::error_code;
using tcp = asio::ip::tcp;
using wscoro::test::run_until;

auto const suite = doctest::test_suite("run");

// A server-side wscoro connection and a plain Beast client at the other end, both upgraded.
struct upgraded_pair {
    asio::io_context ioc;
    websocket::stream<tcp::socket> peer{ioc};
    wscoro::connection_ptr conn;

    upgraded_pair() {
        tcp::acceptor acceptor{ioc, {asio::ip::address_v4::loopback(), 0}};
        peer.next_layer().connect(acceptor.local_endpoint());
        auto any_ws = wscoro::detail::make_tcp_websocket(acceptor.accept(ioc.get_executor()));
        std::optional<error_code> accepted, handshaken;
        std::visit([&](auto& ws) { ws.async_accept([&](error_code ec) { accepted = ec; }); }, any_ws);
        peer.async_handshake("127.0.0.1", "/", [&](error_code ec) { handshaken = ec; });
        REQUIRE(run_until(ioc, [&] { return accepted && handshaken; }));
        REQUIRE_FALSE(*accepted);
        REQUIRE_FALSE(*handshaken);
        conn = wscoro::detail::make_connection(std::move(any_ws), beast::role_type::server,
                                               wscoro::connection_info{"run-test", "127.0.0.1:1", "/", {}},
                                               std::make_shared<wscoro::connection_options const>());
    }
};

TEST_CASE("co_await run() returns once the peer closed, on the awaiting coroutine's executor" * suite) {
    upgraded_pair p;
    auto const strand = asio::make_strand(p.ioc);  // not the connection's executor
    std::optional<error_code> ended;
    bool on_own_executor = false;
    asio::co_spawn(
        strand,
        [&]() -> asio::awaitable<void> {
            auto why = co_await p.conn->run();
            on_own_executor = strand.running_in_this_thread();
            ended = why;
        },
        [](std::exception_ptr e) {
            if (e) std::rethrow_exception(e);
        });
    // A message reaches the connection while run() is awaited, then the peer closes.
    std::optional<error_code> received;
    wscoro::message got;
    p.conn->async_receive([&](error_code ec, wscoro::message m) {
        received = ec;
        got = std::move(m);
    });
    p.peer.write(asio::buffer(std::string{"hello"}));
    REQUIRE(run_until(p.ioc, [&] { return received.has_value(); }));
    CHECK_FALSE(*received);
    CHECK(got.data() == "hello");
    CHECK_FALSE(ended.has_value());  // still running

    std::optional<error_code> closed;
    p.peer.async_close(websocket::close_code::normal, [&](error_code ec) { closed = ec; });
    REQUIRE(run_until(p.ioc, [&] { return ended && closed; }));
    CHECK_FALSE(*ended);  // a completed closing handshake is a clean end
    CHECK(on_own_executor);
    CHECK_FALSE(p.conn->is_open());
    CHECK(p.conn->disconnect_reason() == *ended);
}

TEST_CASE("cancelling the co_await of run() ends the connection" * suite) {
    upgraded_pair p;
    asio::cancellation_signal cancel;
    std::optional<error_code> ended;
    asio::co_spawn(
        p.ioc,
        [&]() -> asio::awaitable<void> { ended = co_await p.conn->run(); },
        asio::bind_cancellation_slot(cancel.slot(), [](std::exception_ptr e) {
            if (e) std::rethrow_exception(e);
        }));
    // The loops are running: the peer's ping is answered.
    std::optional<error_code> pinged;
    bool ponged = false;
    p.peer.control_callback([&](websocket::frame_type kind, beast::string_view) {
        if (kind == websocket::frame_type::pong) ponged = true;
    });
    beast::flat_buffer buffer;
    std::optional<error_code> read;
    p.peer.async_ping({}, [&](error_code ec) { pinged = ec; });
    p.peer.async_read(buffer, [&](error_code ec, std::size_t) { read = ec; });
    REQUIRE(run_until(p.ioc, [&] { return pinged && ponged; }));
    CHECK(p.conn->is_open());
    CHECK_FALSE(ended.has_value());

    cancel.emit(asio::cancellation_type::terminal);
    REQUIRE(run_until(p.ioc, [&] { return ended.has_value() && read.has_value(); }));
    CHECK(*ended == asio::error::operation_aborted);
    CHECK_FALSE(p.conn->is_open());
    CHECK(*read);  // the peer's read fails: the connection's socket was closed
}

TEST_CASE("spawn_run() calls its handler once, after the connection ended" * suite) {
    upgraded_pair p;
    int calls = 0;
    std::optional<error_code> ended;
    bool open_at_end = true;
    std::weak_ptr<wscoro::connection> const watched = p.conn;
    p.conn->spawn_run([&, c = p.conn.get()](std::exception_ptr e, error_code why) {
        if (e) std::rethrow_exception(e);
        ++calls;
        ended = why;
        open_at_end = c->is_open();  // still alive here: the loops hold it until this returns
    });
    p.conn.reset();  // the loops keep the connection alive
    CHECK_FALSE(watched.expired());
    std::optional<error_code> closed;
    p.peer.async_close(websocket::close_code::going_away, [&](error_code ec) { closed = ec; });
    REQUIRE(run_until(p.ioc, [&] { return ended && closed && watched.expired(); }));
    CHECK(calls == 1);
    CHECK_FALSE(*ended);
    CHECK_FALSE(open_at_end);
}

}  // namespace
