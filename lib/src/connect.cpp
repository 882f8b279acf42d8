#include <wscoro/connect.hpp>
#include <wscoro/url.hpp>

#include "net.hpp"
#include "stream_connection.hpp"

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/rfc7230.hpp>

namespace wscoro::detail {

namespace {

using asio::ip::tcp;

error_code timeout_as_handshake(error_code ec) {
    return ec == beast::error::timeout ? error_code{error::handshake_timeout} : ec;
}

// RFC 6455 4.1: a client must fail the connection when the answer names an extension or a
// subprotocol it did not ask for. Beast does not check. We offer no extension; subprotocols are
// offered through the Sec-WebSocket-Protocol request header. Empty when the answer is acceptable.
std::string unrequested_negotiation(websocket::response_type const& res, http_headers const& offered) {
    if (auto ext = res[http::field::sec_websocket_extensions]; !ext.empty())
        return "the server chose an extension that was not offered: " + std::string{ext};
    auto const chosen = res[http::field::sec_websocket_protocol];
    if (chosen.empty()) return {};
    for (auto const& field : offered)
        if (field.name() == http::field::sec_websocket_protocol)
            for (auto const& token : http::token_list{field.value()})
                if (beast::iequals(token, chosen)) return {};
    return "the server chose a subprotocol that was not offered: " + std::string{chosen};
}

asio::awaitable<std::tuple<error_code, connection_ptr>> connect(asio::any_io_executor ex, client_config cfg,
                                                                 diagnostics* out) {
    diagnostics local;
    diagnostics& diag = out ? *out : local;
    auto fail = [&](error_code ec, std::string what) {
        diag.message = std::move(what);
        return std::tuple<error_code, connection_ptr>{ec, nullptr};
    };
    if (auto ec = validate(cfg, diag)) co_return std::tuple{ec, connection_ptr{}};
    ws_url url;
    if (auto ec = parse_url(cfg.url, url, diag)) co_return std::tuple{ec, connection_ptr{}};

    auto strand = make_connection_executor(ex);
    beast::tcp_stream stream{strand};
    // One budget for the whole handshake: resolve (bounded by racing the stream's timer is not
    // possible, so names resolve first), TCP connect and the upgrade.
    tcp::resolver resolver{strand};
    auto [rec, endpoints] = co_await resolver.async_resolve(url.host, std::to_string(url.port), use_tuple);
    if (rec) co_return fail(rec, "resolve " + url.host + ": " + rec.message());
    auto const deadline = std::chrono::steady_clock::now() + cfg.handshake_timeout;
    stream.expires_at(deadline);
    // Beast's connect to a range of endpoints wants an old-style token: not use_heap_tuple().
    auto [cec, ep] = co_await stream.async_connect(endpoints, asio::bind_allocator(heap_allocator<void>{}, use_tuple));
    if (cec) {
        cec = timeout_as_handshake(cec);
        co_return fail(cec, "connect to " + url.host_header() + ": " + cec.message());
    }
    stream.socket().set_option(tcp::no_delay(true), cec);

    // The socket alone goes on, with what is left of the budget for the upgrade.
    auto const left = deadline - std::chrono::steady_clock::now();
    auto any_ws = make_tcp_websocket(stream.release_socket());
    websocket::response_type res;
    auto [hec] = co_await async_on_websocket(any_ws, [&](auto& ws, auto handler) {
        set_handshake_timeout(ws, std::max(left, decltype(left){1}));
        ws.set_option(websocket::stream_base::decorator([headers = cfg.headers](websocket::request_type& req) {
            req.set(http::field::user_agent, "wscoro/0.1");
            for (auto const& field : headers) req.set(field.name_string(), field.value());
        }));
        ws.async_handshake(res, url.host_header(), url.target, std::move(handler));
    });
    if (hec == websocket::error::upgrade_declined)
        co_return fail(error::upgrade_rejected, "upgrade to " + cfg.url + " rejected: server answered " +
                                                    std::to_string(res.result_int()) + " " +
                                                    std::string{res.reason()});
    if (hec) {
        hec = timeout_as_handshake(hec);
        co_return fail(hec, "WebSocket handshake with " + url.host_header() + ": " + hec.message());
    }
    if (auto why = unrequested_negotiation(res, cfg.headers); !why.empty())
        co_return fail(error::upgrade_rejected, "WebSocket handshake with " + url.host_header() + ": " + why);

    connection_info info{make_connection_id(), to_string(ep), url.target,
                         static_cast<http::fields const&>(res), std::chrono::system_clock::now()};
    auto conn = make_connection(std::move(any_ws), beast::role_type::client, std::move(info),
                                std::make_shared<connection_options const>(cfg.connection()));
    conn->spawn_run([](std::exception_ptr e, error_code) {
        if (e) std::rethrow_exception(e);  // a bug in wscoro: let it surface
    });
    co_return std::tuple{error_code{}, std::move(conn)};
}

// A cancelled coroutine throws operation_aborted from its next co_await (Asio's default): that
// is the caller's cancellation, reported as a value like any Asio operation. Anything else is a bug.
error_code cancelled_or_rethrow(std::exception_ptr e) {
    try {
        std::rethrow_exception(e);
    } catch (boost::system::system_error const& x) {
        if (x.code() != asio::error::operation_aborted) throw;
        return x.code();
    }
}

}  // namespace

void initiate_connect(asio::any_io_executor ex, client_config cfg, diagnostics* diag,
                      asio::any_completion_handler<connect_signature> handler) {
    auto slot = asio::get_associated_cancellation_slot(handler);
    auto work = asio::make_work_guard(asio::get_associated_executor(handler, ex));
    asio::co_spawn(ex, connect(ex, std::move(cfg), diag),
                   asio::bind_cancellation_slot(
                       slot, [handler = std::move(handler), work = std::move(work)](
                                 std::exception_ptr e, std::tuple<error_code, connection_ptr> r) mutable {
                           if (e) r = {cancelled_or_rethrow(e), nullptr};
                           auto hex = work.get_executor();
                           work.reset();
                           // Complete on the caller's executor, like any Asio operation.
                           asio::dispatch(hex, [handler = std::move(handler), r = std::move(r)]() mutable {
                               std::move(handler)(std::get<0>(r), std::move(std::get<1>(r)));
                           });
                       }));
}

}  // namespace wscoro::detail
