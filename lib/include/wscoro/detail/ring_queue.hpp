#pragma once
// The buffer of a connection's channels: a ring instead of Asio's default std::deque.
//
// Why: a deque allocates a 512-byte node every few elements as items flow through it (and one even
// while empty), so a busy send queue allocated per message. The ring allocates only to grow; it
// keeps up to `kept_capacity` slots when it empties (steady traffic reuses them) and frees a larger
// burst's storage, so an idle connection holds nothing.
#include <boost/asio/experimental/channel_traits.hpp>

#include <cstddef>
#include <memory>
#include <utility>

namespace wscoro::detail {

template <class T> class ring_queue {
public:
    static constexpr std::size_t kept_capacity = 64;

    ring_queue() = default;
    ring_queue(ring_queue&& other) noexcept
        : data_(std::exchange(other.data_, nullptr)), capacity_(std::exchange(other.capacity_, 0)),
          head_(std::exchange(other.head_, 0)), size_(std::exchange(other.size_, 0)) {}
    ring_queue& operator=(ring_queue&& other) noexcept {
        if (this != &other) {
            release();
            data_ = std::exchange(other.data_, nullptr);
            capacity_ = std::exchange(other.capacity_, 0);
            head_ = std::exchange(other.head_, 0);
            size_ = std::exchange(other.size_, 0);
        }
        return *this;
    }
    ring_queue(ring_queue const&) = delete;
    ring_queue& operator=(ring_queue const&) = delete;
    ~ring_queue() { release(); }

    std::size_t size() const noexcept { return size_; }
    bool empty() const noexcept { return size_ == 0; }
    T& front() noexcept { return data_[head_]; }

    void push_back(T&& v) { emplace(std::move(v)); }
    void push_back(T const& v) { emplace(v); }

    void pop_front() noexcept {
        std::destroy_at(data_ + head_);
        head_ = (head_ + 1) & (capacity_ - 1);
        if (--size_ == 0) {
            head_ = 0;
            if (capacity_ > kept_capacity) release();
        }
    }

    void clear() noexcept {
        while (size_ > 0) pop_front();
    }

private:
    template <class U> void emplace(U&& v) {
        if (size_ == capacity_) grow();
        std::construct_at(data_ + ((head_ + size_) & (capacity_ - 1)), std::forward<U>(v));
        ++size_;
    }

    void grow() {
        std::size_t const bigger = capacity_ ? capacity_ * 2 : 4;  // a power of two: masks, not modulo
        std::allocator<T> alloc;
        T* fresh = alloc.allocate(bigger);
        for (std::size_t i = 0; i < size_; ++i) {
            T* from = data_ + ((head_ + i) & (capacity_ - 1));
            std::construct_at(fresh + i, std::move(*from));
            std::destroy_at(from);
        }
        if (data_) alloc.deallocate(data_, capacity_);
        data_ = fresh;
        capacity_ = bigger;
        head_ = 0;
    }

    void release() noexcept {
        clear_without_release();
        if (data_) std::allocator<T>{}.deallocate(data_, capacity_);
        data_ = nullptr;
        capacity_ = 0;
        head_ = 0;
    }

    void clear_without_release() noexcept {
        for (; size_ > 0; --size_) {
            std::destroy_at(data_ + head_);
            head_ = (head_ + 1) & (capacity_ - 1);
        }
    }

    T* data_ = nullptr;
    std::size_t capacity_ = 0;  // zero or a power of two
    std::size_t head_ = 0;
    std::size_t size_ = 0;
};

/// Asio's channel traits with ring_queue as the buffer.
template <class... Signatures>
struct ring_channel_traits : boost::asio::experimental::channel_traits<Signatures...> {
    template <class... NewSignatures> struct rebind {
        using other = ring_channel_traits<NewSignatures...>;
    };
    template <class Element> struct container {
        using type = ring_queue<Element>;
    };
};

}  // namespace wscoro::detail
