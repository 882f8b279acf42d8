#pragma once
// The three load patterns. Each runs on the calling coroutine's (single-threaded) executor, is
// bounded in time, leaves no connection behind, and returns its JSON report.
#include "options.hpp"
#include "report.hpp"

#include <boost/asio/awaitable.hpp>

namespace wscoro::bench {

/// C connections, each keeping D messages in flight; every reply verified.
boost::asio::awaitable<json::object> run_echo(options const& o);
/// C subscribers of a relaying server, connection 0 also publishing within a window.
boost::asio::awaitable<json::object> run_broadcast(options const& o);
/// Opens C connections with K handshakes in flight: handshakes/s, server memory per connection.
boost::asio::awaitable<json::object> run_connect(options const& o);

}  // namespace wscoro::bench
