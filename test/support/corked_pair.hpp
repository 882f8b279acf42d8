#pragma once
// A corked stream over loopback and the plain socket at its other end, for tests of
// corked_stream.hpp (an internal piece: the including target adds lib/src to its include path).
#include "corked_stream.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <chrono>

namespace wscoro::test {

/// Runs `ioc` until `done()` holds, for at most two seconds.
template <class Done> bool run_until(boost::asio::io_context& ioc, Done done) {
    using namespace std::chrono_literals;
    ioc.restart();  // it stopped when it last ran out of work
    auto const deadline = std::chrono::steady_clock::now() + 2s;
    while (!done() && std::chrono::steady_clock::now() < deadline) ioc.run_one_for(10ms);
    return done();
}

/// A corked stream (corking on, 4 KiB kept) and the plain socket at its other end, over loopback.
struct corked_pair {
    using tcp = boost::asio::ip::tcp;

    boost::asio::io_context ioc;
    tcp::socket peer{ioc};
    wscoro::detail::corked_stream<tcp::socket> cork{accepted(ioc, peer)};

    corked_pair() { cork.enable_corking(4096); }

private:
    static tcp::socket accepted(boost::asio::io_context& ioc, tcp::socket& peer) {
        tcp::acceptor acceptor{ioc, {boost::asio::ip::address_v4::loopback(), 0}};
        peer.connect(acceptor.local_endpoint());
        return acceptor.accept();
    }
};

}  // namespace wscoro::test
