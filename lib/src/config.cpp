#include <wscoro/config.hpp>

#include <string>

namespace wscoro {
namespace {

error_code invalid(diagnostics& diag, std::string field, std::string why) {
    diag.message = field + ": " + why;
    return error::invalid_config;
}

constexpr std::size_t max_sane_size = std::size_t{1} << 32;  // 4 GiB: beyond it, a typo

error_code check_options(connection_options const& o, std::string const& prefix, diagnostics& diag) {
    if (o.ping_interval <= duration::zero()) return invalid(diag, prefix + "ping_interval", "must be positive");
    if (o.pong_wait <= duration::zero()) return invalid(diag, prefix + "pong_wait", "must be positive");
    if (o.pong_wait < o.ping_interval)
        return invalid(diag, prefix + "pong_wait", "must not be shorter than ping_interval");
    if (o.write_wait <= duration::zero()) return invalid(diag, prefix + "write_wait", "must be positive");
    if (o.read_buffer_size == 0 || o.read_buffer_size > max_sane_size)
        return invalid(diag, prefix + "read_buffer_size", "must be between 1 and 4 GiB");
    if (o.write_buffer_size == 0 || o.write_buffer_size > max_sane_size)
        return invalid(diag, prefix + "write_buffer_size", "must be between 1 and 4 GiB");
    if (o.max_message_size == 0 || o.max_message_size > max_sane_size)
        return invalid(diag, prefix + "max_message_size", "must be between 1 and 4 GiB");
    if (o.send_queue_limit == 0 || o.send_queue_limit > (std::size_t{1} << 24))
        return invalid(diag, prefix + "send_queue_limit", "must be between 1 and 16777216");
    if (o.send_queue_bytes == 0 || o.send_queue_bytes > max_sane_size)
        return invalid(diag, prefix + "send_queue_bytes", "must be between 1 and 4 GiB");
    return {};
}

}  // namespace

connection_options server_config::connection() const {
    return {ping_interval, pong_wait,        write_wait,       read_buffer_size,
            write_buffer_size, max_message_size, send_queue_limit, send_queue_bytes, on_overflow};
}

connection_options client_config::connection() const {
    return {ping_interval, pong_wait,        write_wait,       read_buffer_size,
            write_buffer_size, max_message_size, send_queue_limit, send_queue_bytes, on_overflow};
}

error_code validate(connection_options const& opts, diagnostics& diag) {
    return check_options(opts, "", diag);
}

error_code validate(server_config const& cfg, diagnostics& diag) {
    if (cfg.address.empty()) return invalid(diag, "server_config.address", "must not be empty (e.g. \":8080\")");
    if (cfg.path.empty() || cfg.path.front() != '/')
        return invalid(diag, "server_config.path", "must start with '/' (got \"" + cfg.path + "\")");
    if (cfg.handshake_timeout <= duration::zero())
        return invalid(diag, "server_config.handshake_timeout", "must be positive");
    if (cfg.shutdown_timeout < duration::zero())
        return invalid(diag, "server_config.shutdown_timeout", "must not be negative");
    if (cfg.threads == 0 || cfg.threads > 1024)
        return invalid(diag, "server_config.threads", "must be between 1 and 1024");
    return check_options(cfg.connection(), "server_config.", diag);
}

error_code validate(client_config const& cfg, diagnostics& diag) {
    if (cfg.url.empty()) return invalid(diag, "client_config.url", "must not be empty");
    if (cfg.reconnect_delay < duration::zero())
        return invalid(diag, "client_config.reconnect_delay", "must not be negative");
    if (cfg.reconnect_delay_max < cfg.reconnect_delay)
        return invalid(diag, "client_config.reconnect_delay_max", "must not be shorter than reconnect_delay");
    if (cfg.max_reconnects < 0) return invalid(diag, "client_config.max_reconnects", "must not be negative");
    if (cfg.handshake_timeout <= duration::zero())
        return invalid(diag, "client_config.handshake_timeout", "must be positive");
    return check_options(cfg.connection(), "client_config.", diag);
}

}  // namespace wscoro
