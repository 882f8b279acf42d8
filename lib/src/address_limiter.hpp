#pragma once
// Counts a server's connections per peer IP address, for server_config::max_connections_per_ip:
// one address (a misbehaving client, a bot) cannot take every slot of the server.
#include <boost/asio/ip/address.hpp>

#include <cstddef>
#include <mutex>
#include <unordered_map>

namespace wscoro::detail {

class address_limiter {
public:
    explicit address_limiter(std::size_t limit) : limit_(limit) {}

    /// Counts one more connection from `a`; false (and nothing counted) when it has `limit` already.
    /// A limit of 0 counts nothing and always succeeds.
    bool try_acquire(boost::asio::ip::address const& a);
    /// Undoes one successful try_acquire(a).
    void release(boost::asio::ip::address const& a);
    /// Connections counted for `a` now.
    std::size_t count(boost::asio::ip::address const& a) const;

private:
    std::size_t const limit_;
    mutable std::mutex mutex_;  // handshakes of different connections run on different strands
    std::unordered_map<boost::asio::ip::address, std::size_t> counts_;  // no entry = zero
};

}  // namespace wscoro::detail
