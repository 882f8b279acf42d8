#pragma once
// Process statistics from the kernel: the server's CPU time and resident memory (/proc/PID), this
// process's CPU time (getrusage), and the open-files limit that many connections need.
#include <chrono>
#include <cstddef>
#include <optional>

namespace wscoro::bench {

/// utime + stime of every thread of `pid`, in seconds (clock-tick resolution, usually 10 ms).
std::optional<double> process_cpu_seconds(int pid);
/// VmRSS of `pid` in KiB.
std::optional<long> process_rss_kb(int pid);
/// User + system CPU time of this process, in seconds.
double self_cpu_seconds();

/// Raises the soft RLIMIT_NOFILE to the hard limit; returns the soft limit in effect afterwards.
std::size_t raise_open_files_limit();

/// CPU time of both ends at one instant; the difference of two is a measured window.
struct cpu_snapshot {
    std::chrono::steady_clock::time_point at;
    double self_s = 0;
    std::optional<double> server_s;

    static cpu_snapshot take(std::optional<int> server_pid);
};

struct cpu_usage {
    double wall_s = 0;
    double self_s = 0;
    std::optional<double> server_s;  ///< absent without --server-pid, or if /proc could not be read

    double self_pct() const { return wall_s > 0 ? self_s / wall_s * 100 : 0; }
    std::optional<double> server_pct() const {
        if (!server_s || wall_s <= 0) return std::nullopt;
        return *server_s / wall_s * 100;
    }
};

cpu_usage operator-(cpu_snapshot const& end, cpu_snapshot const& begin);

}  // namespace wscoro::bench
