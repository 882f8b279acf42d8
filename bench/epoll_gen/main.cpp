// wscoro-bench-epoll: a load generator on raw Linux epoll with its own RFC 6455 client, for when
// wscoro-bench (built on wscoro itself) costs as much CPU per message as the server it measures.
//
//   wscoro-bench-epoll --url ws://127.0.0.1:PORT/PATH --scenario echo|broadcast [options]
//
// The command line and the JSON report are wscoro-bench's (bench/run.py takes either), plus a few
// fields of its own: "generator": "epoll", its CPU time per message, the server's VmRSS. One
// thread; exits 0 if there were no errors and no verification failures, 1 otherwise, 2 for a bad
// command line. Progress and problems go to stderr.
#include "endpoint.hpp"
#include "options.hpp"
#include "payload.hpp"
#include "proc_stats.hpp"
#include "report.hpp"
#include "scenarios.hpp"

#include <CLI/CLI.hpp>

#include <cctype>
#include <charconv>
#include <csignal>
#include <cstdio>
#include <exception>
#include <map>

namespace {

namespace bench = wscoro::bench;

// "4096", "64k", "64KiB", "1m", "1MiB": k and M are binary (1024, 1024²), case-insensitive.
std::string parse_size(std::string const& text, std::size_t& out) {
    unsigned long long value = 0;
    auto const* end = text.data() + text.size();
    auto [unit, ec] = std::from_chars(text.data(), end, value);
    if (ec != std::errc{} || unit == text.data())
        return "expected a size in bytes such as 32, 64k or 64KiB";
    std::string suffix;
    for (auto const* c = unit; c != end; ++c)
        suffix += static_cast<char>(std::tolower(static_cast<unsigned char>(*c)));
    unsigned long long scale = 0;
    if (suffix.empty() || suffix == "b")
        scale = 1;
    else if (suffix == "k" || suffix == "kb" || suffix == "ki" || suffix == "kib")
        scale = 1ull << 10;
    else if (suffix == "m" || suffix == "mb" || suffix == "mi" || suffix == "mib")
        scale = 1ull << 20;
    else
        return "unknown unit \"" + std::string{unit, end} + "\" (use k/KiB or m/MiB)";
    if (value > (1ull << 30) / scale) return "at most 1 GiB";
    out = static_cast<std::size_t>(value * scale);
    return {};
}

std::string shortest(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g", v);
    return buf;
}

template <class Rep> CLI::Option* add_seconds(CLI::App& app, std::string const& name,
                                              std::chrono::duration<Rep>& target,
                                              std::string const& help) {
    return app
        .add_option_function<double>(
            name, [&target](double s) { target = std::chrono::duration<Rep>(s); }, help)
        ->type_name("SECONDS")
        ->default_str(shortest(static_cast<double>(target.count())));
}

// The checks CLI11 cannot express; empty when the options are usable.
std::string check(bench::options const& o) {
    if (o.scenario == bench::scenario::connect)
        return "--scenario connect: not in this generator; use wscoro-bench";
    std::size_t const header = o.scenario == bench::scenario::broadcast
                                   ? bench::broadcast_payload::header_size
                                   : bench::echo_payload::header_size;
    if (o.size < header)
        return "--size: at least " + std::to_string(header) + " bytes (the verifiable header)";
    if (o.duration.count() <= 0) return "--duration: must be positive";
    if (o.warmup.count() < 0) return "--warmup: must not be negative";
    if (o.connect_timeout.count() <= 0) return "--connect-timeout: must be positive";
    if (o.server_pid && !bench::process_cpu_seconds(*o.server_pid))
        return "--server-pid: cannot read /proc/" + std::to_string(*o.server_pid) + "/stat";
    return {};
}

}  // namespace

