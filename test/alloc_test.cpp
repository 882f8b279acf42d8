// Steady-state echo allocates nothing per message: every operator new in this process is counted
// (a separate test program, so the counting replaces the global allocator of nothing else), and a
// ping-pong of one message between a listener and a client over loopback must not grow the count.
// So is every aligned_alloc: Asio's handler memory (its per-thread recycling cache, and what it
// allocates when that cache has no block) comes from there, not from operator new. Not under the
// sanitizers, which intercept aligned_alloc themselves.
#include "handler_memory.hpp"
#include "support/loopback.hpp"
#include "support/recorder.hpp"

#include <wscoro/client.hpp>
#include <wscoro/server.hpp>

#include <doctest/doctest.h>

#include <boost/asio/detached.hpp>

#include <atomic>
#include <cstddef>
#include <cstdlib>
#include <new>

namespace {
std::atomic<std::uint64_t> allocations{0};
// False on a thread whose allocations a test leaves out (its client side).
thread_local bool counted_thread = true;
void count_one() noexcept {
    if (counted_thread) allocations.fetch_add(1, std::memory_order_relaxed);
}
}  // namespace

// Every form of operator new and delete is replaced: a sanitizer checks that memory goes back
// through the family it came from, so counting one form and not its siblings would mix families.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define WSCORO_COUNT_ALIGNED_ALLOC 0
#else
#define WSCORO_COUNT_ALIGNED_ALLOC 1
extern "C" void* __libc_memalign(std::size_t alignment, std::size_t n);  // glibc's, under aligned_alloc

// Replaces the C library's for the whole program (the executable's definition comes first).
extern "C" void* aligned_alloc(std::size_t alignment, std::size_t n) noexcept {
    count_one();
    return __libc_memalign(alignment, n);
}
#endif

namespace {
void* aligned_uncounted(std::size_t alignment, std::size_t n) noexcept {
#if WSCORO_COUNT_ALIGNED_ALLOC
    return __libc_memalign(alignment, n);
#else
    return std::aligned_alloc(alignment, n);
#endif
}

void* counted_allocation(std::size_t n, std::size_t alignment = 0) noexcept {
    count_one();
    if (n == 0) n = 1;
    if (alignment <= alignof(std::max_align_t)) return std::malloc(n);
    return aligned_uncounted(alignment, (n + alignment - 1) / alignment * alignment);
}
void* checked(void* p) {
    if (!p) throw std::bad_alloc{};
    return p;
}
}  // namespace

void* operator new(std::size_t n) { return checked(counted_allocation(n)); }
void* operator new[](std::size_t n) { return checked(counted_allocation(n)); }
void* operator new(std::size_t n, std::nothrow_t const&) noexcept { return counted_allocation(n); }
void* operator new[](std::size_t n, std::nothrow_t const&) noexcept { return counted_allocation(n); }
void* operator new(std::size_t n, std::align_val_t a) { return checked(counted_allocation(n, std::size_t(a))); }
void* operator new[](std::size_t n, std::align_val_t a) { return checked(counted_allocation(n, std::size_t(a))); }
void* operator new(std::size_t n, std::align_val_t a, std::nothrow_t const&) noexcept {
    return counted_allocation(n, std::size_t(a));
}
void* operator new[](std::size_t n, std::align_val_t a, std::nothrow_t const&) noexcept {
    return counted_allocation(n, std::size_t(a));
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, std::nothrow_t const&) noexcept { std::free(p); }
void operator delete[](void* p, std::nothrow_t const&) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t, std::nothrow_t const&) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t, std::nothrow_t const&) noexcept { std::free(p); }

