#pragma once
// How long a process was ready to run but had no CPU (/proc/PID/task/*/schedstat, summed over
// its threads). On a shared machine this tells "the server idled because the generator was slow"
// from "the server waited behind someone else's work": nice does not help across sessions when
// the kernel groups tasks by session (kernel.sched_autogroup_enabled).
#include <dirent.h>

#include <cstdio>
#include <optional>
#include <string>

namespace wscoro::bench::epoll {

/// Nanoseconds the threads of `pid` ("self" for this process) have waited on a run queue.
inline std::optional<double> run_queue_wait_ns(std::string const& pid) {
    auto const dir = "/proc/" + pid + "/task";
    DIR* d = ::opendir(dir.c_str());
    if (!d) return std::nullopt;
    double total = 0;
    bool any = false;
    while (dirent const* e = ::readdir(d)) {
        if (e->d_name[0] == '.') continue;
        // "<ns on CPU> <ns waiting on a run queue> <time slices>"
        auto const path = dir + "/" + e->d_name + "/schedstat";
        if (std::FILE* f = std::fopen(path.c_str(), "r")) {
            unsigned long long run = 0, wait = 0;
            if (std::fscanf(f, "%llu %llu", &run, &wait) == 2) {
                total += static_cast<double>(wait);
                any = true;
            }
            std::fclose(f);
        }
    }
    ::closedir(d);
    if (!any) return std::nullopt;
    return total;
}

/// The run-queue waits of the server and of this process over a measured window.
class run_queue_window {
public:
    explicit run_queue_window(std::optional<int> server_pid) : server_pid_(server_pid) {}

    void begin() { begin_ = sample(); }
    void end() { end_ = sample(); }

    /// Percent of `wall_s` that the server (or this process) waited for a CPU; absent if unread.
    std::optional<double> server_pct(double wall_s) const {
        return pct(begin_.server, end_.server, wall_s);
    }
    std::optional<double> self_pct(double wall_s) const {
        return pct(begin_.self, end_.self, wall_s);
    }

private:
    // Plain doubles, -1 = unread (std::optional here trips GCC 12's -Wmaybe-uninitialized).
    struct point {
        double server = -1, self = -1;
    };
    point sample() const {
        point p;
        if (server_pid_) p.server = run_queue_wait_ns(std::to_string(*server_pid_)).value_or(-1);
        p.self = run_queue_wait_ns("self").value_or(-1);
        return p;
    }
    static std::optional<double> pct(double a, double b, double wall_s) {
        if (a < 0 || b < 0 || wall_s <= 0) return std::nullopt;
        return (b - a) / 1e9 / wall_s * 100;
    }

    std::optional<int> server_pid_;
    point begin_, end_;
};

}  // namespace wscoro::bench::epoll
