#include "facade.hpp"

#include <algorithm>

namespace wscoro::detail {

void io_threads::start() {
    for (std::size_t i = 0; i < count_; ++i)
        threads_.emplace_back([self = shared_from_this()] { self->ioc.run(); });
}

bool io_threads::is_current() const {
    auto const me = std::this_thread::get_id();
    return std::any_of(threads_.begin(), threads_.end(), [me](auto const& t) { return t.get_id() == me; });
}

void io_threads::join() {
    bool const from_inside = is_current();
    for (auto& t : threads_) {
        if (!t.joinable()) continue;
        if (from_inside) t.detach();  // each thread holds a reference to *this until it returns
        else t.join();
    }
    threads_.clear();
}

}  // namespace wscoro::detail
