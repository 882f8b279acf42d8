#pragma once
// Small helpers shared by the server and the client side.
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <string>

namespace wscoro::detail {

/// "1.2.3.4:80" or "[::1]:80".
std::string to_string(boost::asio::ip::tcp::endpoint const& ep);

/// Unique within the process and unpredictable across processes: a random per-process prefix and
/// a counter. Not derived from anything a peer sends.
std::string make_connection_id();

/// Whether `ex` is the executor of an io_context made for a single thread: constructed with
/// concurrency hint 1 (`io_context{1}`), which says that one thread runs it.
bool single_threaded(boost::asio::any_io_executor const& ex);

/// The executor a new connection runs on: everything of one connection is serialized on it.
/// - An io_context that one thread runs (single_threaded): its own executor. The thread already
///   serializes, and a strand's queue, lock and type-erased invoker were about 30% of the
///   instructions per echoed message (callgrind, echo D=1: 12.0k -> 7.9k per message).
/// - Any other io_context: a strand of its own executor. That strand fits in any_io_executor's
///   small buffer, where a strand of an any_io_executor does not and made every operation
///   allocate (PERFORMANCE-NOTES.md).
/// - Another execution context: a strand of `ex`.
boost::asio::any_io_executor make_connection_executor(boost::asio::any_io_executor const& ex);

}  // namespace wscoro::detail
