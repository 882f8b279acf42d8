#pragma once
// A block of memory for a waiter's operations, which follow each other one at a time: a channel
// receive, then its posted completion, then the next receive.
//
// Why not Asio's per-thread recycling cache, which serves such blocks too: it keeps only a few
// blocks of each kind. When one read brings in messages for 100 connections, 100 completions are
// posted before the first of them runs, and all but a few of their blocks came from the heap
// (callgrind, echo C=100 D=1: 0.7 heap allocations per echoed message). A block of the waiter's
// own cannot run out.
#include <cstddef>
#include <new>

namespace wscoro::detail {

class handler_memory {
public:
    handler_memory() = default;
    handler_memory(handler_memory const&) = delete;
    handler_memory& operator=(handler_memory const&) = delete;
    // The owner outlives every operation that uses the block: the operations hold the handler
    // that keeps the owner alive, and free their memory before they destroy that handler.
    ~handler_memory() { ::operator delete(block_); }

    /// The block, grown to `size` if need be; the heap while another operation holds the block.
    void* allocate(std::size_t size) {
        if (in_use_) return ::operator new(size);
        if (size > size_) {
            ::operator delete(block_);
            block_ = nullptr;  // if operator new throws, no freed block stays behind
            size_ = 0;
            block_ = ::operator new(size);
            size_ = size;
        }
        in_use_ = true;
        return block_;
    }

    void deallocate(void* p) noexcept {
        if (p == block_) in_use_ = false;
        else ::operator delete(p);
    }

private:
    void* block_ = nullptr;
    std::size_t size_ = 0;
    bool in_use_ = false;
};

/// The allocator to bind to a handler (asio::bind_allocator): all its copies share one block.
template <class T> class handler_allocator {
public:
    using value_type = T;

    explicit handler_allocator(handler_memory& memory) noexcept : memory_(&memory) {}
    template <class U>
    handler_allocator(handler_allocator<U> const& other) noexcept : memory_(other.memory_) {}

    T* allocate(std::size_t n) {
        static_assert(alignof(T) <= __STDCPP_DEFAULT_NEW_ALIGNMENT__, "operator new's alignment");
        return static_cast<T*>(memory_->allocate(n * sizeof(T)));
    }
    void deallocate(T* p, std::size_t) noexcept { memory_->deallocate(p); }

    template <class U> bool operator==(handler_allocator<U> const& other) const noexcept {
        return memory_ == other.memory_;
    }

private:
    template <class> friend class handler_allocator;
    handler_memory* memory_;
};

}  // namespace wscoro::detail
