#pragma once
// --progress: one line a second on stderr through the warm-up and the measured window, with the
// counts since the previous line, so that a stalling run shows while it runs. The same lines from
// both generators.
#include "report.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <functional>

namespace wscoro::bench {

/// What runs once a second in each phase of a run: nothing without --progress.
struct progress_ticks {
    std::function<void()> warmup;
    std::function<void()> measuring;

    /// `print(phase)` prints the scenario's line.
    template <class Print> progress_ticks(bool enabled, Print print) {
        if (!enabled) return;
        warmup = [print] { print("warm-up"); };
        measuring = [print] { print("measuring"); };
    }
};

/// echo: replies since the previous line, failures so far.
class echo_progress {
public:
    void print(char const* phase, std::uint64_t replies, failures f) {
        std::fprintf(stderr, "echo %s: %llu replies/s, %llu errors, %llu verify failures\n", phase,
                     static_cast<unsigned long long>(replies - replies_at_last_line_),
                     static_cast<unsigned long long>(f.errors),
                     static_cast<unsigned long long>(f.verify_failures));
        replies_at_last_line_ = replies;
    }

private:
    std::uint64_t replies_at_last_line_ = 0;
};

/// broadcast: publishes and deliveries since the previous line, live subscribers, failures so far.
class broadcast_progress {
public:
    void print(char const* phase, std::uint64_t published, std::uint64_t deliveries,
               std::size_t subscribers, failures f) {
        std::fprintf(stderr,
                     "broadcast %s: %llu publishes/s, %llu deliveries/s, %zu subscribers, %llu "
                     "errors, %llu verify failures\n",
                     phase, static_cast<unsigned long long>(published - published_at_last_line_),
                     static_cast<unsigned long long>(deliveries - deliveries_at_last_line_),
                     subscribers, static_cast<unsigned long long>(f.errors),
                     static_cast<unsigned long long>(f.verify_failures));
        published_at_last_line_ = published;
        deliveries_at_last_line_ = deliveries;
    }

private:
    std::uint64_t published_at_last_line_ = 0;
    std::uint64_t deliveries_at_last_line_ = 0;
};

}  // namespace wscoro::bench
