#pragma once
// The two load patterns of wscoro-bench-epoll, with the meaning, the verification and the JSON
// report of wscoro-bench's (bench/generator/scenarios.hpp), so that bench/run.py can use either.
// Each is bounded in time, leaves no connection behind, and returns its report.
#include "endpoint.hpp"
#include "options.hpp"
#include "report.hpp"
#include "run_queue.hpp"

#include <cstdint>
#include <optional>

namespace wscoro::bench::epoll {

/// C connections, each keeping D messages in flight; every reply verified.
json::object run_echo(options const& o, endpoint const& ep);
/// C subscribers of a relaying server, connection 0 also publishing within a window.
json::object run_broadcast(options const& o, endpoint const& ep);

/// What this generator's reports add to wscoro-bench's fields: which generator ran, its own CPU
/// time in the measured window (per item too: is it cheap enough?), how much of the window the
/// server and the generator waited for a CPU (someone else's load), the server's VmRSS at the end.
inline void add_generator_fields(json::object& report, cpu_usage const& cpu,
                                 run_queue_window const& waits, std::uint64_t items,
                                 char const* per_item_key, std::optional<int> server_pid) {
    report["generator"] = "epoll";
    report["server_run_queue_wait_pct"] = number_or_null(waits.server_pct(cpu.wall_s));
    report["generator_run_queue_wait_pct"] = number_or_null(waits.self_pct(cpu.wall_s));
    report["generator_cpu_s"] = cpu.self_s;
    std::optional<double> per_item;
    if (items > 0) per_item = cpu.self_s * 1e6 / static_cast<double>(items);
    report[per_item_key] = number_or_null(per_item);
    std::optional<long> rss;
    if (server_pid) rss = process_rss_kb(*server_pid);
    report["server_rss_kb"] = number_or_null(rss);
}

}  // namespace wscoro::bench::epoll
