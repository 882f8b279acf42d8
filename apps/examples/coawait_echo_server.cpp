// An echo server written with the co_await API: a wscoro::listener on an io_context we own, and
// one coroutine per connection that sends every message back, opcode and all.
//
//   coawait_echo_server [HOST:PORT]     default ":8080"; the endpoint is /ws
//
// Prints `listening on ws://HOST:PORT/ws` once listening; SIGINT or SIGTERM stops it (exit 0).
#include <wscoro/listener.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <csignal>
#include <exception>
#include <iostream>

namespace asio = boost::asio;

// Completion token for `co_await op(use_tuple)`: the error_code comes back as a value, no throw.
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

// The application's coroutine for one connection. It runs on the connection's strand, so there is
// no locking here; it ends when the peer leaves (async_receive fails) or when it returns, and the
// listener then closes the connection.
asio::awaitable<void> echo(wscoro::connection_ptr conn) {
    std::cout << "connected: " << conn->remote_address() << std::endl;
    for (;;) {
        auto [ec, msg] = co_await conn->async_receive(use_tuple);
        if (ec) break;  // websocket::error::closed for a clean close, else why it ended
        // async_send waits while the outbound queue is full: a slow reader slows this loop down
        // instead of growing memory. A message is a shared payload: no copy here.
        if (auto [sent] = co_await conn->async_send(std::move(msg), use_tuple); sent) break;
    }
    auto const why = conn->disconnect_reason();
    std::cout << "disconnected: " << conn->remote_address()
              << (why ? " (" + why.message() + ")" : std::string{}) << std::endl;
}

// Serves until listener::stop(), then stops waiting for signals so that io_context::run() returns.
// Plain parameters, no lambda captures: a coroutine's frame outlives the lambda object.
asio::awaitable<void> serve(wscoro::listener& listener, asio::signal_set& signals) {
    co_await listener.run(echo);  // returns when the accept loop and every connection have ended
    signals.cancel();
}

int main(int argc, char** argv) {
    asio::io_context ioc;  // one thread; pass more threads to run() and nothing else changes

    wscoro::server_config config;  // defaults: no connection limit, 30 s pings, 1024-message queues
    config.address = argc > 1 ? argv[1] : ":8080";
    config.path = "/ws";
    wscoro::listener listener{ioc.get_executor(), config};
    listener.set_error_handler([](wscoro::error_code ec, std::string_view what) {
        std::cerr << "error: " << what << " [" << ec.message() << "]" << std::endl;
    });

    // SIGINT/SIGTERM: stop accepting and send close 1001 to every client (bounded by
    // shutdown_timeout); run() then returns.
    asio::signal_set signals{ioc, SIGINT, SIGTERM};
    signals.async_wait([&listener](wscoro::error_code ec, int) {
        if (!ec) listener.stop();
    });

    wscoro::diagnostics diag;
    if (auto ec = listener.listen(diag)) {
        std::cerr << "cannot listen: " << diag.message << " [" << ec.message() << "]" << std::endl;
        return 1;
    }
    std::cout << "listening on ws://" << listener.address() << config.path << std::endl;

    asio::co_spawn(ioc, serve(listener, signals), [](std::exception_ptr e) {
        if (e) std::rethrow_exception(e);  // a bug: let it surface from run()
    });
    ioc.run();
    return 0;
}
