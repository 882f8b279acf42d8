// A read that waits for the next flush (corked_stream::read_after_flush): it reaches the socket only
// after the answers to what was read so far were written, and it never waits for a flush that is
// not coming when its reader is cancelled. Internal pieces, so this file includes lib/src headers.
#include "support/corked_pair.hpp"

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <doctest/doctest.h>

#include <optional>
#include <string>

namespace {

namespace asio = boost::asio;
using boost::system::error_code;
using wscoro::test::corked_pair;
using wscoro::test::run_until;

auto const suite = doctest::test_suite("corked");

struct read_result {
    std::optional<error_code> ec;
    std::size_t n = 0;

    auto handler() {
        return [this](error_code e, std::size_t bytes) {
            ec = e;
            n = bytes;
        };
    }
};

// After a parked read: the next read is not parked, and gets what the peer sends.
void expect_plain_read(corked_pair& pair, std::string const& sent) {
    char buf[64];
    read_result r;
    pair.cork.async_read_some(asio::buffer(buf), r.handler());
    asio::write(pair.peer, asio::buffer(sent));
    REQUIRE(run_until(pair.ioc, [&] { return r.ec.has_value(); }));
    CHECK_FALSE(*r.ec);
    CHECK(std::string(buf, r.n) == sent);
}

}  // namespace

TEST_CASE("a read parked for the next flush starts once the answer was written" * suite) {
    corked_pair pair;
    auto& [ioc, peer, cork] = pair;
    char buf[64];
    read_result r;
    asio::write(peer, asio::buffer("request", 7));  // already there when the read parks

    cork.read_after_flush(true);
    cork.async_read_some(asio::buffer(buf), r.handler());
    CHECK(cork.reading());  // the consumer's idle flush is due (consumer_idle checks this)
    ioc.restart();
    ioc.poll();  // everything ready runs: the request waits, the read is parked
    CHECK_FALSE(r.ec);

    // The answer goes out first, then the read reaches the socket.
    REQUIRE(cork.try_write_frame(asio::buffer("ans", 3), asio::buffer("wer", 3)));
    cork.flush();
    REQUIRE(run_until(ioc, [&] { return r.ec.has_value(); }));
    CHECK_FALSE(*r.ec);
    CHECK(std::string(buf, r.n) == "request");
    char answer[6];
    asio::read(peer, asio::buffer(answer));
    CHECK(std::string(answer, 6) == "answer");

    expect_plain_read(pair, "next");  // one read only: the next one goes straight to the socket
}

TEST_CASE("a parked read that is cancelled completes at once without a flush" * suite) {
    corked_pair pair;
    auto& [ioc, peer, cork] = pair;
    char buf[16];
    read_result r;
    asio::cancellation_signal cancel;
    cork.read_after_flush(true);
    cork.async_read_some(asio::buffer(buf), asio::bind_cancellation_slot(cancel.slot(), r.handler()));
    ioc.restart();
    ioc.poll();
    CHECK_FALSE(r.ec);
    cancel.emit(asio::cancellation_type::terminal);  // e.g. another loop of the connection ended
    REQUIRE(run_until(ioc, [&] { return r.ec.has_value(); }));
    CHECK(*r.ec == asio::error::operation_aborted);
    CHECK(r.n == 0);

    expect_plain_read(pair, "data");  // the stream still reads: neither parked nor cancelled
}

TEST_CASE("a read parked after a write failed fails instead of waiting" * suite) {
    corked_pair pair;
    auto& [ioc, peer, cork] = pair;
    char buf[16];
    read_result r;
    cork.read_after_flush(true);
    cork.async_read_some(asio::buffer(buf), r.handler());
    // The flush finds the socket closed: the write fails, and the parked read with it.
    error_code ignored;
    cork.next_layer().close(ignored);
    REQUIRE(cork.try_write_frame(asio::buffer("x", 1), asio::buffer("y", 1)));
    cork.flush();
    REQUIRE(run_until(ioc, [&] { return r.ec.has_value(); }));
    CHECK(*r.ec);
}
