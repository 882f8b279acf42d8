#include "net.hpp"

#include <boost/asio/detail/scheduler.hpp>

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

bool single_threaded(boost::asio::any_io_executor const& ex) {
    namespace asio = boost::asio;
    auto const* io = ex.target<asio::io_context::executor_type>();
    if (!io) return false;
    // The hint the io_context was constructed with. Asio keeps it in its scheduler (detail API,
    // Boost 1.81); 1 means "one thread runs it".
    return asio::use_service<asio::detail::scheduler>(io->context()).concurrency_hint() == 1;
}

boost::asio::any_io_executor make_connection_executor(boost::asio::any_io_executor const& ex) {
    namespace asio = boost::asio;
    using plain = asio::io_context::executor_type;
    using tracked = asio::io_context::basic_executor_type<std::allocator<void>, 4>;  // outstanding work
    if (auto const* io = ex.target<tracked>())
        return make_connection_executor(asio::require(*io, asio::execution::outstanding_work.untracked));
    if (auto const* io = ex.target<plain>()) {
        if (single_threaded(ex)) return *io;
        return asio::make_strand(*io);
    }
    if (auto const* s = ex.target<asio::strand<plain>>()) return asio::make_strand(s->get_inner_executor());
    return asio::make_strand(ex);  // another execution context: correct, slower
}

}  // namespace wscoro::detail
