// detail::small_mutex: the one-byte lock that guards how a connection ended.
#include <wscoro/detail/small_mutex.hpp>

#include <doctest/doctest.h>

#include <mutex>
#include <thread>
#include <vector>

TEST_SUITE_BEGIN("small_mutex");

TEST_CASE("small_mutex excludes: four threads' increments under it all count") {
    wscoro::detail::small_mutex m;
    static_assert(sizeof m == 1);
    long counter = 0;  // plain: a lost update would show as a smaller total (and to TSan as a race)
    constexpr int threads = 4;
    constexpr int rounds = 20000;
    {
        std::vector<std::jthread> workers;
        for (int t = 0; t < threads; ++t)
            workers.emplace_back([&] {
                for (int i = 0; i < rounds; ++i) {
                    std::lock_guard lock{m};
                    counter = counter + 1;
                }
            });
    }
    CHECK(counter == long{threads} * rounds);
}

TEST_CASE("small_mutex try_lock fails while held and succeeds after unlock") {
    wscoro::detail::small_mutex m;
    REQUIRE(m.try_lock());
    bool other = true;
    std::jthread{[&] { other = m.try_lock(); }}.join();
    CHECK_FALSE(other);
    m.unlock();
    std::jthread{[&] {
        other = m.try_lock();
        if (other) m.unlock();
    }}.join();
    CHECK(other);
}

TEST_SUITE_END();
