#pragma once
// A connection's TCP socket, re-typed after the HTTP stage to hold its executor concretely.
//
// Why: tcp::socket holds an any_io_executor (56 bytes), and so does every operation on it, twice
// or more: Beast's read state for the socket, which an idle connection holds for its whole life,
// carried four copies (530 bytes in all). When the executor is one of the two kinds that
// make_connection_executor makes (an io_context's own, or a strand of one), the connection runs
// over a socket of that executor type instead: 8 bytes (a strand: 24) per copy. The connection's
// loops then hold it concretely too (stream_connection's LoopExecutor is the socket's).
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/strand.hpp>

#include <optional>
#include <unistd.h>

namespace wscoro::detail {

using io_executor = boost::asio::io_context::executor_type;
using io_strand = boost::asio::strand<io_executor>;
template <class Executor> using tcp_socket_on = boost::asio::basic_stream_socket<boost::asio::ip::tcp, Executor>;

/// The same operating-system socket, held by a socket object of executor type Executor. Nothing
/// may be pending on `from`. Empty if the socket cannot be moved (then `from` keeps it, unless
/// even that failed: then it is closed, and the handshake that follows fails on it).
template <class Executor>
std::optional<tcp_socket_on<Executor>> retyped(boost::asio::ip::tcp::socket& from, Executor const& ex) {
    boost::system::error_code ec;
    auto const protocol = from.local_endpoint(ec).protocol();  // v4 or v6
    if (ec) return std::nullopt;
    auto const fd = from.release(ec);
    if (ec) return std::nullopt;
    tcp_socket_on<Executor> to{ex};
    if (!to.assign(protocol, fd, ec)) return to;
    if (from.assign(protocol, fd, ec)) ::close(fd);  // registered with neither: do not leak it
    return std::nullopt;
}

/// f(socket): with the socket re-typed when its executor is an io_context's or a strand of one,
/// else as it is. f's result has one type for the three kinds (an awaitable, say).
template <class F> auto with_concrete_socket(boost::asio::ip::tcp::socket socket, F&& f) {
    if (auto const* io = socket.get_executor().target<io_executor>()) {
        if (auto s = retyped(socket, *io)) return f(std::move(*s));
    } else if (auto const* strand = socket.get_executor().target<io_strand>()) {
        if (auto s = retyped(socket, *strand)) return f(std::move(*s));
    }
    return f(std::move(socket));
}

}  // namespace wscoro::detail
