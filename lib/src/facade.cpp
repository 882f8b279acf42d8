#include "facade.hpp"

namespace wscoro::detail {

namespace {
// Which io_threads runs on this thread: answers is_current() without reading threads_, which
// start() may still be filling while the first threads already run callbacks.
thread_local io_threads const* running_here = nullptr;
}  // namespace

void io_threads::start() {
    for (std::size_t i = 0; i < count_; ++i)
        threads_.emplace_back([self = shared_from_this()] {
            running_here = self.get();
            self->ioc.run();
            running_here = nullptr;
        });
}

bool io_threads::is_current() const { return running_here == this; }

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
