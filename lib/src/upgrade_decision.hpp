#pragma once
// What the server answers to an HTTP request before the upgrade, without the I/O: the parser's
// limits, which requests may upgrade, and the refusals (400, 403, 404, 426, 503). The listener does
// the reading, writing and counting; test/fuzz/fuzz_upgrade_request.cpp feeds arbitrary bytes
// through exactly these functions.
#include <wscoro/config.hpp>
#include <wscoro/http.hpp>

#include <boost/beast/http/parser.hpp>

#include <cstddef>
#include <optional>
#include <string_view>

namespace wscoro::detail {

inline constexpr std::size_t request_header_limit = 16 * 1024;
inline constexpr std::size_t request_body_limit = 64 * 1024;
inline constexpr std::string_view server_name = "wscoro/0.1";

using request_parser = http::request_parser<http::string_body>;

/// Bounds what one request may make the server buffer (header and body).
void limit_request(request_parser& parser);

/// Where a parsed request goes, from its target and headers alone.
enum class request_kind {
    plain,              ///< not an upgrade, another path: the http handler answers, else 404
    plain_on_endpoint,  ///< not an upgrade, on the WebSocket path: the http handler, else 426
    upgrade_elsewhere,  ///< an upgrade for another path: 404 (the http handler is not asked)
    origin_refused,     ///< an upgrade on the path that check_origin refuses: 403
    upgrade,            ///< an upgrade on the path: the connection limits, then Beast's handshake
};

/// Calls cfg.check_origin (if set) for an upgrade on cfg.path, and nothing else of the config.
request_kind classify_request(http_request const& req, server_config const& cfg);

/// Whether `key` is what RFC 6455 4.2.1 asks for: 16 bytes in base64 (24 characters, "==" last).
bool valid_websocket_key(std::string_view key) noexcept;

/// Whether the http handler is asked about a request of this kind.
constexpr bool asks_http_handler(request_kind k) noexcept {
    return k == request_kind::plain || k == request_kind::plain_on_endpoint;
}

/// Refusals the server writes itself, each with a plain-text body.
enum class refusal {
    bad_request,             ///< 400: the request could not be parsed
    not_found,               ///< 404
    upgrade_required,        ///< 426: a plain request on the WebSocket path
    origin_refused,          ///< 403
    server_stopping,         ///< 503
    max_connections,         ///< 503
    max_connections_per_ip,  ///< 503
};

/// The complete answer (Content-Length set). After 400, 403 and 503 the connection closes; after
/// 404 and 426 it stays open if the request asked for keep-alive.
http_response make_refusal(http_request const& req, refusal why);

/// The answer to a request of a kind that asks_http_handler() or upgrade_elsewhere: the handler's
/// (`handled`), else 426 on the endpoint, else 404. Content-Length is added when the handler set
/// neither it nor chunked encoding.
http_response answer_plain(http_request const& req, request_kind kind, std::optional<http_response> handled);

/// Whether the connection reads another request after `res` answered `req`.
bool keeps_open(http_request const& req, http_response const& res);

}  // namespace wscoro::detail
