#include "address_limiter.hpp"

namespace wscoro::detail {

bool address_limiter::try_acquire(boost::asio::ip::address const& a) {
    if (limit_ == 0) return true;
    std::lock_guard lock{mutex_};
    auto& n = counts_[a];
    if (n >= limit_) return false;  // the entry exists already: n > 0
    ++n;
    return true;
}

void address_limiter::release(boost::asio::ip::address const& a) {
    if (limit_ == 0) return;
    std::lock_guard lock{mutex_};
    auto it = counts_.find(a);
    if (it == counts_.end()) return;
    if (--it->second == 0) counts_.erase(it);  // the map holds only addresses with connections
}

std::size_t address_limiter::count(boost::asio::ip::address const& a) const {
    std::lock_guard lock{mutex_};
    auto it = counts_.find(a);
    return it == counts_.end() ? 0 : it->second;
}

}  // namespace wscoro::detail
