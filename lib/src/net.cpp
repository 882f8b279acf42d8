#include "net.hpp"

#include <atomic>
#include <cstdio>
#include <random>

namespace wscoro::detail {

std::string to_string(boost::asio::ip::tcp::endpoint const& ep) {
    auto const addr = ep.address();
    std::string host = addr.is_v6() ? "[" + addr.to_string() + "]" : addr.to_string();
    return host + ":" + std::to_string(ep.port());
}

std::string make_connection_id() {
    static std::uint32_t const prefix = std::random_device{}();
    static std::atomic<std::uint64_t> counter{0};
    char buf[32];
    std::snprintf(buf, sizeof buf, "%08x-%llx", prefix,
                  static_cast<unsigned long long>(counter.fetch_add(1, std::memory_order_relaxed) + 1));
    return buf;
}

}  // namespace wscoro::detail
