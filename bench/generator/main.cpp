// wscoro-bench: the load generator of the benchmark harness, built on wscoro's co_await API.
//
//   wscoro-bench --url ws://127.0.0.1:PORT/PATH --scenario echo|broadcast|connect [options]
//
// Runs one scenario on a single-threaded io_context (the harness pins it to one core), prints one
// JSON object on stdout and exits 0 if there were no errors and no verification failures, 1
// otherwise, 2 for a bad command line. Progress and problems go to stderr.
#include "cli_options.hpp"
#include "log.hpp"
#include "options.hpp"
#include "report.hpp"
#include "scenarios.hpp"

#include <wscoro/url.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include <exception>
#include <optional>
#include <string>
#include <utility>

namespace wscoro::bench {
char const* const program_name = "wscoro-bench";
}  // namespace wscoro::bench

namespace {

namespace bench = wscoro::bench;

// The URL as wscoro's client will read it, before the checks both generators make.
std::string check_url(bench::options const& o) {
    wscoro::ws_url url;
    wscoro::diagnostics diag;
    if (wscoro::parse_url(o.url, url, diag)) return "--url: " + diag.message;
    return {};
}

}  // namespace

int main(int argc, char** argv) {
    bench::options o;
    bench::command_line const cl{
        .description = "wscoro-bench: WebSocket load generator (echo, broadcast, connect)",
        .scenario_help = "echo | broadcast | connect",
        .scenarios = "echo, broadcast or connect",
        .check = check_url};
    if (auto status = bench::parse_command_line(argc, argv, cl, o)) return *status;
    // Each connection is one descriptor; the rest covers stdio, epoll, timers and the resolver.
    if (!bench::fit_open_files_limit(o.connections, 64)) return 2;

    // One thread runs it (the hint saves Asio waking other threads). Not the lock-free "unsafe"
    // hint: the resolver inside async_connect completes from a thread of its own.
    boost::asio::io_context ioc{1};
    std::optional<bench::json::object> report;
    auto const run = o.scenario == bench::scenario::echo        ? bench::run_echo
                     : o.scenario == bench::scenario::broadcast ? bench::run_broadcast
                                                                : bench::run_connect;
    boost::asio::co_spawn(ioc, run(o), [&](std::exception_ptr e, bench::json::object r) {
        if (e) std::rethrow_exception(e);  // a bug: let it end the program loudly
        report = std::move(r);
        ioc.stop();  // the scenario left nothing behind that matters; do not wait for stragglers
    });
    try {
        ioc.run();
    } catch (std::exception const& e) {
        bench::say("internal error: %s", e.what());
        return 1;
    }
    if (!report) return 1;
    return bench::print_report(*report);
}
