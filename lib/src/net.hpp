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

/// A new strand for one connection, as an any_io_executor. Over an io_context it wraps the
/// io_context's own executor: that strand fits in any_io_executor's small buffer, where a strand of
/// an any_io_executor does not and made every operation allocate (PERFORMANCE-NOTES.md).
boost::asio::any_io_executor make_connection_strand(boost::asio::any_io_executor const& ex);

}  // namespace wscoro::detail
