#pragma once
// The JSON report (one object on stdout): the pieces every scenario shares, the echo and broadcast
// reports both generators write (bench/run.py reads either), and the exit status that follows.
#include "histogram.hpp"
#include "options.hpp"
#include "proc_stats.hpp"

#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <initializer_list>
#include <optional>
#include <string>
#include <utility>

namespace wscoro::bench {

namespace json = boost::json;

/// A number, or null when it could not be measured.
template <class T> json::value number_or_null(std::optional<T> const& v) {
    return v ? json::value(*v) : json::value(nullptr);
}

/// {"p50": µs, ...} for the given (name, quantile) pairs.
inline json::object percentiles(histogram const& h,
                                std::initializer_list<std::pair<char const*, double>> qs) {
    json::object out;
    for (auto const& [name, q] : qs) out[name] = h.percentile_us(q);
    return out;
}

/// server_cpu_s, server_cpu_us_per_<unit> (CPU per item counted in the window), server_cpu_pct and
/// generator_cpu_pct; the server's fields are null when its CPU time was not read.
inline void add_cpu(json::object& report, cpu_usage const& cpu, std::uint64_t items,
                    char const* per_item_key) {
    report["server_cpu_s"] = number_or_null(cpu.server_s);
    std::optional<double> per_item;
    if (cpu.server_s && items > 0) per_item = *cpu.server_s * 1e6 / static_cast<double>(items);
    report[per_item_key] = number_or_null(per_item);
    report["server_cpu_pct"] = number_or_null(cpu.server_pct());
    report["generator_cpu_pct"] = cpu.self_pct();
}

/// What a run found wrong: its report's "errors" and "verify_failures".
struct failures {
    std::uint64_t errors = 0;
    std::uint64_t verify_failures = 0;
};

/// The echo report: `replies` and the round trips `rtt` counted in the measured window.
inline json::object echo_report(options const& o, cpu_usage const& cpu, std::uint64_t replies,
                                histogram const& rtt, failures f) {
    double const msg_per_s = cpu.wall_s > 0 ? static_cast<double>(replies) / cpu.wall_s : 0;
    json::object report;
    report["scenario"] = "echo";
    report["connections"] = o.connections;
    report["depth"] = o.depth;
    report["size"] = o.size;
    report["duration_s"] = cpu.wall_s;
    report["messages"] = replies;
    report["msg_per_s"] = msg_per_s;
    report["mb_per_s"] = msg_per_s * static_cast<double>(o.size) / 1e6;
    if (o.depth == 1 && rtt.count() > 0)
        report["rtt_us"] = percentiles(rtt, {{"p50", 0.50}, {"p99", 0.99}, {"p999", 0.999}});
    else
        report["rtt_us"] = nullptr;  // with several in flight, a reply's send time is not tracked
    report["errors"] = f.errors;
    report["verify_failures"] = f.verify_failures;
    add_cpu(report, cpu, replies, "server_cpu_us_per_msg");
    return report;
}

/// The broadcast report: `published` messages and their `deliveries` (one per subscriber that
/// got one) in the measured window, and the publish-to-delivery `latency`.
inline json::object broadcast_report(options const& o, cpu_usage const& cpu,
                                     std::uint64_t published, std::uint64_t deliveries,
                                     histogram const& latency, failures f) {
    json::object report;
    report["scenario"] = "broadcast";
    report["connections"] = o.connections;
    report["size"] = o.size;
    report["duration_s"] = cpu.wall_s;
    report["published"] = published;
    report["deliveries"] = deliveries;
    report["deliveries_per_s"] =
        cpu.wall_s > 0 ? static_cast<double>(deliveries) / cpu.wall_s : 0.0;
    if (latency.count() > 0)
        report["latency_us"] = percentiles(latency, {{"p50", 0.50}, {"p99", 0.99}});
    else
        report["latency_us"] = nullptr;
    report["errors"] = f.errors;
    report["verify_failures"] = f.verify_failures;
    add_cpu(report, cpu, deliveries, "server_cpu_us_per_delivery");
    return report;
}

/// The report as one line of JSON. Unlike json::serialize (which writes 2.5480963859357373E4),
/// numbers are written the way people read them, rounded to 3 decimals: 25480.964.
inline std::string to_text(json::value const& v) {
    switch (v.kind()) {
    case json::kind::double_: {
        auto const rounded = std::round(v.get_double() * 1000) / 1000;
        if (!std::isfinite(rounded)) return "null";  // JSON has no inf or NaN
        char buf[64];
        return {buf, std::to_chars(buf, buf + sizeof buf, rounded).ptr};
    }
    case json::kind::object: {
        std::string out = "{";
        for (auto const& [key, value] : v.get_object()) {
            if (out.size() > 1) out += ',';
            out += json::serialize(json::string_view{key}) + ':' + to_text(value);
        }
        return out + '}';
    }
    case json::kind::array: {
        std::string out = "[";
        for (auto const& value : v.get_array()) {
            if (out.size() > 1) out += ',';
            out += to_text(value);
        }
        return out + ']';
    }
    default:
        return json::serialize(v);
    }
}

/// Exit status 0 only for a run without errors and without verification failures.
inline bool succeeded(json::object const& report) {
    auto zero = [&](char const* key) {
        auto const* v = report.if_contains(key);
        return v && v->is_number() && v->to_number<double>() == 0;
    };
    return zero("errors") && zero("verify_failures");
}

/// Prints the report on stdout, one line; returns the exit status it calls for.
inline int print_report(json::object const& report) {
    auto const text = to_text(report);
    std::printf("%s\n", text.c_str());
    return succeeded(report) ? 0 : 1;
}

}  // namespace wscoro::bench
