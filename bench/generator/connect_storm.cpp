// The connect scenario: how fast the server completes handshakes with K in flight, and how much
// memory C idle connections cost it (VmRSS before and after, once the server has settled).
#include "fleet.hpp"
#include "scenarios.hpp"

#include <boost/asio/this_coro.hpp>

namespace wscoro::bench {

namespace {
using namespace std::chrono_literals;
constexpr auto settle_time = 1s;  // for the server to finish what it does after each handshake
}  // namespace

asio::awaitable<json::object> run_connect(options const& o) {
    std::optional<long> rss_before, rss_after;
    if (o.server_pid) rss_before = process_rss_kb(*o.server_pid);

    auto const cpu_begin = cpu_snapshot::take(o.server_pid);
    auto fleet = co_await open_fleet(o);
    auto const cpu = cpu_snapshot::take(o.server_pid) - cpu_begin;
    auto const handshakes = o.connections - fleet.failed;
    auto const opening_s = std::chrono::duration<double>(fleet.elapsed).count();

    std::function<void()> no_progress;
    co_await wait_until(clock::now() + settle_time, no_progress);
    if (o.server_pid) rss_after = process_rss_kb(*o.server_pid);
    // Idle connections have nothing to say goodbye about; aborting 10 000 is instant.
    co_await abort_fleet(fleet.connections);

    std::optional<double> per_connection;
    if (rss_before && rss_after && handshakes > 0)
        per_connection =
            static_cast<double>(*rss_after - *rss_before) / static_cast<double>(handshakes);

    json::object report;
    report["scenario"] = "connect";
    report["connections"] = o.connections;
    report["concurrency"] = o.concurrency;
    report["handshakes"] = handshakes;
    report["handshakes_per_s"] = opening_s > 0 ? static_cast<double>(handshakes) / opening_s : 0.0;
    report["rss_before_kb"] = number_or_null(rss_before);
    report["rss_after_kb"] = number_or_null(rss_after);
    report["kb_per_connection"] = number_or_null(per_connection);
    report["errors"] = fleet.failed;
    report["verify_failures"] = 0;
    report["generator_cpu_pct"] = cpu.self_pct();
    co_return report;
}

}  // namespace wscoro::bench
