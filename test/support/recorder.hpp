#pragma once
// Collects events from callbacks on any thread; tests wait on a condition with a bounded timeout
// (never a sleep).
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <vector>

namespace wscoro::test {

using namespace std::chrono_literals;

template <class T> class recorder {
public:
    void push(T v) {
        {
            std::lock_guard lock{mutex_};
            items_.push_back(std::move(v));
        }
        cv_.notify_all();
    }
    /// Waits until pred(items) holds or `limit` passes; returns whether it held.
    bool wait(std::function<bool(std::vector<T> const&)> const& pred,
              std::chrono::milliseconds limit = 10s) {
        std::unique_lock lock{mutex_};
        return cv_.wait_for(lock, limit, [&] { return pred(items_); });
    }
    bool wait_for_count(std::size_t n, std::chrono::milliseconds limit = 10s) {
        return wait([n](auto const& v) { return v.size() >= n; }, limit);
    }
    std::vector<T> items() const {
        std::lock_guard lock{mutex_};
        return items_;
    }
    std::size_t size() const {
        std::lock_guard lock{mutex_};
        return items_.size();
    }

private:
    mutable std::mutex mutex_;
    std::condition_variable cv_;
    std::vector<T> items_;
};

/// A flag to wait for.
class latch_flag {
public:
    void set() {
        {
            std::lock_guard lock{mutex_};
            set_ = true;
        }
        cv_.notify_all();
    }
    bool wait(std::chrono::milliseconds limit = 10s) {
        std::unique_lock lock{mutex_};
        return cv_.wait_for(lock, limit, [&] { return set_; });
    }
    bool is_set() const {
        std::lock_guard lock{mutex_};
        return set_;
    }

private:
    mutable std::mutex mutex_;
    std::condition_variable cv_;
    bool set_ = false;
};

}  // namespace wscoro::test
