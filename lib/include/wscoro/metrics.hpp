#pragma once
// Counters of a server (or any set of connections sharing one metrics object), updated with
// relaxed atomics from every connection and exported in the Prometheus text format.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>

namespace wscoro {

struct metrics {
    using counter = std::atomic<std::uint64_t>;

    counter connections_current{0};  ///< a gauge: connections open now
    counter connections_accepted{0};
    // Upgrade requests refused, by reason.
    counter refused_max_connections{0};  ///< 503
    counter refused_per_ip{0};           ///< 503: max_connections_per_ip reached for that address
    counter refused_origin{0};           ///< 403
    counter refused_bad_request{0};      ///< 400/426: not a valid WebSocket upgrade
    counter refused_not_found{0};        ///< 404: an upgrade to another path
    counter refused_stopping{0};         ///< 503 while stopping
    counter handshake_timeouts{0};       ///< no complete request within handshake_timeout

    counter messages_in{0}, messages_out{0};
    counter bytes_in{0}, bytes_out{0};  ///< payload bytes
    counter send_queue_overflows{0};
    counter ping_rtt_count{0};
    counter ping_rtt_sum_us{0};  ///< divide by ping_rtt_count for the mean round trip

    void add_ping_rtt(std::chrono::microseconds rtt) noexcept {
        ping_rtt_sum_us.fetch_add(static_cast<std::uint64_t>(rtt.count()), std::memory_order_relaxed);
        ping_rtt_count.fetch_add(1, std::memory_order_relaxed);
    }

    /// The Prometheus text exposition format (version 0.0.4), metric names prefixed with `prefix`.
    std::string to_prometheus(std::string const& prefix = "wscoro") const;
};

/// Increments a counter (relaxed: counters order nothing).
inline void bump(metrics::counter& c, std::uint64_t n = 1) noexcept { c.fetch_add(n, std::memory_order_relaxed); }

}  // namespace wscoro
