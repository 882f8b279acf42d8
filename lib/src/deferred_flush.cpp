#include "deferred_flush.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include <algorithm>

namespace wscoro::detail {

asio::execution_context::id deferred_flush::id;

deferred_flush::deferred_flush(asio::execution_context& context) : asio::execution_context::service(context) {}

void deferred_flush::shutdown() {
    dirty_.clear();
    flushing_.clear();
}

void deferred_flush::add(connection_ptr c, asio::any_io_executor const& io) {
    dirty_.push_back(std::move(c));
    ++added_;
    if (posted_) return;
    posted_ = true;
    io_ = io;
    added_ = 0;
    passes_ = fruitful_ = 0;
    asio::post(io_, [this] { run(); });
}

void deferred_flush::run() {
    if (passes_ > 0 && added_ > 0) ++fruitful_;  // the first pass sees the burst that posted it
    added_ = 0;
    if (++passes_ < target_) {
        asio::post(io_, [this] { run(); });
        return;
    }
    target_ = fruitful_ > 0 ? std::min(target_ * 2, max_passes) : std::max(target_ / 2, min_passes);
    posted_ = false;
    std::swap(dirty_, flushing_);
    for (auto& c : flushing_) c->flush_deferred();
    flushing_.clear();
}

}  // namespace wscoro::detail