namespace {

namespace asio = wscoro::asio;
using wscoro::connection_ptr;
using wscoro::listener;
using wscoro::message;
using wscoro::test::use_tuple;

asio::awaitable<void> echo(connection_ptr c) {
    for (;;) {
        auto [ec, m] = co_await c->async_receive(use_tuple);
        if (ec) co_return;
        if (auto [sec] = co_await c->async_send(std::move(m), use_tuple); sec) co_return;
    }
}

struct counts {
    std::uint64_t start = 0;   // the allocation count when the measured round trips began
    std::uint64_t steady = 0;  // allocations during the measured round trips
    int round_trips = 0;
};

// The client keeps `depth` messages in flight and sends back every reply: after the first ones
// nobody builds a new message, so whatever is allocated per round trip is the library's doing.
// With depth > 1 messages also wait in the queues (the write loop is busy when they come).
asio::awaitable<void> ping_pong(std::string url, counts& out, int depth, int warm_up, int measured) {
    auto c = co_await wscoro::test::connect_to(std::move(url));
    for (int i = 0; i < depth; ++i) {
        auto [sec] = co_await c->async_send(message::binary(std::string(32, 'x')), use_tuple);
        if (sec) co_return;
    }
    for (int i = 0; i < warm_up + measured; ++i) {
        if (i == warm_up) out.start = allocations.load();
        // No doctest assertion inside the loop: they allocate.
        auto [rec, reply] = co_await c->async_receive(use_tuple);
        if (rec || reply.size() != 32) break;
        auto [sec] = co_await c->async_send(std::move(reply), use_tuple);
        if (sec) break;
        ++out.round_trips;
    }
    out.steady = allocations.load() - out.start;
    co_await c->async_close(wscoro::close_code::normal, "", use_tuple);
}

// Many connections, one message in flight each, all on one thread of the client: the server's
// reads then bring in messages for many connections at once, and their hand-offs to the callbacks
// complete together (src/handler_memory.hpp). Measured from the first round trip after every
// connection is up and `warm_up` round trips were made in all, for `measured` round trips in all.
struct fleet {
    int connected = 0;
    int round_trips = 0;
    int start_at = -1;  // round_trips when the measurement started
    bool done = false;
    int finished = 0;   // connections that left
    asio::steady_timer* all_left = nullptr;  // cancelled by the last to leave
    counts result;
};

asio::awaitable<void> fleet_member(std::string url, fleet& f, int connections, int warm_up, int measured) {
    auto c = co_await wscoro::test::connect_to(std::move(url));
    ++f.connected;
    auto [first] = co_await c->async_send(message::binary(std::string(32, 'x')), use_tuple);
    while (!first && !f.done) {
        auto [rec, reply] = co_await c->async_receive(use_tuple);
        if (rec || reply.size() != 32) break;
        ++f.round_trips;
        if (f.start_at < 0 && f.connected == connections && f.round_trips >= warm_up) {
            f.start_at = f.round_trips;
            f.result.start = allocations.load();
        } else if (f.start_at >= 0 && f.round_trips - f.start_at == measured) {
            f.result.steady = allocations.load() - f.result.start;
            f.result.round_trips = warm_up + measured;
            f.done = true;  // every member stops after its next reply
        }
        if (auto [sec] = co_await c->async_send(std::move(reply), use_tuple); sec) break;
    }
    if (++f.finished == connections) f.all_left->cancel();  // also after a failure: no hang
    co_await c->async_close(wscoro::close_code::normal, "", use_tuple);
}

asio::awaitable<void> run_fleet(std::string url, fleet& f, int connections, int warm_up, int measured) {
    auto ex = co_await asio::this_coro::executor;
    asio::steady_timer all_left{ex, asio::steady_timer::time_point::max()};
    f.all_left = &all_left;
    for (int i = 0; i < connections; ++i)
        asio::co_spawn(ex, fleet_member(url, f, connections, warm_up, measured), asio::detached);
    co_await all_left.async_wait(use_tuple);  // run_loopback bounds the wait
    f.all_left = nullptr;
}

void check_no_allocation(counts const& result, int warm_up, int measured) {
    REQUIRE(result.round_trips == warm_up + measured);
    MESSAGE("allocations in ", measured, " round trips: ", result.steady);
    // Both ends' receive, queue, write and read paths run once per message each way.
    CHECK(result.steady < measured / 100);
}

}  // namespace

TEST_CASE("handler_memory: one block for operations that follow each other" * doctest::test_suite("alloc")) {
    wscoro::detail::handler_memory memory;
    wscoro::detail::handler_allocator<std::uint64_t> words{memory};
    wscoro::detail::handler_allocator<char> bytes{words};  // a rebound copy shares the block
    // No doctest assertion until the end: with -s, a passing one allocates too.
    auto const before = allocations.load();
    auto* first = words.allocate(8);  // the block, made
    words.deallocate(first, 8);
    auto* second = words.allocate(4);  // the same block: it fits
    auto* meanwhile = words.allocate(4);  // the block is taken: the heap
    words.deallocate(meanwhile, 4);
    words.deallocate(second, 4);
    auto const after_reuse = allocations.load() - before;
    auto* larger = words.allocate(32);  // grown once (the old block freed), then reused
    words.deallocate(larger, 32);
    auto* again = bytes.allocate(256);
    bytes.deallocate(again, 256);
    auto const after_growth = allocations.load() - before;

    CHECK(second == first);
    CHECK(meanwhile != first);
    CHECK(after_reuse == 2);
    CHECK(bytes == wscoro::detail::handler_allocator<char>{memory});
    CHECK(static_cast<void*>(again) == static_cast<void*>(larger));
    CHECK(after_growth == 3);
}

