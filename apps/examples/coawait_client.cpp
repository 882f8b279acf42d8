// A client written with the co_await API: wscoro::async_connect, then async_send / async_receive
// for each line, then async_close. Pairs with coawait_echo_server.
//
//   coawait_client [URL [TEXT...]]     URL defaults to ws://localhost:8080/ws, TEXT to "hello"
//
// Sends each TEXT as a text message and prints each reply on its own line. Exit status 0 when every
// reply arrived (within 5 s each) and the connection closed cleanly.
#include <wscoro/connect.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <exception>
#include <iostream>
#include <string>
#include <vector>

namespace asio = boost::asio;
using namespace asio::experimental::awaitable_operators;
using namespace std::chrono_literals;

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);  // (error_code, T...), no throw

// Reads and drops messages until the connection ends. Incoming messages wait for their consumer
// (nothing is buffered behind your back), so while closing someone must keep reading: the server's
// close reply arrives behind whatever it sent before it.
asio::awaitable<void> drain(wscoro::connection_ptr conn) {
    for (;;)
        if (auto [ec, ignored] = co_await conn->async_receive(use_tuple); ec) co_return;
}

asio::awaitable<int> talk(wscoro::client_config config, std::vector<std::string> lines) {
    auto ex = co_await asio::this_coro::executor;

    // Resolve, TCP connect and upgrade, all within config.handshake_timeout. The connection runs
    // on its own strand of `ex`; `diag` says what failed (e.g. "server answered 404 Not Found").
    wscoro::diagnostics diag;
    auto [ec, conn] = co_await wscoro::async_connect(ex, config, diag, use_tuple);
    if (ec) {
        std::cerr << "connect failed: " << diag.message << " [" << ec.message() << "]" << std::endl;
        co_return 1;
    }

    asio::steady_timer timer{ex};
    for (auto& line : lines) {
        auto [sent] = co_await conn->async_send(wscoro::message::text(std::move(line)), use_tuple);
        if (sent) {
            std::cerr << "send failed: " << sent.message() << std::endl;
            co_return 1;
        }
        // Cancellation by racing a timer: `a || b` completes with whichever finishes first and
        // cancels the other (async_receive then fails with operation_aborted, losing nothing).
        timer.expires_after(5s);
        auto result = co_await (conn->async_receive(use_tuple) || timer.async_wait(use_tuple));
        if (result.index() == 1) {
            std::cerr << "no reply within 5 s" << std::endl;
            conn->abort();  // no closing handshake with a peer that stopped answering
            co_return 1;
        }
        auto& [rec, reply] = std::get<0>(result);
        if (rec) {  // websocket::error::closed: the server closed the connection
            std::cerr << "connection ended: " << rec.message() << std::endl;
            co_return 1;
        }
        std::cout << reply.data() << std::endl;
    }

    // async_close queues the close frame behind everything sent and completes when the connection
    // has ended: an empty error_code means the server answered our close (a clean closing
    // handshake). Meanwhile drain() consumes what still arrives; it ends with the connection.
    asio::co_spawn(ex, drain(conn), asio::detached);
    auto [closed] = co_await conn->async_close(wscoro::close_code::normal, "bye", use_tuple);
    if (closed) std::cerr << "close: " << closed.message() << std::endl;
    co_return closed ? 1 : 0;
}

int main(int argc, char** argv) {
    wscoro::client_config config;  // only the connection settings apply; reconnecting is ours to do
    config.url = argc > 1 ? argv[1] : "ws://localhost:8080/ws";
    std::vector<std::string> lines{argv + std::min(argc, 2), argv + argc};
    if (lines.empty()) lines.push_back("hello");

    asio::io_context ioc;
    int status = 1;
    asio::co_spawn(ioc, talk(std::move(config), std::move(lines)),
                   [&status](std::exception_ptr e, int s) {
                       if (e) std::rethrow_exception(e);
                       status = s;
                   });
    ioc.run();  // returns once talk() and the connection have both finished
    return status;
}
