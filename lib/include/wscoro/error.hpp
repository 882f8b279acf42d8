#pragma once
// Error codes of wscoro itself. I/O and protocol failures keep their Asio/Beast codes
// (for example websocket::error::message_too_big); these are the conditions a caller branches on.
#include <boost/system/error_code.hpp>

#include <string>
#include <type_traits>

namespace wscoro {

using boost::system::error_code;

enum class error {
    pong_timeout = 1,   ///< nothing (no pong, no data) arrived from the peer within pong_wait
    write_timeout,      ///< a write did not finish within write_wait: the peer stopped reading
    send_queue_full,    ///< the outbound queue reached send_queue_limit (slow consumer)
    not_connected,      ///< sending on a connection that is closed, or a client that is not connected
    invalid_url,        ///< the client URL could not be parsed, or its scheme is not ws://
    invalid_config,     ///< a configuration field is out of range (diagnostics name it)
    upgrade_rejected,   ///< the server answered the upgrade request with a non-101 status
    handshake_timeout,  ///< the TCP connect or the upgrade did not finish within handshake_timeout
    server_stopping,    ///< the server is stopping: the connection was closed with 1001
    callback_failed,    ///< a user callback or handler threw; the connection was closed with 1011
    aborted,            ///< the connection was aborted locally without a closing handshake
};

/// The category of wscoro::error ("wscoro").
boost::system::error_category const& error_category() noexcept;

inline error_code make_error_code(error e) noexcept { return {static_cast<int>(e), error_category()}; }

/// Human-readable context for a failure that the error_code alone cannot carry, such as the address
/// that was in use or the configuration field that was out of range.
struct diagnostics {
    std::string message;
};

}  // namespace wscoro

template <> struct boost::system::is_error_code_enum<wscoro::error> : std::true_type {};
