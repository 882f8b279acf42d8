#pragma once
// The client's core for the co_await API: resolve, connect, upgrade, and hand back a running
// connection. The callback facade `client` adds reconnection on top of it.
#include <wscoro/config.hpp>
#include <wscoro/connection.hpp>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/async_result.hpp>

namespace wscoro {

namespace detail {
using connect_signature = void(error_code, connection_ptr);
void initiate_connect(asio::any_io_executor ex, client_config cfg, diagnostics* diag,
                      asio::any_completion_handler<connect_signature> handler);
}  // namespace detail

/// Handler: void(error_code, connection_ptr). Connects to cfg.url within cfg.handshake_timeout; the
/// connection runs on a new strand of `ex` and is ready for async_receive / async_send. Only the
/// connection fields of `cfg` apply (reconnection is the facade's job). On failure `diag` (which
/// must outlive the operation) says what failed, e.g. "server answered 503 Service Unavailable".
template <class CompletionToken>
auto async_connect(asio::any_io_executor ex, client_config cfg, diagnostics& diag, CompletionToken&& token) {
    return asio::async_initiate<CompletionToken, detail::connect_signature>(
        [](auto handler, asio::any_io_executor ex, client_config cfg, diagnostics* diag) {
            detail::initiate_connect(std::move(ex), std::move(cfg), diag,
                                     asio::any_completion_handler<detail::connect_signature>(std::move(handler)));
        },
        token, std::move(ex), std::move(cfg), &diag);
}

/// As above, without diagnostics.
template <class CompletionToken>
auto async_connect(asio::any_io_executor ex, client_config cfg, CompletionToken&& token) {
    return asio::async_initiate<CompletionToken, detail::connect_signature>(
        [](auto handler, asio::any_io_executor ex, client_config cfg) {
            detail::initiate_connect(std::move(ex), std::move(cfg), nullptr,
                                     asio::any_completion_handler<detail::connect_signature>(std::move(handler)));
        },
        token, std::move(ex), std::move(cfg));
}

}  // namespace wscoro
