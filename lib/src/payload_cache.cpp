#include "payload_cache.hpp"

#include <cstddef>
#include <new>
#include <vector>

namespace wscoro::detail {

namespace {

// Many: the read loops of all connections whose data one epoll_wait reported each take a string
// before any of their messages is released.
constexpr std::size_t max_cached = 1024;                 // strings, and control blocks, per thread
constexpr std::size_t max_string_capacity = 256 * 1024;  // larger strings are freed
constexpr std::size_t max_cached_bytes = 1024 * 1024;    // capacity of all cached strings

// Per thread. `alive` is trivially destructible: payloads released while the thread's other
// thread_local objects are destroyed (after this cache) are freed instead of cached.
struct cache {
    std::vector<std::string*> strings;
    std::size_t string_bytes = 0;  // their capacity
    std::vector<void*> blocks;  // all of one size: the control block type below
    cache() {
        strings.reserve(max_cached);
        blocks.reserve(max_cached);
    }
    ~cache();
};
thread_local bool cache_alive = false;
thread_local cache this_thread_cache;

cache& local_cache() {
    cache_alive = true;  // the first use constructs this_thread_cache
    return this_thread_cache;
}

cache::~cache() {
    cache_alive = false;
    for (auto* s : strings) delete s;
    for (auto* b : blocks) ::operator delete(b);
}

void recycle(std::string* s) noexcept {
    if (cache_alive && s->capacity() <= max_string_capacity) {
        auto& c = this_thread_cache;
        if (c.strings.size() < max_cached && c.string_bytes + s->capacity() <= max_cached_bytes) {
            s->clear();
            c.string_bytes += s->capacity();
            c.strings.push_back(s);  // reserved: cannot throw
            return;
        }
    }
    delete s;
}

struct recycle_string {
    void operator()(std::string const* s) const noexcept { recycle(const_cast<std::string*>(s)); }
};

// Allocates shared_ptr control blocks (one object at a time, all of one type) from the cache.
template <class T> struct block_allocator {
    using value_type = T;
    block_allocator() = default;
    template <class U> block_allocator(block_allocator<U> const&) noexcept {}

    T* allocate(std::size_t n) {
        if (n == 1 && cache_alive) {
            auto& blocks = this_thread_cache.blocks;
            if (!blocks.empty()) {
                void* p = blocks.back();
                blocks.pop_back();
                return static_cast<T*>(p);
            }
        }
        return static_cast<T*>(::operator new(n * sizeof(T)));
    }
    void deallocate(T* p, std::size_t n) noexcept {
        if (n == 1 && cache_alive && this_thread_cache.blocks.size() < max_cached) {
            this_thread_cache.blocks.push_back(p);
            return;
        }
        ::operator delete(p);
    }
    template <class U> bool operator==(block_allocator<U> const&) const noexcept { return true; }
};

}  // namespace

std::unique_ptr<std::string> take_payload_string() {
    auto& c = local_cache();
    if (c.strings.empty()) return std::make_unique<std::string>();
    std::unique_ptr<std::string> s{c.strings.back()};
    c.strings.pop_back();
    c.string_bytes -= s->capacity();
    return s;
}

std::shared_ptr<std::string const> share_payload(std::unique_ptr<std::string> s) {
    if (!s || s->empty()) {
        if (s) recycle(s.release());
        return nullptr;
    }
    local_cache();
    // Only one control block type is ever made with block_allocator, so its cached blocks all fit.
    return std::shared_ptr<std::string const>{s.release(), recycle_string{}, block_allocator<char>{}};
}

}  // namespace wscoro::detail
