#pragma once
// Waiting for a condition inside the generator's single thread. Everything runs on one io_context
// thread, so counters and flags need no lock: a coroutine checks its condition and, if it must
// wait, suspends on a timer that whoever changes the state cancels. No wake-up can be lost, since
// nothing else runs between the check and the suspension.
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <functional>

namespace wscoro::bench {

namespace asio = boost::asio;
using clock = std::chrono::steady_clock;

// Completion as a tuple (error_code, T...): failures are values, nothing throws.
inline constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

/// One waiter at a time: wait() completes at notify() or at the deadline. The waiter re-checks its
/// condition, so a notify() that finds nobody waiting needs no memory of it.
class wakeup {
public:
    explicit wakeup(asio::any_io_executor ex) : timer_(std::move(ex)) {}

    void notify() { timer_.cancel(); }
    asio::awaitable<void> wait(clock::time_point deadline = clock::time_point::max()) {
        timer_.expires_at(deadline);
        co_await timer_.async_wait(use_tuple);  // operation_aborted = notified
    }

private:
    asio::steady_timer timer_;
};

/// Counts finished tasks down to zero; one coroutine waits for zero.
class latch {
public:
    latch(asio::any_io_executor ex, std::size_t count) : wake_(std::move(ex)), count_(count) {}

    void add(std::size_t n = 1) noexcept { count_ += n; }
    void count_down() {
        if (--count_ == 0) wake_.notify();
    }
    std::size_t remaining() const noexcept { return count_; }

    /// True once the count is zero; false if `deadline` came first.
    asio::awaitable<bool> wait(clock::time_point deadline = clock::time_point::max()) {
        while (count_ > 0 && clock::now() < deadline) co_await wake_.wait(deadline);
        co_return count_ == 0;
    }

private:
    wakeup wake_;
    std::size_t count_;
};

/// Lets time pass until `end` (a phase of the run), calling `tick` about once a second meanwhile
/// if it is set (the --progress lines).
inline asio::awaitable<void> wait_until(clock::time_point end, std::function<void()> tick) {
    asio::steady_timer timer{co_await asio::this_coro::executor};
    for (auto next_tick = clock::now() + std::chrono::seconds{1}; clock::now() < end;) {
        timer.expires_at(tick ? std::min(next_tick, end) : end);
        co_await timer.async_wait(use_tuple);
        if (tick && clock::now() >= next_tick && clock::now() < end) {
            tick();
            next_tick += std::chrono::seconds{1};
        }
    }
}

}  // namespace wscoro::bench
