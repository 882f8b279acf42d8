#include "proc_stats.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>

namespace wscoro::bench {

namespace {

// The whole of a small /proc file (they report a size of 0, so read until EOF).
std::optional<std::string> slurp(std::string const& path) {
    std::FILE* f = std::fopen(path.c_str(), "r");
    if (!f) return std::nullopt;
    std::string text;
    char buf[4096];
    for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, f)) > 0;) text.append(buf, n);
    std::fclose(f);
    return text;
}

double seconds(timeval tv) {
    return static_cast<double>(tv.tv_sec) + static_cast<double>(tv.tv_usec) / 1e6;
}

}  // namespace

std::optional<double> process_cpu_seconds(int pid) {
    auto const stat = slurp("/proc/" + std::to_string(pid) + "/stat");
    if (!stat) return std::nullopt;
    // Field 2, the command name, is in parentheses and may hold spaces or ')': fields are counted
    // from the last ')'. After it come state (3) ... cmajflt (13), then utime (14) and stime (15).
    auto const close = stat->rfind(')');
    if (close == std::string::npos) return std::nullopt;
    unsigned long long utime = 0, stime = 0;
    if (std::sscanf(stat->c_str() + close + 1,
                    " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime, &stime) != 2)
        return std::nullopt;
    static long const ticks_per_s = ::sysconf(_SC_CLK_TCK);
    return static_cast<double>(utime + stime) / static_cast<double>(ticks_per_s);
}

std::optional<long> process_rss_kb(int pid) {
    auto const status = slurp("/proc/" + std::to_string(pid) + "/status");
    if (!status) return std::nullopt;
    auto const at = status->find("\nVmRSS:");
    long kb = 0;
    if (at == std::string::npos || std::sscanf(status->c_str() + at, "\nVmRSS: %ld kB", &kb) != 1)
        return std::nullopt;
    return kb;
}

double self_cpu_seconds() {
    rusage ru{};
    ::getrusage(RUSAGE_SELF, &ru);
    return seconds(ru.ru_utime) + seconds(ru.ru_stime);
}

std::size_t raise_open_files_limit() {
    rlimit lim{};
    if (::getrlimit(RLIMIT_NOFILE, &lim) != 0) return 0;
    if (lim.rlim_cur < lim.rlim_max) {
        rlimit raised = lim;
        raised.rlim_cur = lim.rlim_max;
        if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) lim = raised;
    }
    return lim.rlim_cur == RLIM_INFINITY ? static_cast<std::size_t>(-1)
                                         : static_cast<std::size_t>(lim.rlim_cur);
}

cpu_snapshot cpu_snapshot::take(std::optional<int> server_pid) {
    cpu_snapshot s;
    s.at = std::chrono::steady_clock::now();
    s.self_s = self_cpu_seconds();
    if (server_pid) s.server_s = process_cpu_seconds(*server_pid);
    return s;
}

cpu_usage operator-(cpu_snapshot const& end, cpu_snapshot const& begin) {
    cpu_usage u;
    u.wall_s = std::chrono::duration<double>(end.at - begin.at).count();
    u.self_s = end.self_s - begin.self_s;
    if (end.server_s && begin.server_s) u.server_s = *end.server_s - *begin.server_s;
    return u;
}

}  // namespace wscoro::bench
