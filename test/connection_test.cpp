// The co_await API: listener + async_connect + connection, all on one io_context per test, bounded
// by run_loopback (which also checks that no loop outlived the test).
#include <wscoro/connection.hpp>

#include "support/loopback.hpp"

#include <wscoro/connect.hpp>
#include <wscoro/listener.hpp>

#include <boost/asio/deferred.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/experimental/parallel_group.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/beast/websocket/error.hpp>

#include <doctest/doctest.h>

#include <future>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

using namespace std::chrono_literals;
using namespace boost::asio::experimental::awaitable_operators;
namespace asio = wscoro::asio;
namespace websocket = wscoro::websocket;
using wscoro::close_code;
using wscoro::connection_ptr;
using wscoro::error_code;
using wscoro::listener;
using wscoro::message;
using wscoro::test::connect_to;
using wscoro::test::loopback_server_config;
using wscoro::test::loopback_url;
using wscoro::test::run_loopback;
using wscoro::test::use_tuple;
using wscoro::test::with_listener;

namespace {

// --- server-side handlers ---

asio::awaitable<void> echo(connection_ptr c) {
    for (;;) {
        auto [ec, m] = co_await c->async_receive(use_tuple);
        if (ec) co_return;
        if (auto [sec] = co_await c->async_send(std::move(m), use_tuple); sec) co_return;
    }
}

// What a server handler saw, for checks after the listener has finished.
struct server_view {
    std::vector<message> got;
    error_code end;  // how async_receive ended
    error_code reason;
    wscoro::close_reason last_close;
    int connections = 0;
};

asio::awaitable<void> record_until_end(std::shared_ptr<server_view> v, connection_ptr c) {
    ++v->connections;
    for (;;) {
        auto [ec, m] = co_await c->async_receive(use_tuple);
        if (ec) {
            v->end = ec;
            break;
        }
        v->got.push_back(std::move(m));
    }
    v->reason = c->disconnect_reason();
    v->last_close = c->last_close();
}

listener::connection_handler recording(std::shared_ptr<server_view> v) {
    return [v](connection_ptr c) { return record_until_end(v, std::move(c)); };
}

// --- echo round trip ---

asio::awaitable<void> echo_round_trip(listener& l) {
    auto c = co_await connect_to(loopback_url(l));
    CHECK(c->is_open());
    std::vector<message> const sent{
        message::text("hello"),
        message::binary(std::string{"\0\x01\xff binary", 10}),
        message::text(""),
        message::binary(""),
        message::json(boost::json::value{{"n", 1}, {"list", {1, 2, 3}}}),
        message::text(std::string(100'000, 'y')),  // larger than the 4096-byte buffers
    };
    for (auto const& m : sent) {
        auto [ec] = co_await c->async_send(m, use_tuple);
        CHECK_FALSE(ec);
    }
    for (auto const& m : sent) {
        auto [ec, got] = co_await c->async_receive(use_tuple);
        REQUIRE_FALSE(ec);
        CHECK(got.kind() == m.kind());
        CHECK(got.size() == m.size());
        CHECK(got == m);
    }
    auto [ec] = co_await c->async_close(close_code::normal, "", use_tuple);
    CHECK_FALSE(ec);
}

TEST_CASE("echo round trip keeps payloads and opcodes" * doctest::test_suite("coawait")) {
    run_loopback(3s, [] { return with_listener(loopback_server_config(), echo, echo_round_trip); });
}

// --- an execution context other than an io_context ---

// A thread_pool's executor is neither an io_context's nor a strand of one: such connections get
// a strand of the type-erased executor, and their loops hold it type-erased (stream_connection's
// default LoopExecutor). The same round trip as above, on two pool threads.
TEST_CASE("connections on a thread_pool echo and close cleanly" * doctest::test_suite("coawait")) {
    asio::thread_pool pool{2};
    std::promise<std::exception_ptr> finished;
    auto outcome = finished.get_future();
    asio::co_spawn(pool, with_listener(loopback_server_config(), echo, echo_round_trip),
                   [&finished](std::exception_ptr e) { finished.set_value(e); });
    REQUIRE(outcome.wait_for(10s) == std::future_status::ready);
    pool.join();  // every connection ended with the listener's run(): nothing is left to run
    if (auto e = outcome.get()) std::rethrow_exception(e);
}

// --- a client's burst larger than its output buffer's high-water mark ---

// The client masks each frame while copying it into its output. The first message is larger than
// the kernel takes at once, so its write continues in the background; the second waits in the
// output meanwhile, and the third finds the output above its high-water mark (256 KiB): it waits
// for the output to drain and is copied in then (the write loop's slow path). Sending and
// receiving run side by side, or the echoes would fill both sides' buffers.
asio::awaitable<void> send_all(connection_ptr c, std::vector<message> const& sent) {
    for (auto const& m : sent) {
        auto [ec] = co_await c->async_send(m, use_tuple);
        CHECK_FALSE(ec);
    }
}

asio::awaitable<void> receive_all(connection_ptr c, std::vector<message> const& sent) {
    for (auto const& m : sent) {
        auto [ec, got] = co_await c->async_receive(use_tuple);
        REQUIRE_FALSE(ec);
        CHECK(got.kind() == m.kind());
        CHECK(got == m);
    }
}

asio::awaitable<void> large_client_burst(listener& l) {
    auto c = co_await connect_to(loopback_url(l));
    std::vector<message> sent;
    for (int i = 0; i < 4; ++i) {
        std::string body(3 * 1024 * 1024, static_cast<char>('a' + i));
        body.replace(0, 3, std::to_string(100 + i));
        sent.push_back(i % 2 ? message::binary(std::move(body)) : message::text(std::move(body)));
    }
    co_await (send_all(c, sent) && receive_all(c, sent));
    auto [ec] = co_await c->async_close(close_code::normal, "", use_tuple);
    CHECK_FALSE(ec);
}

TEST_CASE("a client's burst beyond its output's high-water mark arrives whole and in order" *
          doctest::test_suite("coawait")) {
    run_loopback(10s, [] { return with_listener(loopback_server_config(), echo, large_client_burst); });
}

// --- the peer closes cleanly ---

asio::awaitable<void> say_bye_and_close(std::shared_ptr<server_view> v, connection_ptr c) {
    co_await c->async_send(message::text("bye"), use_tuple);
    auto [ec] = co_await c->async_close(close_code::normal, "done", use_tuple);
    v->end = ec;
    v->reason = c->disconnect_reason();
}

asio::awaitable<void> receive_after_peer_closed(listener& l) {
    auto c = co_await connect_to(loopback_url(l));
    auto [ec, m] = co_await c->async_receive(use_tuple);
    REQUIRE_FALSE(ec);
    CHECK(m.data() == "bye");
    std::tie(ec, m) = co_await c->async_receive(use_tuple);
    CHECK(ec == websocket::error::closed);
    CHECK_FALSE(c->disconnect_reason());
    CHECK_FALSE(c->is_open());
    CHECK(c->last_close().code == close_code::normal);
    CHECK(c->last_close().reason == "done");
    // The end of the stream is sticky, and every other operation reports it too.
    std::tie(ec, m) = co_await c->async_receive(use_tuple);
    CHECK(ec == websocket::error::closed);
    auto [wec] = co_await c->async_wait_closed(use_tuple);
    CHECK_FALSE(wec);
    CHECK(c->send_text("late") == wscoro::error::not_connected);
    auto [sec] = co_await c->async_send(message::text("late"), use_tuple);
    CHECK(sec == wscoro::error::not_connected);
}

TEST_CASE("async_receive after the peer closed cleanly returns closed" * doctest::test_suite("coawait")) {
    run_loopback(3s, [] {
        return [](std::shared_ptr<server_view> v) -> asio::awaitable<void> {
            listener::connection_handler handler = [v](connection_ptr c) {
                return say_bye_and_close(v, std::move(c));
            };
            wscoro::test::client_side client = receive_after_peer_closed;
            auto cfg = loopback_server_config();
            co_await with_listener(cfg, handler, client);
            CHECK_FALSE(v->end);  // the server's async_close: a completed closing handshake
            CHECK_FALSE(v->reason);
        }(std::make_shared<server_view>());
    });
}

// --- async_close ---

asio::awaitable<void> close_from_client(listener& l) {
    auto c = co_await connect_to(loopback_url(l));
    CHECK_FALSE(c->send_text("one"));
    auto [ec] = co_await c->async_close(close_code::normal, "bye now", use_tuple);
    CHECK_FALSE(ec);
    CHECK_FALSE(c->is_open());
    CHECK_FALSE(c->disconnect_reason());
    CHECK(c->last_close().code == close_code::normal);
    CHECK(c->send_text("two") == wscoro::error::not_connected);
    auto [rec, m] = co_await c->async_receive(use_tuple);
    CHECK(rec == websocket::error::closed);
    // A second close is harmless and completes at once with the same outcome.
    std::tie(ec) = co_await c->async_close(close_code::normal, "", use_tuple);
    CHECK_FALSE(ec);
}

asio::awaitable<void> async_close_test(std::shared_ptr<server_view> v) {
    auto const handler = recording(v);
    wscoro::test::client_side const client = close_from_client;
    auto const cfg = loopback_server_config();
    co_await with_listener(cfg, handler, client);
    CHECK(v->connections == 1);
    REQUIRE(v->got.size() == 1);  // queued before the close frame, so delivered before it
    CHECK(v->got[0].data() == "one");
    CHECK(v->end == websocket::error::closed);
    CHECK_FALSE(v->reason);
    CHECK(v->last_close.code == close_code::normal);
    CHECK(v->last_close.reason == "bye now");
}

TEST_CASE("async_close completes after the closing handshake" * doctest::test_suite("coawait")) {
    run_loopback(3s, [] { return async_close_test(std::make_shared<server_view>()); });
}

// --- read-ahead ---

// The handler takes nothing until the connection has ended: the messages the read loop read ahead
// (within read_buffer_size) are still delivered, in order, before the end of the stream.
asio::awaitable<void> receive_only_after_the_end(std::shared_ptr<server_view> v, connection_ptr c) {
    auto [wec] = co_await c->async_wait_closed(use_tuple);
    CHECK_FALSE(wec);
    co_await record_until_end(v, std::move(c));
}

asio::awaitable<void> send_three_and_close(listener& l) {
    auto c = co_await connect_to(loopback_url(l));
    for (auto const* text : {"a", "b", "c"}) CHECK_FALSE(c->send_text(text));
    auto [ec] = co_await c->async_close(close_code::normal, "", use_tuple);
    CHECK_FALSE(ec);
}

TEST_CASE("messages read ahead are delivered after the connection ended" * doctest::test_suite("coawait")) {
    run_loopback(3s, [] {
        return [](std::shared_ptr<server_view> v) -> asio::awaitable<void> {
            listener::connection_handler handler = [v](connection_ptr c) {
                return receive_only_after_the_end(v, std::move(c));
            };
            wscoro::test::client_side client = send_three_and_close;
            auto cfg = loopback_server_config();
            co_await with_listener(cfg, handler, client);
            REQUIRE(v->got.size() == 3);
            CHECK(v->got[0].data() == "a");
            CHECK(v->got[1].data() == "b");
            CHECK(v->got[2].data() == "c");
            CHECK(v->end == websocket::error::closed);
            CHECK_FALSE(v->reason);
        }(std::make_shared<server_view>());
    });
}

// --- back-pressure ---

// A server handler that reads nothing until the gate opens, then records everything.
struct gate {
    explicit gate(asio::any_io_executor ex) : go(ex, std::chrono::steady_clock::time_point::max()) {}
    asio::steady_timer go;  // cancelled to let the server read
    std::shared_ptr<server_view> view = std::make_shared<server_view>();
    std::size_t sent = 0;
};

asio::awaitable<void> read_after_gate(std::shared_ptr<gate> g, connection_ptr c) {
    co_await g->go.async_wait(use_tuple);
    co_await record_until_end(g->view, std::move(c));
}

asio::awaitable<void> fill_until_send_waits(std::shared_ptr<gate> g, listener& l) {
    wscoro::client_config cfg;
    cfg.send_queue_limit = 4;
    auto c = co_await connect_to(loopback_url(l), cfg);
    auto const big = message::binary(std::string(1 << 20, 'x'));  // one shared payload
    asio::steady_timer timer{co_await asio::this_coro::executor};
    bool waited = false;
    // The peer reads nothing: once TCP buffers and the queue are full, async_send must wait.
    while (!waited && g->sent < 256) {
        timer.expires_after(200ms);
        auto r = co_await (c->async_send(big, use_tuple) || timer.async_wait(use_tuple));
        if (r.index() == 0) {
            CHECK_FALSE(std::get<0>(std::get<0>(r)));
            ++g->sent;
        } else {
            waited = true;  // the send was cancelled: its message must not go out
        }
    }
    REQUIRE_MESSAGE(waited, "async_send never waited for the peer");
    CHECK(c->queued() == 4);
    CHECK(c->is_open());
    g->go.cancel();  // the peer starts reading: the queue drains and the next send completes
    auto [ec] = co_await c->async_send(message::text("last"), use_tuple);
    CHECK_FALSE(ec);
    std::tie(ec) = co_await c->async_close(close_code::normal, "", use_tuple);
    CHECK_FALSE(ec);
}

asio::awaitable<void> backpressure_test() {
    auto const ex = co_await asio::this_coro::executor;
    auto const g = std::make_shared<gate>(ex);
    listener::connection_handler const handler = [g](connection_ptr c) {
        return read_after_gate(g, std::move(c));
    };
    wscoro::test::client_side const client = [g](listener& l) { return fill_until_send_waits(g, l); };
    auto const cfg = loopback_server_config();
    co_await with_listener(cfg, handler, client);
    auto const& got = g->view->got;
    CHECK(g->sent >= 4);
    // Everything that was accepted, and nothing that was cancelled, in order.
    REQUIRE(got.size() == g->sent + 1);
    for (std::size_t i = 0; i < g->sent; ++i) CHECK(got[i].size() == std::size_t{1} << 20);
    CHECK(got.back().data() == "last");
    CHECK(g->view->end == websocket::error::closed);
}

TEST_CASE("async_send waits while the queue is full and resumes once the peer reads" *
          doctest::test_suite("coawait")) {
    run_loopback(4s, backpressure_test);
}

// --- cancellation ---

asio::awaitable<void> cancel_receive(listener& l) {
    auto c = co_await connect_to(loopback_url(l));
    auto ex = co_await asio::this_coro::executor;
    asio::steady_timer timer{ex};

    // The echo server sends nothing unasked, so the timer wins and the receive is cancelled.
    timer.expires_after(50ms);
    auto [order, rec, m, tec] =
        co_await asio::experimental::make_parallel_group(c->async_receive(asio::deferred),
                                                         timer.async_wait(asio::deferred))
            .async_wait(asio::experimental::wait_for_one(), asio::use_awaitable);
    CHECK(order[0] == 1);
    CHECK_FALSE(tec);
    CHECK(rec == asio::error::operation_aborted);
    CHECK(c->is_open());

    // The same with the awaitable operator.
    timer.expires_after(50ms);
    auto r = co_await (c->async_receive(use_tuple) || timer.async_wait(use_tuple));
    CHECK(r.index() == 1);
    CHECK(c->is_open());

    // Still usable: nothing was lost or half-received.
    for (std::string text : {"after", "again"}) {
        CHECK_FALSE(c->send_text(text));
        timer.expires_after(2s);
        auto r2 = co_await (c->async_receive(use_tuple) || timer.async_wait(use_tuple));
        REQUIRE(r2.index() == 0);
        auto [ec, got] = std::get<0>(r2);
        CHECK_FALSE(ec);
        CHECK(got.data() == text);
    }
    auto [ec] = co_await c->async_close(close_code::normal, "", use_tuple);
    CHECK_FALSE(ec);
}

TEST_CASE("a cancelled async_receive leaves the connection usable" * doctest::test_suite("coawait")) {
    run_loopback(3s, [] { return with_listener(loopback_server_config(), echo, cancel_receive); });
}

asio::awaitable<void> cancel_wait_closed(listener& l) {
    auto c = co_await connect_to(loopback_url(l));
    asio::steady_timer timer{co_await asio::this_coro::executor, 50ms};
    auto r = co_await (c->async_wait_closed(use_tuple) || timer.async_wait(use_tuple));
    CHECK(r.index() == 1);
    CHECK(c->is_open());
    auto [ec] = co_await c->async_close(close_code::normal, "", use_tuple);
    CHECK_FALSE(ec);
}

TEST_CASE("a cancelled async_wait_closed leaves the connection open" * doctest::test_suite("coawait")) {
    run_loopback(3s, [] { return with_listener(loopback_server_config(), echo, cancel_wait_closed); });
}

// --- overflow policies ---

asio::awaitable<void> overflow_reject(listener& l) {
    wscoro::client_config cfg;
    cfg.send_queue_limit = 4;
    cfg.on_overflow = wscoro::overflow_policy::reject_message;
    auto c = co_await connect_to(loopback_url(l), cfg);
    // Without yielding, nothing leaves the queue: the fifth send finds it full.
    for (int i = 0; i < 4; ++i) CHECK_FALSE(c->send_text("m" + std::to_string(i)));
    CHECK(c->send_text("m4") == wscoro::error::send_queue_full);
    CHECK(c->is_open());
    for (int i = 0; i < 4; ++i) {
        auto [ec, m] = co_await c->async_receive(use_tuple);
        REQUIRE_FALSE(ec);
        CHECK(m.data() == "m" + std::to_string(i));
    }
    CHECK_FALSE(c->send_text("m5"));  // the rejected message was dropped, the connection kept
    auto [ec, m] = co_await c->async_receive(use_tuple);
    REQUIRE_FALSE(ec);
    CHECK(m.data() == "m5");
    auto [cec] = co_await c->async_close(close_code::normal, "", use_tuple);
    CHECK_FALSE(cec);
}

TEST_CASE("overflow policy reject_message refuses the message and keeps the connection" *
          doctest::test_suite("coawait")) {
    run_loopback(3s, [] { return with_listener(loopback_server_config(), echo, overflow_reject); });
}

asio::awaitable<void> overflow_close(listener& l) {
    wscoro::client_config cfg;
    cfg.send_queue_limit = 4;
    cfg.on_overflow = wscoro::overflow_policy::close_connection;
    auto c = co_await connect_to(loopback_url(l), cfg);
    for (int i = 0; i < 4; ++i) CHECK_FALSE(c->send_text("m" + std::to_string(i)));
    CHECK(c->send_text("m4") == wscoro::error::send_queue_full);
    auto [ec] = co_await c->async_wait_closed(use_tuple);
    CHECK(ec == wscoro::error::send_queue_full);
    CHECK(c->disconnect_reason() == wscoro::error::send_queue_full);
    CHECK_FALSE(c->is_open());
    auto [rec, m] = co_await c->async_receive(use_tuple);
    CHECK(rec == wscoro::error::send_queue_full);
    CHECK(c->send_text("m5") == wscoro::error::not_connected);
}

asio::awaitable<void> overflow_close_test(std::shared_ptr<server_view> v) {
    auto const handler = recording(v);
    wscoro::test::client_side const client = overflow_close;
    auto const cfg = loopback_server_config();
    co_await with_listener(cfg, handler, client);
    CHECK(v->connections == 1);
    CHECK(v->last_close.code == close_code::policy_error);  // 1008
    CHECK(v->last_close.reason == "send queue overflow");
    for (auto const& m : v->got) CHECK(m.data().starts_with("m"));
}

TEST_CASE("overflow policy close_connection ends the connection with send_queue_full" *
          doctest::test_suite("coawait")) {
    run_loopback(3s, [] { return overflow_close_test(std::make_shared<server_view>()); });
}

// --- the server side ending connections ---

asio::awaitable<void> stop_with_open_connections(listener& l) {
    std::vector<connection_ptr> peers;
    for (int i = 0; i < 3; ++i) peers.push_back(co_await connect_to(loopback_url(l)));
    for (auto const& c : peers) {  // a round trip each: the server has registered all of them
        CHECK_FALSE(c->send_text("hi"));
        auto [ec, m] = co_await c->async_receive(use_tuple);
        REQUIRE_FALSE(ec);
    }
    CHECK(l.connections().size() == 3);
    l.stop();
    for (auto const& c : peers) {
        auto [ec, m] = co_await c->async_receive(use_tuple);
        CHECK(ec == websocket::error::closed);
        CHECK_FALSE(c->disconnect_reason());
        CHECK(c->last_close().code == close_code::going_away);  // 1001
    }
}

TEST_CASE("listener stop closes open connections with 1001 and ends run" * doctest::test_suite("coawait")) {
    // with_listener returns only once run() has returned.
    run_loopback(3s, [] { return with_listener(loopback_server_config(), echo, stop_with_open_connections); });
}

// Cancelling run() is stop(): it still drains before returning, so the listener may go right after.
asio::awaitable<void> connect_two(listener& l, std::shared_ptr<std::vector<connection_ptr>> peers) {
    for (int i = 0; i < 2; ++i) {
        auto c = co_await connect_to(loopback_url(l));
        CHECK_FALSE(c->send_text("hi"));
        auto [ec, m] = co_await c->async_receive(use_tuple);  // the server has it registered
        REQUIRE_FALSE(ec);
        peers->push_back(std::move(c));
    }
}

asio::awaitable<void> cancel_run_test() {
    auto const ex = co_await asio::this_coro::executor;
    auto const peers = std::make_shared<std::vector<connection_ptr>>();
    {
        listener lst{ex, loopback_server_config()};
        wscoro::diagnostics diag;
        REQUIRE_MESSAGE(!lst.listen(diag), diag.message);
        listener::connection_handler const handler = echo;
        // `||` cancels run() once the clients are connected.
        auto r = co_await (lst.run(handler) || connect_two(lst, peers));
        CHECK(r.index() == 1);
        CHECK(lst.connections().size() == 0);  // every session ended before run() returned
    }  // the listener is gone; nothing may refer to it any more
    REQUIRE(peers->size() == 2);
    for (auto const& c : *peers) {
        auto [ec, m] = co_await c->async_receive(use_tuple);
        CHECK(ec == websocket::error::closed);
        CHECK(c->last_close().code == close_code::going_away);
    }
}

TEST_CASE("cancelling listener run stops it and drains before returning" * doctest::test_suite("coawait")) {
    run_loopback(3s, cancel_run_test);
}

// Connects, and expects the server to close the connection with `code` before sending anything.
asio::awaitable<connection_ptr> closed_by_server(listener& l, close_code code) {
    auto c = co_await connect_to(loopback_url(l));
    auto [ec, m] = co_await c->async_receive(use_tuple);
    CHECK(ec == websocket::error::closed);
    CHECK(c->last_close().code == code);
    co_return c;
}

asio::awaitable<void> see_early_return(listener& l) {
    auto c = co_await closed_by_server(l, close_code::normal);
    CHECK_FALSE(c->disconnect_reason());
    auto [wec] = co_await c->async_wait_closed(use_tuple);
    CHECK_FALSE(wec);
}

asio::awaitable<void> return_at_once(connection_ptr) { co_return; }

TEST_CASE("a server handler returning early closes the connection cleanly" * doctest::test_suite("coawait")) {
    run_loopback(3s, [] { return with_listener(loopback_server_config(), return_at_once, see_early_return); });
}

// --- run() with a connection_starter: completion handlers instead of a coroutine per connection ---

// Echoes with completion handlers until its receive fails, then says it is done, a moment later:
// run() must wait for that, not only for the connection.
struct handler_echo : std::enable_shared_from_this<handler_echo> {
    handler_echo(connection_ptr c, std::function<void()> done, std::shared_ptr<std::vector<error_code>> ends)
        : c(std::move(c)), done(std::move(done)), ends(std::move(ends)) {}

    connection_ptr c;
    std::function<void()> done;
    std::shared_ptr<std::vector<error_code>> ends;  // how each receive ended, when done was called
    asio::steady_timer later{c->get_executor()};

    void receive() {
        c->async_receive([self = shared_from_this()](error_code ec, message m) {
            if (!ec) {
                CHECK_FALSE(self->c->send(std::move(m)));
                return self->receive();
            }
            self->later.expires_after(50ms);
            self->later.async_wait([self, ec](error_code) {
                self->ends->push_back(ec);
                std::exchange(self->done, nullptr)();
            });
        });
    }
};

asio::awaitable<void> echo_twice_and_leave(listener& l) {
    for (auto text : {"first", "second"}) {
        auto c = co_await connect_to(loopback_url(l));
        CHECK_FALSE(c->send_text(text));
        auto [ec, m] = co_await c->async_receive(use_tuple);
        REQUIRE_FALSE(ec);
        CHECK(m.data() == text);
        if (std::string_view{text} == "first") {
            auto [cec] = co_await c->async_close(close_code::normal, "", use_tuple);
            CHECK_FALSE(cec);
        }
        // The second stays open: stop() closes it with 1001.
    }
}

asio::awaitable<void> starter_test() {
    auto const ends = std::make_shared<std::vector<error_code>>();
    listener lst{co_await asio::this_coro::executor, loopback_server_config()};
    wscoro::diagnostics diag;
    REQUIRE_MESSAGE(!lst.listen(diag), diag.message);
    listener::connection_starter const start = [ends](connection_ptr c, std::function<void()> done) {
        std::make_shared<handler_echo>(std::move(c), std::move(done), ends)->receive();
    };
    wscoro::test::client_side const client = echo_twice_and_leave;
    co_await (lst.run(start) && wscoro::test::detail::stop_after(lst, client));
    // run() returned after both sessions said they were done, each after its stream ended.
    REQUIRE(ends->size() == 2);
    for (auto const& ec : *ends)
        CHECK(ec == websocket::error::closed);
    CHECK(lst.connections().size() == 0);
}

TEST_CASE("listener run with a connection_starter serves and waits for done" * doctest::test_suite("coawait")) {
    run_loopback(3s, starter_test);
}

asio::awaitable<void> connect_only(listener& l) {
    auto c = co_await connect_to(loopback_url(l));
    CHECK(c->is_open());
}

// `done` said at once, and twice: the second call must not count as the connection's own end.
asio::awaitable<void> done_twice_test() {
    listener lst{co_await asio::this_coro::executor, loopback_server_config()};
    wscoro::diagnostics diag;
    REQUIRE_MESSAGE(!lst.listen(diag), diag.message);
    auto const connected = std::make_shared<int>(0);
    listener::connection_starter const start = [connected](connection_ptr, std::function<void()> done) {
        ++*connected;
        done();
        done();
    };
    wscoro::test::client_side const client = connect_only;
    co_await (lst.run(start) && wscoro::test::detail::stop_after(lst, client));
    CHECK(*connected == 1);
    CHECK(lst.connections().size() == 0);  // run() still waited for the connection to end
}

TEST_CASE("a connection_starter's second done is ignored" * doctest::test_suite("coawait")) {
    run_loopback(3s, done_twice_test);
}

asio::awaitable<void> see_internal_error(listener& l) {
    co_await closed_by_server(l, close_code::internal_error);
}

asio::awaitable<void> throwing_starter_test() {
    auto const reports = std::make_shared<std::vector<std::pair<error_code, std::string>>>();
    listener lst{co_await asio::this_coro::executor, loopback_server_config()};
    lst.set_error_handler([reports](error_code ec, std::string_view what) { reports->emplace_back(ec, what); });
    wscoro::diagnostics diag;
    REQUIRE_MESSAGE(!lst.listen(diag), diag.message);
    listener::connection_starter const start = [](connection_ptr, std::function<void()>) {
        throw std::runtime_error("starter bug");
    };
    wscoro::test::client_side const client = see_internal_error;
    co_await (lst.run(start) && wscoro::test::detail::stop_after(lst, client));
    REQUIRE(reports->size() == 1);
    CHECK(reports->front().first == wscoro::error::callback_failed);
    CHECK_MESSAGE(reports->front().second.find("starter bug") != std::string::npos, reports->front().second);
    CHECK(lst.connections().size() == 0);
}

TEST_CASE("a connection_starter that throws closes its connection with 1011" * doctest::test_suite("coawait")) {
    run_loopback(3s, throwing_starter_test);
}

// --- async_connect failures ---

asio::awaitable<void> connect_failures(listener& l) {
    auto ex = co_await asio::this_coro::executor;
    wscoro::client_config cfg;
    wscoro::diagnostics diag;

    cfg.url = loopback_url(l, "/elsewhere");  // the listener answers 404
    auto [ec, c] = co_await wscoro::async_connect(ex, cfg, diag, use_tuple);
    CHECK(ec == wscoro::error::upgrade_rejected);
    CHECK(c == nullptr);
    CHECK_MESSAGE(diag.message.find("404") != std::string::npos, diag.message);

    cfg.url = "http://127.0.0.1/";
    std::tie(ec, c) = co_await wscoro::async_connect(ex, cfg, diag, use_tuple);
    CHECK(ec == wscoro::error::invalid_url);
    CHECK_MESSAGE(diag.message.find("scheme") != std::string::npos, diag.message);

    cfg.url = loopback_url(l);
    cfg.pong_wait = 1ms;  // shorter than ping_interval
    std::tie(ec, c) = co_await wscoro::async_connect(ex, cfg, use_tuple);  // without diagnostics
    CHECK(ec == wscoro::error::invalid_config);
    CHECK(c == nullptr);
}

TEST_CASE("async_connect reports rejected upgrades and bad input" * doctest::test_suite("coawait")) {
    run_loopback(3s, [] { return with_listener(loopback_server_config(), echo, connect_failures); });
}

}  // namespace
