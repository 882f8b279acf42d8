#pragma once
// Small helpers shared by the server and the client side.
#include <boost/asio/ip/tcp.hpp>

#include <string>

namespace wscoro::detail {

/// "1.2.3.4:80" or "[::1]:80".
std::string to_string(boost::asio::ip::tcp::endpoint const& ep);

/// Unique within the process and unpredictable across processes: a random per-process prefix and
/// a counter. Not derived from anything a peer sends.
std::string make_connection_id();

}  // namespace wscoro::detail
