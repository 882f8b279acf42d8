#include "cli_options.hpp"

#include "log.hpp"
#include "payload.hpp"
#include "proc_stats.hpp"

#include <CLI/CLI.hpp>

#include <cctype>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <map>

namespace wscoro::bench {

namespace {

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

void add_options(CLI::App& app, command_line const& cl, options& o) {
    app.add_option("--url", o.url, "ws://host:port/path of the server under test")->required();
    app.add_option_function<std::string>(
           "--scenario",
           [&o, scenarios = cl.scenarios](std::string const& name) {
               // Both know connect: wscoro-bench-epoll refuses it in its own check, naming the
               // generator that runs it.
               std::map<std::string, scenario> const known{{"echo", scenario::echo},
                                                           {"broadcast", scenario::broadcast},
                                                           {"connect", scenario::connect}};
               auto it = known.find(name);
               if (it == known.end())
                   throw CLI::ValidationError("--scenario", "\"" + name + "\" is not " + scenarios);
               o.scenario = it->second;
           },
           cl.scenario_help)
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
}

// The checks CLI11 cannot express (they depend on the scenario); empty when the options are usable.
std::string check(options const& o) {
    std::size_t const header = o.scenario == scenario::broadcast ? broadcast_payload::header_size
                                                                 : echo_payload::header_size;
    if (o.scenario != scenario::connect && o.size < header)
        return "--size: at least " + std::to_string(header) + " bytes (the verifiable header)";
    if (o.duration.count() <= 0) return "--duration: must be positive";
    if (o.warmup.count() < 0) return "--warmup: must not be negative";
    if (o.connect_timeout.count() <= 0) return "--connect-timeout: must be positive";
    if (o.server_pid && !process_cpu_seconds(*o.server_pid))
        return "--server-pid: cannot read /proc/" + std::to_string(*o.server_pid) + "/stat";
    return {};
}

}  // namespace

std::optional<int> parse_command_line(int argc, char** argv, command_line const& cl, options& o) {
    CLI::App app{cl.description};
    add_options(app, cl, o);
    try {
        app.parse(argc, argv);
    } catch (CLI::ParseError const& e) {
        if (e.get_exit_code() == 0) return app.exit(e);  // --help
        say("%s (see --help)", e.what());
        return 2;
    }
    std::string err = cl.check(o);
    if (err.empty()) err = check(o);
    if (!err.empty()) {
        say("%s", err.c_str());
        return 2;
    }
    return std::nullopt;
}

bool fit_open_files_limit(std::size_t connections, std::size_t reserve) {
    auto const needed = connections + reserve;
    auto const limit = raise_open_files_limit();
    if (limit >= needed) return true;
    say("%zu connections need %zu open files, the limit is %zu (ulimit -n)", connections, needed,
        limit);
    return false;
}

}  // namespace wscoro::bench
