#pragma once
// An invariant of a fuzz target: when it fails, say which and where, then abort() so that libFuzzer
// records the input as a crash (assert() would vanish under NDEBUG).
#include <cstdio>
#include <cstdlib>

#define WSCORO_FUZZ_REQUIRE(cond) \
    ((cond) ? void() : ::wscoro::fuzz::invariant_failed(#cond, __FILE__, __LINE__))

namespace wscoro::fuzz {

[[noreturn]] inline void invariant_failed(char const* what, char const* file, int line) {
    std::fprintf(stderr, "%s:%d: invariant failed: %s\n", file, line, what);
    std::abort();
}

}  // namespace wscoro::fuzz
