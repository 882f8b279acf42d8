#pragma once
// The set of open connections of a server, by id. Broadcast goes through here, and only here, so
// that a broker (pub/sub, fan-out across processes) can later feed the same entry point.
#include <wscoro/connection.hpp>

#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace wscoro {

/// Thread-safe. The lock is never held while connection or user code runs.
class connection_registry {
public:
    void add(connection_ptr c);
    void remove(std::string_view id);
    std::size_t size() const;
    connection_ptr find(std::string_view id) const;
    std::vector<connection_ptr> snapshot() const;

    /// Queues `m` (one shared payload) to every open connection; returns how many accepted it.
    /// A receiver whose queue is full is handled by its overflow policy and never delays the others.
    std::size_t broadcast(message const& m) const;
    /// Queues `m` to the connections `pick` selects.
    std::size_t broadcast_if(message const& m, std::function<bool(connection const&)> const& pick) const;

    void close_all(close_code code, std::string const& reason) const;
    void abort_all(error_code why) const;

private:
    mutable std::mutex mutex_;
    // Keyed by a view of the connection's id, which the entry's connection_ptr keeps alive: not a
    // second copy of the string per connection.
    std::unordered_map<std::string_view, connection_ptr> by_id_;
};

}  // namespace wscoro
