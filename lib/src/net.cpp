#include "net.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/strand.hpp>

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

boost::asio::any_io_executor make_connection_strand(boost::asio::any_io_executor const& ex) {
    namespace asio = boost::asio;
    using plain = asio::io_context::executor_type;
    using tracked = asio::io_context::basic_executor_type<std::allocator<void>, 4>;  // outstanding work
    if (auto const* io = ex.target<plain>()) return asio::make_strand(*io);
    if (auto const* io = ex.target<tracked>())
        return asio::make_strand(asio::require(*io, asio::execution::outstanding_work.untracked));
    if (auto const* s = ex.target<asio::strand<plain>>()) return asio::make_strand(s->get_inner_executor());
    return asio::make_strand(ex);  // another execution context: correct, slower
}

}  // namespace wscoro::detail
