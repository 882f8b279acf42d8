#include <wscoro/metrics.hpp>

namespace wscoro {

namespace {
void emit(std::string& out, std::string const& name, char const* type, char const* help,
          std::uint64_t value, char const* labels = "") {
    out += "# HELP " + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
    out += name + labels + " " + std::to_string(value) + "\n";
}
void emit_more(std::string& out, std::string const& name, char const* labels, std::uint64_t value) {
    out += name + labels + " " + std::to_string(value) + "\n";
}
std::uint64_t get(metrics::counter const& c) { return c.load(std::memory_order_relaxed); }
}  // namespace

std::string metrics::to_prometheus(std::string const& p) const {
    std::string out;
    emit(out, p + "_connections", "gauge", "Open WebSocket connections.", get(connections_current));
    emit(out, p + "_connections_accepted_total", "counter", "WebSocket upgrades accepted.",
         get(connections_accepted));
    auto const refused = p + "_connections_refused_total";
    emit(out, refused, "counter", "WebSocket upgrades refused, by reason.", get(refused_max_connections),
         "{reason=\"max_connections\"}");
    emit_more(out, refused, "{reason=\"per_ip\"}", get(refused_per_ip));
    emit_more(out, refused, "{reason=\"origin\"}", get(refused_origin));
    emit_more(out, refused, "{reason=\"bad_request\"}", get(refused_bad_request));
    emit_more(out, refused, "{reason=\"not_found\"}", get(refused_not_found));
    emit_more(out, refused, "{reason=\"stopping\"}", get(refused_stopping));
    emit_more(out, refused, "{reason=\"handshake_timeout\"}", get(handshake_timeouts));
    emit(out, p + "_messages_received_total", "counter", "Messages received from peers.", get(messages_in));
    emit(out, p + "_messages_sent_total", "counter", "Messages written to peers.", get(messages_out));
    emit(out, p + "_received_bytes_total", "counter", "Payload bytes received.", get(bytes_in));
    emit(out, p + "_sent_bytes_total", "counter", "Payload bytes written.", get(bytes_out));
    emit(out, p + "_send_queue_overflows_total", "counter",
         "Connections closed because their send queue overflowed.", get(send_queue_overflows));
    auto const rtt = p + "_ping_rtt_seconds";
    out += "# HELP " + rtt + " Ping to pong round-trip time.\n# TYPE " + rtt + " summary\n";
    auto const sum_us = get(ping_rtt_sum_us);
    out += rtt + "_sum " + std::to_string(sum_us / 1'000'000) + "." +
           [&] {
               auto frac = std::to_string(sum_us % 1'000'000);
               return std::string(6 - frac.size(), '0') + frac;
           }() +
           "\n";
    out += rtt + "_count " + std::to_string(get(ping_rtt_count)) + "\n";
    return out;
}

}  // namespace wscoro
