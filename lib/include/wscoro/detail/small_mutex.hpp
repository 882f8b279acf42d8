#pragma once
// A mutex of one byte, for state that every connection has and that is rarely contended: its end
// (why it ended, the last close frame) is written once or twice per connection, and read by
// whoever asks from another thread. std::mutex is 40 bytes, on every idle connection.
// Waiters sleep in the kernel (C++20 atomic wait), they do not spin.
#include <atomic>

namespace wscoro::detail {

class small_mutex {
public:
    void lock() noexcept {
        while (locked_.test_and_set(std::memory_order_acquire)) locked_.wait(true, std::memory_order_relaxed);
    }
    bool try_lock() noexcept { return !locked_.test_and_set(std::memory_order_acquire); }
    void unlock() noexcept {
        locked_.clear(std::memory_order_release);
        locked_.notify_one();
    }

private:
    std::atomic_flag locked_;  // clear: C++20 value-initializes it
};

}  // namespace wscoro::detail
