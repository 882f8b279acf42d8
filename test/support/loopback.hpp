#pragma once
// Bounded io_context runs for the co_await API tests, and a listener on 127.0.0.1:0 to run them
// against. Every run is bounded (ioc.run_for) and must leave no work behind (ioc.stopped()).
#include <wscoro/connect.hpp>
#include <wscoro/listener.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <doctest/doctest.h>

#include <chrono>
#include <exception>
#include <functional>
#include <optional>
#include <string>

namespace wscoro::test {

inline constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);  // (ec, T...), no throw

/// Runs the coroutine made by `body` on a fresh io_context for at most `limit`, rethrows what it
/// threw, and checks that it finished and left no loop or timer behind. `body` is a plain function
/// (or a non-coroutine lambda) returning the awaitable: captures die before a coroutine frame does.
///
/// The body runs inside one ioc.run(), as in an application: Asio's per-thread handler memory
/// cache lives as long as the run() call, and run_for() (a run_one_until per handler) would start
/// each handler with an empty one. What is left once the body finished is drained by run_for().
inline void run_loopback(std::chrono::milliseconds limit, std::function<asio::awaitable<void>()> const& body) {
    asio::io_context ioc;
    std::optional<std::exception_ptr> outcome;  // set when body finishes
    asio::steady_timer deadline{ioc, limit};
    deadline.async_wait([&](boost::system::error_code ec) {
        if (!ec) ioc.stop();  // timed out
    });
    asio::co_spawn(ioc, body(), [&](std::exception_ptr e) {
        outcome = e;
        deadline.cancel();
        ioc.stop();  // the rest drains below
    });
    ioc.run();
    REQUIRE_MESSAGE(outcome.has_value(), "test coroutine timed out");
    ioc.restart();
    ioc.run_for(limit);
    if (*outcome) std::rethrow_exception(*outcome);
    CHECK_MESSAGE(ioc.stopped(), "a loop or timer outlived the test");
}

/// A server_config for 127.0.0.1 with a kernel-chosen port, endpoint "/ws".
inline server_config loopback_server_config() {
    server_config cfg;
    cfg.address = "127.0.0.1:0";
    cfg.path = "/ws";
    return cfg;
}

/// The client URL of a listening listener.
inline std::string loopback_url(listener const& l, std::string const& path = "/ws") {
    return "ws://127.0.0.1:" + std::to_string(l.local_endpoint().port()) + path;
}

namespace detail {
inline asio::awaitable<void> stop_after(listener& l, std::function<asio::awaitable<void>(listener&)> client) {
    try {
        co_await client(l);
    } catch (...) {
        l.stop();  // let run() end so that the failure surfaces instead of a timeout
        throw;
    }
    l.stop();
}
}  // namespace detail

/// What runs alongside the listener: the test's client side.
using client_side = std::function<asio::awaitable<void>(listener&)>;

/// Listens on cfg (which should be a loopback address), runs `handler` for each connection and
/// `client(listener)` alongside; when `client` returns, stops the listener and waits for run() to
/// return, so every connection has ended when this completes.
///
/// g++ 12.2 destroys twice the temporaries of a co_await full-expression that are lambdas or
/// brace-initialized aggregates (`co_await with_listener(cfg, [p](...) {...}, ...)` releases p one
/// time too many). Inside a coroutine, name the handlers first and pass them as lvalues.
inline asio::awaitable<void> with_listener(server_config cfg, listener::connection_handler handler,
                                           client_side client) {
    using namespace asio::experimental::awaitable_operators;
    listener lst{co_await asio::this_coro::executor, std::move(cfg)};
    diagnostics diag;
    auto ec = lst.listen(diag);
    REQUIRE_MESSAGE(!ec, diag.message);
    co_await (lst.run(std::move(handler)) && detail::stop_after(lst, std::move(client)));
}

/// Connects to `url` with the given config (url filled in); fails the test on error.
/// g++ 12.2 bug: a brace-initialized aggregate prvalue (`client_config{}`, also as a default
/// argument) passed to a coroutine inside a co_await expression is destroyed twice. Hence no
/// default argument here, and the overload below passes an lvalue.
inline asio::awaitable<connection_ptr> connect_to(std::string url, client_config cfg) {
    cfg.url = std::move(url);
    diagnostics diag;
    auto ex = co_await asio::this_coro::executor;
    auto [ec, c] = co_await async_connect(ex, cfg, diag, use_tuple);
    REQUIRE_MESSAGE(!ec, ec.message() << ": " << diag.message);
    REQUIRE(c);
    co_return c;
}

inline asio::awaitable<connection_ptr> connect_to(std::string url) {
    client_config cfg;
    co_return co_await connect_to(std::move(url), cfg);
}

}  // namespace wscoro::test
