#pragma once
// The JSON report (one object on stdout): the pieces every scenario shares, and the exit status
// that follows from it.
#include "histogram.hpp"
#include "proc_stats.hpp"

#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include <charconv>
#include <cmath>
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

}  // namespace wscoro::bench