TEST_CASE("steady-state echo allocates nothing per message" * doctest::test_suite("alloc")) {
    int depth = 1;
    SUBCASE("one message in flight") { depth = 1; }
    SUBCASE("eight in flight: messages wait in the queues") { depth = 8; }
    counts result;
    int const warm_up = 500, measured = 5000;
    listener::connection_handler handler = echo;
    wscoro::test::client_side client = [&](listener& l) {
        return ping_pong(wscoro::test::loopback_url(l), result, depth, warm_up, measured);
    };
    wscoro::test::run_loopback(std::chrono::seconds{30}, [&] {
        return wscoro::test::with_listener(wscoro::test::loopback_server_config(), handler, client);
    });
    check_no_allocation(result, warm_up, measured);
}

TEST_CASE("the callback facade's echo allocates nothing per message" * doctest::test_suite("alloc")) {
    wscoro::server_config cfg = wscoro::test::loopback_server_config();
    wscoro::server srv{cfg};
    srv.set_callbacks(nullptr, nullptr, [](connection_ptr const& c, message const& m) { c->send(m); }, nullptr);
    wscoro::diagnostics diag;
    REQUIRE_MESSAGE(!srv.start(diag), diag.message);
    counts result;
    int const warm_up = 500, measured = 5000;
    std::string const url = "ws://" + srv.address() + "/ws";
    wscoro::test::run_loopback(std::chrono::seconds{30},
                               [&] { return ping_pong(url, result, 8, warm_up, measured); });
    srv.stop();
    check_no_allocation(result, warm_up, measured);
}

TEST_CASE("the callback facade allocates nothing per message when many connections are ready at once" *
          doctest::test_suite("alloc")) {
    wscoro::server_config cfg = wscoro::test::loopback_server_config();
    wscoro::server srv{cfg};
    srv.set_callbacks(nullptr, nullptr, [](connection_ptr const& c, message const& m) { c->send(m); }, nullptr);
    wscoro::diagnostics diag;
    REQUIRE_MESSAGE(!srv.start(diag), diag.message);
    // Only the server's thread counts: 100 client connections on one thread are the test's own
    // load, not the server's cost.
    counted_thread = false;
    fleet f;
    // A long warm-up: until the payload cache holds as many strings as 100 connections ever keep
    // at once. With 2000 round trips that high-water mark still rose now and then in the window.
    int const connections = 100, warm_up = 60000, measured = 20000;
    std::string const url = "ws://" + srv.address() + "/ws";
    wscoro::test::run_loopback(std::chrono::seconds{30},
                               [&] { return run_fleet(url, f, connections, warm_up, measured); });
    counted_thread = true;
    srv.stop();
    REQUIRE(f.finished == connections);
    check_no_allocation(f.result, warm_up, measured);
}

TEST_CASE("a ping-pong between the two callback facades allocates nothing per message" *
          doctest::test_suite("alloc")) {
    wscoro::server srv{wscoro::test::loopback_server_config()};
    srv.set_callbacks(nullptr, nullptr, [](connection_ptr const& c, message const& m) { c->send(m); }, nullptr);
    wscoro::diagnostics diag;
    REQUIRE_MESSAGE(!srv.start(diag), diag.message);
    wscoro::client_config ccfg;
    ccfg.url = "ws://" + srv.address() + "/ws";
    wscoro::client cli{ccfg};
    int const warm_up = 2000, measured = 5000;
    counts result;  // written on the client's thread until `done` is set
    wscoro::test::latch_flag done;
    // The client's callback sends every reply back: nobody builds a new message after the first 8.
    cli.set_callbacks(nullptr, nullptr, [&](message const& m) {
        if (result.round_trips == warm_up + measured) return;  // done: the last replies are dropped
        if (++result.round_trips == warm_up) result.start = allocations.load();
        if (result.round_trips == warm_up + measured) {
            result.steady = allocations.load() - result.start;
            done.set();
            return;
        }
        cli.send(m);
    }, nullptr);
    REQUIRE_MESSAGE(!cli.connect(diag), diag.message);
    for (int i = 0; i < 8; ++i) REQUIRE_FALSE(cli.send(message::binary(std::string(32, 'x'))));
    REQUIRE(done.wait(std::chrono::seconds{30}));
    cli.close();
    srv.stop();
    check_no_allocation(result, warm_up, measured);
}
