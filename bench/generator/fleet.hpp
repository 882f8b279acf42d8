#pragma once
// The generator's connections: opened with a bounded number of handshakes in flight, closed
// together with a closing handshake each, bounded in time.
#include "options.hpp"
#include "sync.hpp"

#include <wscoro/config.hpp>
#include <wscoro/connection.hpp>

#include <cstddef>
#include <string>
#include <vector>

namespace wscoro::bench {

/// The connection settings every scenario uses: keepalive pings far apart (they would disturb the
/// measurement), a send queue deep enough for the echo depth, messages as large as --size.
client_config client_settings(options const& o);

struct opened_fleet {
    std::vector<connection_ptr> connections;  ///< [i]: connection i; null if its handshake failed
    std::size_t failed = 0;
    clock::duration elapsed{};  ///< from the first handshake started to the last one finished
};

/// Opens o.connections connections to o.url, at most o.concurrency handshakes at a time. Failures
/// are counted and the first few described on stderr. With o.progress, prints a line a second.
asio::awaitable<opened_fleet> open_fleet(options const& o);

/// Closes every non-null connection with a closing handshake (its messages must be drained by
/// someone meanwhile). Connections not closed within `timeout` are aborted. Returns how many did
/// not close cleanly.
asio::awaitable<std::size_t> close_fleet(std::vector<connection_ptr> const& connections,
                                         clock::duration timeout);

/// Why `c` ended, for a human: `closed with 1008 "send queue overflow"`, or the error.
std::string why_ended(connection const& c, error_code ec);

/// Drops every non-null connection without a closing handshake and waits until each has ended.
asio::awaitable<void> abort_fleet(std::vector<connection_ptr> const& connections);

}  // namespace wscoro::bench
