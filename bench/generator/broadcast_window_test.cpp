// The broadcast bookkeeping both generators share: when a publish is complete, what a late,
// early or repeated sequence number does, and that a subscriber leaving frees the window.
#include "broadcast_window.hpp"  // first: proves the header is self-contained

#include <doctest/doctest.h>

#include <vector>

namespace bench = wscoro::bench;
using arrival = bench::broadcast_window::arrival;

namespace {

// A window of `w` with `n` live subscribers that have all joined; counts its completions.
struct fixture {
    fixture(std::size_t w, std::size_t n) : window(w, [this] { ++completions; }), members(n) {
        for (auto& m : members) {
            window.enter(m);
            window.join(m);
        }
    }
    void publish(std::size_t k) {
        for (std::size_t i = 0; i < k; ++i) window.publish();
    }

    unsigned completions = 0;
    bench::broadcast_window window;
    std::vector<bench::broadcast_window::member> members;
};

}  // namespace

TEST_CASE("a publish is complete once every live subscriber has it and in sequence order") {
    fixture f{2, 2};
    CHECK(f.window.everyone_joined());
    f.publish(2);
    CHECK_FALSE(f.window.has_room());  // W = 2 incomplete publishes
    CHECK(f.window.arrive(f.members[0], 0, 0) == arrival::in_order);
    f.window.delivered(0);
    CHECK(f.window.arrive(f.members[0], 0, 1) == arrival::in_order);
    f.window.delivered(1);
    CHECK(f.completions == 0);  // subscriber 1 has neither yet
    CHECK(f.window.arrive(f.members[1], 1, 0) == arrival::in_order);
    f.window.delivered(0);
    CHECK(f.completions == 1);
    CHECK(f.window.has_room());
    CHECK_FALSE(f.window.settled());
    CHECK(f.window.arrive(f.members[1], 1, 1) == arrival::in_order);
    f.window.delivered(1);
    CHECK(f.completions == 2);
    CHECK(f.window.settled());
    CHECK(f.window.check_settled());
}

TEST_CASE("a gap counts the missing publishes as delivered and a repeat changes nothing") {
    fixture f{4, 1};
    f.publish(3);
    auto& m = f.members[0];
    // Publishes 0 and 1 never came: the subscriber must not hold up the window for them.
    CHECK(f.window.arrive(m, 0, 2) == arrival::after_gap);
    CHECK(f.completions == 2);  // 0, then 1
    f.window.delivered(2);
    CHECK(f.window.settled());
    CHECK(f.window.arrive(m, 0, 2) == arrival::stray);  // a duplicate
    CHECK(f.window.arrive(m, 0, 7) == arrival::stray);  // never published
    CHECK(m.expected == 3);
}

TEST_CASE("a subscriber that leaves no longer holds up a publish or the probing") {
    fixture f{1, 2};
    f.publish(1);
    CHECK(f.window.arrive(f.members[0], 0, 0) == arrival::in_order);
    f.window.delivered(0);
    CHECK(f.completions == 0);
    f.window.leave(f.members[1]);
    CHECK(f.completions == 1);
    CHECK(f.window.live() == 1);
    f.window.leave(f.members[1]);  // twice: counted once
    CHECK(f.window.live() == 1);

    bench::broadcast_window probing{1, [] {}};
    bench::broadcast_window::member joined, silent;
    probing.enter(joined);
    probing.enter(silent);
    CHECK(probing.join(joined));
    CHECK_FALSE(probing.join(joined));
    CHECK(probing.count_unjoined() == 1);
    probing.leave(silent);
    CHECK(probing.count_unjoined() == 0);
}

TEST_CASE("an unsent publish is taken back and publishes still out after the window are reported") {
    fixture f{2, 1};
    f.publish(2);
    f.window.unpublish();
    CHECK(f.window.published() == 1);
    CHECK_FALSE(f.window.check_settled());  // publish 0 never arrived
}
