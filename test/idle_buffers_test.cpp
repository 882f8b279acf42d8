// What an idle connection keeps of its buffers. The receive string a connection waits with has at
// most read_buffer_size bytes of capacity (payload_cache.hpp picks it); the output buffers go
// back to the heap once the connection has gone quiet (corked_stream.hpp's release_buffers, which
// the keepalive loop calls). Internal pieces, so this file includes lib/src headers.
#include "payload_cache.hpp"  // first: proves the header is self-contained
#include "corked_stream.hpp"
#include "support/corked_pair.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>

#include <doctest/doctest.h>

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
using namespace std::chrono_literals;
using wscoro::detail::give_back_payload_string;
using wscoro::detail::take_payload_string;
using wscoro::detail::take_payload_string_for;
using wscoro::test::corked_pair;
using wscoro::test::run_until;

auto const suite = doctest::test_suite("alloc");
std::size_t const inline_capacity = std::string{}.capacity();

/// Empties this thread's cache (both kinds of strings), so that each test starts from nothing.
void drain_payload_cache() {
    for (int i = 0; i < 128; ++i) take_payload_string(std::size_t(-1));  // freed, not given back
}

std::unique_ptr<std::string> with_capacity(std::size_t n) {
    auto s = std::make_unique<std::string>();
    s->reserve(n);
    return s;
}

}  // namespace

TEST_CASE("the wait for a message takes no cached string larger than read_buffer_size" * suite) {
    drain_payload_cache();
    give_back_payload_string(with_capacity(64 * 1024));
    give_back_payload_string(with_capacity(3000));
    give_back_payload_string(with_capacity(100 * 1024));
    auto fits = take_payload_string(4096);
    CHECK(fits->capacity() >= 3000);
    CHECK(fits->capacity() <= 4096);
    // No other cached string is small enough: a new one, with no heap block.
    auto fresh = take_payload_string(4096);
    CHECK(fresh->capacity() == inline_capacity);
    // A larger message continues in the smallest cached string with room for it.
    auto larger = take_payload_string_for(50 * 1024);
    REQUIRE(larger);
    CHECK(larger->capacity() >= 64 * 1024);
    CHECK(larger->capacity() < 100 * 1024);
    CHECK_FALSE(take_payload_string_for(200 * 1024));  // more than any cached string holds
    drain_payload_cache();
}

TEST_CASE("strings with only inline storage do not crowd out the cached buffers" * suite) {
    // A reader gives back its first, inline-only string when a message needs a larger one. Many of
    // them must neither take the buffers' places nor be handed out while a buffer fits.
    drain_payload_cache();
    give_back_payload_string(with_capacity(500));
    for (int i = 0; i < 40; ++i) give_back_payload_string(std::make_unique<std::string>("tiny"));
    auto buffer = take_payload_string(4096);
    CHECK(buffer->capacity() >= 500);
    auto small = take_payload_string(4096);
    CHECK(small->empty());  // cleared when it was given back
    CHECK(small->capacity() == inline_capacity);
    // The buffer goes back (the cache still has room for it after all those small ones).
    give_back_payload_string(std::move(buffer));
    CHECK(take_payload_string(4096)->capacity() >= 500);
    drain_payload_cache();
}

TEST_CASE("a quiet stream gives its output buffers back and writes correctly afterwards" * suite) {
    corked_pair pair;
    auto& [ioc, peer, cork] = pair;
    CHECK(cork.buffer_bytes() == 0);

    std::string const body(3000, 'a');
    REQUIRE(cork.try_write_frame(asio::buffer("head", 4), asio::buffer(body)));
    cork.release_buffers();  // bytes are corked: nothing may be dropped
    CHECK(cork.buffer_bytes() >= body.size());
    cork.flush();
    REQUIRE(run_until(ioc, [&] { return !cork.writing(); }));
    // Kept for the next write (below keep_capacity): steady traffic does not allocate per write.
    auto const kept = cork.buffer_bytes();
    CHECK(kept >= body.size());
    cork.release_buffers();
    CHECK(cork.buffer_bytes() == 0);
    CHECK(kept > 0);

    REQUIRE(cork.try_write_frame(asio::buffer("next", 4), asio::buffer(body.data(), 10)));
    cork.flush();
    REQUIRE(run_until(ioc, [&] { return !cork.writing(); }));
    std::string got(4 + body.size() + 4 + 10, '\0');
    boost::system::error_code ec;
    asio::read(peer, asio::buffer(got), ec);
    REQUIRE_FALSE(ec);
    CHECK(got == "head" + body + "next" + body.substr(0, 10));
}

TEST_CASE("a write that completes ahead of another waiting write leaves that one intact" * suite) {
    // Both bodies are large, so queued by reference: each write waits until its bytes are written.
    // The first completes while the second still waits behind it (it was queued during the first
    // write). Taking the first out of the waiting list moves the second: with Asio 1.81's
    // any_completion_handler move assignment, that overflowed the stack.
    corked_pair pair;
    auto& [ioc, peer, cork] = pair;
    // A small send buffer, a body larger than what the peer's receive buffer takes, and nobody
    // reads yet: the first write cannot finish at once.
    cork.next_layer().set_option(asio::socket_base::send_buffer_size(4096));

    std::string const first(1024 * 1024, 'x'), second(64 * 1024, 'y');
    std::vector<std::size_t> completed;  // the bytes each write reported, in completion order
    boost::system::error_code failure;
    auto on_done = [&](boost::system::error_code ec, std::size_t n) {
        if (ec) failure = ec;
        completed.push_back(n);
    };
    cork.async_write_frame(asio::buffer("h1", 2), asio::buffer(first), on_done);
    REQUIRE(cork.writing());  // the first is being written: the second waits behind it
    cork.async_write_frame(asio::buffer("h2", 2), asio::buffer(second), on_done);

    std::string got(2 + first.size() + 2 + second.size(), '\0');
    bool read_done = false;
    asio::async_read(peer, asio::buffer(got), [&](boost::system::error_code ec, std::size_t) {
        if (ec) failure = ec;
        read_done = true;
    });
    REQUIRE(run_until(ioc, [&] { return completed.size() == 2 && read_done; }));
    CHECK_FALSE(failure);
    CHECK(completed == std::vector<std::size_t>{2 + first.size(), 2 + second.size()});
    CHECK(got == "h1" + first + "h2" + second);
}