int main(int argc, char** argv) {
    bench::options o;
    CLI::App app{"wscoro-bench-epoll: WebSocket load generator on raw epoll (echo, broadcast)"};
    app.add_option("--url", o.url, "ws://host:port/path of the server under test")->required();
    app.add_option_function<std::string>(
           "--scenario",
           [&o](std::string const& name) {
               std::map<std::string, bench::scenario> const known{
                   {"echo", bench::scenario::echo},
                   {"broadcast", bench::scenario::broadcast},
                   {"connect", bench::scenario::connect}};
               auto it = known.find(name);
               if (it == known.end())
                   throw CLI::ValidationError("--scenario",
                                              "\"" + name + "\" is not echo or broadcast");
               o.scenario = it->second;
           },
           "echo | broadcast (connect: use wscoro-bench)")
        ->type_name("NAME")
        ->required();
    app.add_option("--connections", o.connections, "connections to open (C)")
        ->check(CLI::Range(std::size_t{1}, std::size_t{1'000'000}))
        ->capture_default_str();
    app.add_option("--depth", o.depth, "echo: messages in flight per connection (D)")
        ->check(CLI::Range(std::size_t{1}, std::size_t{1'000'000}))
        ->capture_default_str();
    app.add_option_function<std::string>(
           "--size",
           [&o](std::string const& v) {
               if (auto err = parse_size(v, o.size); !err.empty())
                   throw CLI::ValidationError("--size", err);
           },
           "payload bytes (S): 32, 64k, 64KiB, 1MiB")
        ->type_name("BYTES")
        ->default_str("32");
    add_seconds(app, "--warmup", o.warmup, "seconds of load before the measured window");
    add_seconds(app, "--duration", o.duration, "seconds of the measured window");
    app.add_option("--rate", o.rate,
                   "broadcast: publishes per second; 0 = as fast as the window allows")
        ->check(CLI::NonNegativeNumber)
        ->capture_default_str();
    app.add_option("--window", o.window,
                   "broadcast: publishes not yet received by every subscriber (W)")
        ->check(CLI::Range(std::size_t{1}, std::size_t{1'000'000}))
        ->capture_default_str();
    app.add_option("--concurrency", o.concurrency, "handshakes in flight while connecting (K)")
        ->check(CLI::Range(std::size_t{1}, std::size_t{1'000'000}))
        ->capture_default_str();
    app.add_option_function<int>(
           "--server-pid", [&o](int pid) { o.server_pid = pid; },
           "read the server's CPU time and VmRSS from /proc/PID")
        ->check(CLI::PositiveNumber);
    add_seconds(app, "--connect-timeout", o.connect_timeout, "bound on each handshake");
    app.add_flag("--progress", o.progress, "one line per second on stderr");

    try {
        app.parse(argc, argv);
    } catch (CLI::ParseError const& e) {
        if (e.get_exit_code() == 0) return app.exit(e);  // --help
        std::fprintf(stderr, "wscoro-bench-epoll: %s (see --help)\n", e.what());
        return 2;
    }
    if (auto err = check(o); !err.empty()) {
        std::fprintf(stderr, "wscoro-bench-epoll: %s\n", err.c_str());
        return 2;
    }
    wscoro::bench::epoll::endpoint ep;
    if (auto err = wscoro::bench::epoll::resolve(o.url, ep); !err.empty()) {
        std::fprintf(stderr, "wscoro-bench-epoll: --url: %s\n", err.c_str());
        return 2;
    }
    // Each connection is one descriptor; the rest covers stdio, epoll and /proc reads.
    auto const needed = o.connections + 16;
    if (auto const limit = bench::raise_open_files_limit(); limit < needed) {
        std::fprintf(stderr,
                     "wscoro-bench-epoll: %zu connections need %zu open files, the limit is %zu "
                     "(ulimit -n)\n",
                     o.connections, needed, limit);
        return 2;
    }
    std::signal(SIGPIPE, SIG_IGN);  // a write to a reset connection is an error value, not a kill

    bench::json::object report;
    try {
        report = o.scenario == bench::scenario::echo ? wscoro::bench::epoll::run_echo(o, ep)
                                                     : wscoro::bench::epoll::run_broadcast(o, ep);
    } catch (std::exception const& e) {
        std::fprintf(stderr, "wscoro-bench-epoll: internal error: %s\n", e.what());
        return 1;
    }
    auto const text = bench::to_text(report);
    std::printf("%s\n", text.c_str());
    return bench::succeeded(report) ? 0 : 1;
}
