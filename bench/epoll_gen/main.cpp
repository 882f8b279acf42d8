// wscoro-bench-epoll: a load generator on raw Linux epoll with its own RFC 6455 client, for when
// wscoro-bench (built on wscoro itself) costs as much CPU per message as the server it measures.
//
//   wscoro-bench-epoll --url ws://127.0.0.1:PORT/PATH --scenario echo|broadcast [options]
//
// The command line and the JSON report are wscoro-bench's (bench/run.py takes either), plus a few
// fields of its own: "generator": "epoll", its CPU time per message, the server's VmRSS. One
// thread; exits 0 if there were no errors and no verification failures, 1 otherwise, 2 for a bad
// command line. Progress and problems go to stderr.
#include "cli_options.hpp"
#include "endpoint.hpp"
#include "log.hpp"
#include "options.hpp"
#include "report.hpp"
#include "scenarios.hpp"

#include <csignal>
#include <exception>
#include <string>

namespace wscoro::bench {
char const* const program_name = "wscoro-bench-epoll";
}  // namespace wscoro::bench

namespace {

namespace bench = wscoro::bench;

// Before the checks both generators make: the command line takes connect, this generator does not.
std::string refuse_connect(bench::options const& o) {
    if (o.scenario == bench::scenario::connect)
        return "--scenario connect: not in this generator; use wscoro-bench";
    return {};
}

}  // namespace

int main(int argc, char** argv) {
    bench::options o;
    bench::command_line const cl{
        .description =
            "wscoro-bench-epoll: WebSocket load generator on raw epoll (echo, broadcast)",
        .scenario_help = "echo | broadcast (connect: use wscoro-bench)",
        .scenarios = "echo or broadcast",
        .check = refuse_connect};
    if (auto status = bench::parse_command_line(argc, argv, cl, o)) return *status;
    bench::epoll::endpoint ep;
    if (auto err = bench::epoll::resolve(o.url, ep); !err.empty()) {
        bench::say("--url: %s", err.c_str());
        return 2;
    }
    // Each connection is one descriptor; the rest covers stdio, epoll and /proc reads.
    if (!bench::fit_open_files_limit(o.connections, 16)) return 2;
    std::signal(SIGPIPE, SIG_IGN);  // a write to a reset connection is an error value, not a kill

    bench::json::object report;
    try {
        report = o.scenario == bench::scenario::echo ? bench::epoll::run_echo(o, ep)
                                                     : bench::epoll::run_broadcast(o, ep);
    } catch (std::exception const& e) {
        bench::say("internal error: %s", e.what());
        return 1;
    }
    return bench::print_report(report);
}
