#pragma once
// Human-readable output goes to stderr (stdout carries only the JSON report), each line headed by
// the program's name. A failing server can cause the same complaint thousands of times, so only
// the first few of each kind are printed, and a flood of verification failures cannot hide the
// connection that was lost.
#include <cstdarg>
#include <cstddef>
#include <cstdio>

namespace wscoro::bench {

/// "wscoro-bench" or "wscoro-bench-epoll": both generators print through this header, and a log
/// must say which one spoke. Each program defines it beside its main().
extern char const* const program_name;

/// vprintf-style: one line on stderr, "<program_name>: <message>".
[[gnu::format(printf, 1, 0)]] inline void vsay(char const* format, va_list args) {
    std::fprintf(stderr, "%s: ", program_name);
    std::vfprintf(stderr, format, args);
    std::fputc('\n', stderr);
}

/// printf-style: one line on stderr, "<program_name>: <message>".
[[gnu::format(printf, 1, 2)]] inline void say(char const* format, ...) {
    va_list args;
    va_start(args, format);
    vsay(format, args);
    va_end(args);
}

enum class problem { connect, lost, verify, close, other };

/// printf-style; prints the first 10 complaints of each kind, then says that more were dropped.
[[gnu::format(printf, 2, 3)]] inline void complain(problem kind, char const* format, ...) {
    constexpr unsigned limit = 10;
    static unsigned printed[5] = {};
    auto& n = printed[static_cast<std::size_t>(kind)];
    if (n > limit) return;
    if (n++ == limit) {
        say("further problems of this kind are counted, not shown");
        return;
    }
    va_list args;
    va_start(args, format);
    vsay(format, args);
    va_end(args);
}

}  // namespace wscoro::bench
