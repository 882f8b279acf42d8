// with_concrete_socket (lib/src/concrete_socket.hpp): a connection's socket, re-typed to hold an
// io_context's executor (or a strand of one) concretely, is the same connection, registered with
// the reactor again: bytes flow both ways through asynchronous operations. Other executors keep
// the type-erased socket. Internal pieces, so this file includes lib/src headers.
#include "concrete_socket.hpp"
#include "support/corked_pair.hpp"

#include <boost/asio/read.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/write.hpp>
#include <doctest/doctest.h>

#include <optional>
#include <string>
#include <type_traits>

namespace {

namespace asio = boost::asio;
using boost::system::error_code;
using tcp = asio::ip::tcp;
using wscoro::test::run_until;

auto const suite = doctest::test_suite("concrete_socket");

// A connected pair over loopback: `ours` on `ours_ex`, the peer on the io_context.
template <class Executor> std::pair<tcp::socket, tcp::socket> loopback_pair(asio::io_context& ioc, Executor ours_ex) {
    tcp::acceptor acceptor{ioc, {asio::ip::address_v4::loopback(), 0}};
    tcp::socket peer{ioc};
    peer.connect(acceptor.local_endpoint());
    return {acceptor.accept(ours_ex), std::move(peer)};
}

// Bytes both ways through asynchronous operations on the re-typed socket.
template <class Socket> void exchange(asio::io_context& ioc, Socket& ours, tcp::socket& peer) {
    std::string const hello = "through the re-typed socket";
    std::string got(hello.size(), '\0');
    std::optional<error_code> wrote, read;
    asio::async_write(ours, asio::buffer(hello), [&](error_code ec, std::size_t) { wrote = ec; });
    asio::async_read(peer, asio::buffer(got), [&](error_code ec, std::size_t) { read = ec; });
    REQUIRE(run_until(ioc, [&] { return wrote && read; }));
    CHECK_FALSE(*wrote);
    CHECK_FALSE(*read);
    CHECK(got == hello);

    std::string const back = "and back";
    std::string got_back(back.size(), '\0');
    read.reset();
    asio::async_read(ours, asio::buffer(got_back), [&](error_code ec, std::size_t) { read = ec; });
    asio::write(peer, asio::buffer(back));
    REQUIRE(run_until(ioc, [&] { return read.has_value(); }));
    CHECK_FALSE(*read);
    CHECK(got_back == back);
}

TEST_CASE("a socket on an io_context's executor is re-typed and still carries the connection" * suite) {
    asio::io_context ioc;
    auto [ours, peer] = loopback_pair(ioc, ioc.get_executor());
    auto const remote = ours.remote_endpoint();
    bool concrete = false;
    wscoro::detail::with_concrete_socket(std::move(ours), [&](auto s) {
        concrete = std::is_same_v<decltype(s), wscoro::detail::tcp_socket_on<wscoro::detail::io_executor>>;
        REQUIRE(s.is_open());
        CHECK(s.remote_endpoint() == remote);
        exchange(ioc, s, peer);
    });
    CHECK(concrete);
}

TEST_CASE("a socket on a strand of an io_context is re-typed to hold the strand" * suite) {
    asio::io_context ioc;
    auto [ours, peer] = loopback_pair(ioc, asio::make_strand(ioc));
    bool concrete = false;
    wscoro::detail::with_concrete_socket(std::move(ours), [&](auto s) {
        concrete = std::is_same_v<decltype(s), wscoro::detail::tcp_socket_on<wscoro::detail::io_strand>>;
        REQUIRE(s.is_open());
        exchange(ioc, s, peer);
    });
    CHECK(concrete);
}

TEST_CASE("a socket on another executor keeps its type-erased executor" * suite) {
    asio::io_context ioc;
    asio::thread_pool pool{1};
    auto [ours, peer] = loopback_pair(ioc, asio::make_strand(pool));
    bool erased = false;
    wscoro::detail::with_concrete_socket(std::move(ours), [&](auto s) {
        erased = std::is_same_v<decltype(s), tcp::socket>;
        CHECK(s.is_open());
        error_code ec;
        asio::write(s, asio::buffer("x", 1), ec);  // the same socket still works
        CHECK_FALSE(ec);
    });
    CHECK(erased);
    pool.join();
}

TEST_CASE("a closed socket is handed on as it is" * suite) {
    asio::io_context ioc;
    tcp::socket closed{ioc};
    bool erased = false;
    wscoro::detail::with_concrete_socket(std::move(closed), [&](auto s) {
        erased = std::is_same_v<decltype(s), tcp::socket>;
        CHECK_FALSE(s.is_open());
    });
    CHECK(erased);
}

}  // namespace
