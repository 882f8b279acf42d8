#pragma once
// Human-readable output goes to stderr (stdout carries only the JSON report). A failing server can
// cause the same complaint thousands of times, so only the first few of each kind are printed, and
// a flood of verification failures cannot hide the connection that was lost.
#include <cstdarg>
#include <cstddef>
#include <cstdio>

namespace wscoro::bench::epoll {

enum class problem { connect, lost, verify, close, other };

/// printf-style; prints the first 10 complaints of each kind, then says that more were dropped.
[[gnu::format(printf, 2, 3)]] inline void complain(problem kind, char const* format, ...) {
    constexpr unsigned limit = 10;
    static unsigned printed[5] = {};
    auto& n = printed[static_cast<std::size_t>(kind)];
    if (n > limit) return;
    if (n++ == limit) {
        std::fputs("wscoro-bench-epoll: further problems of this kind are counted, not shown\n",
                   stderr);
        return;
    }
    std::fputs("wscoro-bench-epoll: ", stderr);
    va_list args;
    va_start(args, format);
    std::vfprintf(stderr, format, args);
    va_end(args);
    std::fputc('\n', stderr);
}

}  // namespace wscoro::bench::epoll
