#include "facade.hpp"

#include <algorithm>

namespace wscoro::detail {

namespace {
// Which io_threads runs on this thread: answers is_current() without reading threads_, which
// start() may still be filling while the first threads already run callbacks.
thread_local io_threads const* running_here = nullptr;
}  // namespace

io_threads::io_threads(std::size_t n) {
    contexts_.reserve(n);
    for (std::size_t i = 0; i < std::max<std::size_t>(n, 1); ++i) {
        contexts_.push_back(std::make_unique<asio::io_context>(1));
        if (i > 0) idle_guards_.push_back(asio::make_work_guard(*contexts_.back()));
    }
}

std::vector<asio::any_io_executor> io_threads::executors() const {
    std::vector<asio::any_io_executor> all;
    for (auto const& c : contexts_) all.emplace_back(c->get_executor());
    return all;
}

void io_threads::start() {
    for (std::size_t i = 0; i < contexts_.size(); ++i)
        threads_.emplace_back([self = shared_from_this(), i] {
            running_here = self.get();
            self->contexts_[i]->run();
            // The main context ran out of work: the listener's run() (or the client's loop) is
            // over, so the others end once their last handlers have run.
            if (i == 0)
                for (auto& guard : self->idle_guards_) guard.reset();
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
