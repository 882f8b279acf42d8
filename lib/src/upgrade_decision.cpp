#include "upgrade_decision.hpp"

#include <boost/beast/websocket/rfc6455.hpp>

namespace wscoro::detail {

namespace {

http_response make_response(http_request const& req, http::status status, std::string body) {
    http_response res{status, req.version()};
    res.set(http::field::server, server_name);
    res.set(http::field::content_type, "text/plain; charset=utf-8");
    res.keep_alive(req.keep_alive());
    res.body() = std::move(body);
    res.prepare_payload();
    return res;
}

std::string_view path_of(std::string_view target) { return target.substr(0, target.find('?')); }

// An answer to HEAD has no body (RFC 9110 9.3.2): the client reads none, so body bytes would be
// taken for the start of the next response on a kept-alive connection. Content-Length stays.
void drop_body_for_head(http_request const& req, http_response& res) {
    if (req.method() != http::verb::head) return;
    res.body().clear();
    if (res.chunked()) res.chunked(false);  // else the last chunk would still be written
}

}  // namespace

void limit_request(request_parser& parser) {
    parser.header_limit(request_header_limit);
    parser.body_limit(request_body_limit);
}

request_kind classify_request(http_request const& req, server_config const& cfg) {
    bool const is_ws_path = path_of(req.target()) == cfg.path;
    bool const is_upgrade = boost::beast::websocket::is_upgrade(req);
    if (!is_upgrade) return is_ws_path ? request_kind::plain_on_endpoint : request_kind::plain;
    if (!is_ws_path) return request_kind::upgrade_elsewhere;
    if (cfg.check_origin && !cfg.check_origin(req)) return request_kind::origin_refused;
    return request_kind::upgrade;
}

http_response make_refusal(http_request const& req, refusal why) {
    http_response res;
    bool closes = true;
    switch (why) {
    case refusal::bad_request:
        res = make_response(req, http::status::bad_request, "bad request\n");
        break;
    case refusal::not_found:
        res = make_response(req, http::status::not_found, "not found\n");
        closes = false;
        break;
    case refusal::upgrade_required:
        res = make_response(req, http::status::upgrade_required,
                            "this is a WebSocket endpoint: send an upgrade request\n");
        res.set(http::field::upgrade, "websocket");
        res.set(http::field::connection, "Upgrade");
        closes = false;
        break;
    case refusal::origin_refused:
        res = make_response(req, http::status::forbidden, "origin not allowed\n");
        break;
    case refusal::server_stopping:
    case refusal::max_connections:
    case refusal::max_connections_per_ip: {
        auto const* body = why == refusal::server_stopping   ? "server stopping\n"
                           : why == refusal::max_connections ? "too many connections\n"
                                                             : "too many connections from your address\n";
        res = make_response(req, http::status::service_unavailable, body);
        res.set(http::field::retry_after, "1");
        break;
    }
    }
    if (closes) res.keep_alive(false);
    drop_body_for_head(req, res);
    return res;
}

http_response answer_plain(http_request const& req, request_kind kind, std::optional<http_response> handled) {
    if (!handled)
        handled = make_refusal(req, kind == request_kind::plain_on_endpoint ? refusal::upgrade_required
                                                                             : refusal::not_found);
    if (!handled->has_content_length() && !handled->chunked()) handled->prepare_payload();
    drop_body_for_head(req, *handled);
    return std::move(*handled);
}

bool keeps_open(http_request const& req, http_response const& res) { return res.keep_alive() && req.keep_alive(); }

bool valid_websocket_key(std::string_view key) noexcept {
    constexpr std::string_view alphabet =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    if (key.size() != 24 || !key.ends_with("==")) return false;
    return key.substr(0, 22).find_first_not_of(alphabet) == std::string_view::npos;
}

}  // namespace wscoro::detail
