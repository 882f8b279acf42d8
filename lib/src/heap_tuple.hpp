#pragma once
// use_heap_tuple(): the completion token of the one-off operations that accept and upgrade a
// connection (its HTTP reads and writes, the WebSocket handshake, the TCP accept and connect).
//
// Why: Asio keeps freed operation memory and coroutine frames in small per-thread caches, and a
// cached block goes to the next allocation it fits. A handshake's blocks then hosted the new
// connection's long-lived frames and waits, each in a block sized for an HTTP read or write: about
// 1.2 KB more per idle connection. So these operations take their memory from the heap and give
// it back there (one allocation per handshake operation costs nothing measurable), and they are
// deferred rather than use_awaitable's, which makes a coroutine frame per operation (304 bytes,
// from the frames' cache, where a keepalive frame took it next: 64 bytes per idle connection).
// The frame of the coroutine that awaits them grows instead, and ends with the handshake.
//
// Asio 1.81's bind_allocator cannot wrap deferred (it wants an old-style async_result), hence a
// token of our own: it binds the allocator to the handler itself.
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/bind_allocator.hpp>
#include <boost/asio/deferred.hpp>

#include <memory>
#include <utility>

namespace wscoro::detail {

namespace asio = boost::asio;

/// Plain operator new and delete. Not std::allocator: Asio takes std::allocator<void> to mean "no
/// allocator of its own" and recycles the operation's memory as usual.
template <class T> struct heap_allocator {
    using value_type = T;
    heap_allocator() = default;
    template <class U> heap_allocator(heap_allocator<U> const&) noexcept {}
    T* allocate(std::size_t n) { return std::allocator<T>{}.allocate(n); }
    void deallocate(T* p, std::size_t n) noexcept { std::allocator<T>{}.deallocate(p, n); }
    template <class U> bool operator==(heap_allocator<U> const&) const noexcept { return true; }
};

/// The token type of use_heap_tuple(): co_await gives (ec, T...) like as_tuple(deferred).
struct heap_tuple_t {};

inline constexpr heap_tuple_t use_heap_tuple() noexcept { return {}; }

}  // namespace wscoro::detail

template <class... Signatures>
struct boost::asio::async_result<wscoro::detail::heap_tuple_t, Signatures...> {
    template <class Initiation, class RawToken, class... Args>
    static auto initiate(Initiation&& initiation, RawToken&&, Args&&... args) {
        auto token = asio::as_tuple(asio::deferred);
        return asio::async_initiate<decltype(token), Signatures...>(
            [initiation = std::forward<Initiation>(initiation)](auto&& handler, auto&&... call_args) mutable {
                std::move(initiation)(asio::bind_allocator(wscoro::detail::heap_allocator<void>{},
                                                           std::forward<decltype(handler)>(handler)),
                                      std::forward<decltype(call_args)>(call_args)...);
            },
            token, std::forward<Args>(args)...);
    }
};
