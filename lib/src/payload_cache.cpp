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
std::size_t const inline_capacity = std::string{}.capacity();  // no heap block up to this

// Per thread. `alive` is trivially destructible: payloads released while the thread's other
// thread_local objects are destroyed (after this cache) are freed instead of cached.
struct cache {
    std::vector<std::string*> strings;  // with a heap block: receive buffers
    std::size_t string_bytes = 0;       // their capacity
    // Without one (inline storage only): a reader's first string, given back when the message
    // needed a larger one. Kept apart: among the buffers they would crowd out the real ones.
    std::vector<std::string*> small;
    std::vector<void*> blocks;  // all of one size: the control block type below
    cache() {
        strings.reserve(max_cached);
        small.reserve(max_cached);
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
    for (auto* s : small) delete s;
    for (auto* b : blocks) ::operator delete(b);
}

void recycle(std::string* s) noexcept {
    if (cache_alive && s->capacity() <= inline_capacity) {
        auto& c = this_thread_cache;
        if (c.small.size() < max_cached) {
            s->clear();
            c.small.push_back(s);  // reserved: cannot throw
            return;
        }
    } else if (cache_alive && s->capacity() <= max_string_capacity) {
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

std::unique_ptr<std::string> take_payload_string(std::size_t max_capacity) {
    auto& c = local_cache();
    // The most recent buffer that fits: in steady traffic the back one, the warmest.
    for (auto it = c.strings.end(); it != c.strings.begin();) {
        --it;
        if ((*it)->capacity() > max_capacity) continue;
        std::unique_ptr<std::string> s{*it};
        c.strings.erase(it);
        c.string_bytes -= s->capacity();
        return s;
    }
    if (!c.small.empty()) {
        std::unique_ptr<std::string> s{c.small.back()};
        c.small.pop_back();
        return s;
    }
    return std::make_unique<std::string>();
}

std::unique_ptr<std::string> take_payload_string_for(std::size_t bytes) {
    auto& c = local_cache();
    auto best = c.strings.end();
    for (auto it = c.strings.begin(); it != c.strings.end(); ++it) {
        auto const capacity = (*it)->capacity();
        if (capacity >= bytes && (best == c.strings.end() || capacity < (*best)->capacity()))
            best = it;
    }
    if (best == c.strings.end()) return nullptr;
    std::unique_ptr<std::string> s{*best};
    c.strings.erase(best);
    c.string_bytes -= s->capacity();
    return s;
}

void give_back_payload_string(std::unique_ptr<std::string> s) {
    if (s) recycle(s.release());
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
