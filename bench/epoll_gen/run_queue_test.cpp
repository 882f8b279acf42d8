// The run-queue reading behind the "busy machine" note of bench/run.py.
#include "run_queue.hpp"  // first: proves the header is self-contained

#include <doctest/doctest.h>

#include <unistd.h>

#include <string>

namespace epoll = wscoro::bench::epoll;

TEST_CASE("run-queue waits are read for this process and refused for a process that is gone") {
    auto const self = epoll::run_queue_wait_ns("self");
    REQUIRE(self.has_value());
    CHECK(*self >= 0);
    auto const by_pid = epoll::run_queue_wait_ns(std::to_string(::getpid()));
    REQUIRE(by_pid.has_value());
    CHECK(*by_pid >= *self);  // the same counters, read later
    CHECK_FALSE(epoll::run_queue_wait_ns("999999999").has_value());

    epoll::run_queue_window w{std::nullopt};
    w.begin();
    w.end();
    CHECK_FALSE(w.server_pct(1.0).has_value());  // no server to watch
    REQUIRE(w.self_pct(1.0).has_value());
    CHECK(*w.self_pct(1.0) >= 0);
    CHECK_FALSE(w.self_pct(0.0).has_value());  // no window
}
