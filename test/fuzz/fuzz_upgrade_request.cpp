// The server's side of a connection before the upgrade (listener.cpp, handle_socket): arbitrary
// client bytes go through the same parser limits, the same decisions and answers, request after
// request as on a keep-alive connection, and an accepted upgrade through Beast's handshake on the
// stream type the listener uses (a corked stream, corking not yet enabled).
//
// Input: the client's bytes, then one option byte at the end (FuzzedDataProvider takes it from
// there): the WebSocket path, check_origin, an http handler, the connection limits' verdict and
// how the bytes arrive (all at once or in small reads).
#include "upgrade_decision.hpp"

#include "corked_stream.hpp"
#include "fuzz_check.hpp"
#include "test_stream.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/beast/_experimental/test/stream.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/websocket/rfc6455.hpp>
#include <boost/beast/websocket/stream.hpp>
#include <fuzzer/FuzzedDataProvider.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using boost::system::error_code;
using wscoro::http_request;
using wscoro::http_response;
using wscoro::detail::refusal;
using wscoro::detail::request_kind;

/// Parses exactly one response from what the server wrote, as a client that sent `method` would,
/// and requires that nothing follows it (a body after a HEAD answer would desynchronise the client).
http_response read_answer(asio::io_context& ioc, std::string const& wire, http::verb method) {
    beast::test::stream in{ioc, wire};
    in.close_remote();
    http::response_parser<http::string_body> parser;
    parser.skip(method == http::verb::head);
    beast::flat_buffer buffer;
    error_code ec;
    http::read(in, buffer, parser, ec);
    WSCORO_FUZZ_REQUIRE(!ec);
    WSCORO_FUZZ_REQUIRE(buffer.size() == 0 && in.str().empty());
    return parser.release();
}

/// The bytes the server wrote since the last call.
std::string take_output(beast::test::stream& client) {
    std::string out{client.str()};
    client.clear();
    return out;
}

// The connection limits' verdict on an upgrade (the listener's atomic counters, simulated).
constexpr std::optional<refusal> limit_verdicts[] = {
    std::nullopt, refusal::server_stopping, refusal::max_connections, refusal::max_connections_per_ip};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(std::uint8_t const* data, std::size_t size) {
    FuzzedDataProvider in{data, size};
    auto const options = in.ConsumeIntegral<std::uint8_t>();
    std::string const bytes = in.ConsumeRemainingBytesAsString();

    wscoro::server_config cfg;
    cfg.path = options & 1 ? "/chat" : "/";
    if (options & 2)
        cfg.check_origin = [](http_request const& req) { return req[http::field::origin] == "http://ok.example"; };
    bool const has_handler = options & 4;
    auto const limit = limit_verdicts[(options >> 3) & 3];
    std::size_t const read_size = options & 32 ? 7 : bytes.size() + 1;

    asio::io_context ioc;
    wscoro::fuzz::test_stream server{ioc};
    beast::test::stream client{ioc};
    server.connect(client);
    server.append(bytes);
    server.close_remote();  // the client sent everything: then end of stream
    server.read_size(read_size);

    beast::flat_buffer buffer;
    for (int requests = 0; requests < 64; ++requests) {
        wscoro::detail::request_parser parser;
        wscoro::detail::limit_request(parser);
        error_code ec;
        http::read(server, buffer, parser, ec);
        if (ec == http::error::end_of_stream) return 0;
        if (ec) {
            auto const res = wscoro::detail::make_refusal(http_request{}, refusal::bad_request);
            WSCORO_FUZZ_REQUIRE(!wscoro::detail::keeps_open(http_request{}, res));
            http::write(server, res, ec);
            WSCORO_FUZZ_REQUIRE(!ec);
            WSCORO_FUZZ_REQUIRE(read_answer(ioc, take_output(client), http::verb::get).result() ==
                                http::status::bad_request);
            return 0;
        }
        http_request req = parser.release();
        auto const method = req.method();
        auto const kind = wscoro::detail::classify_request(req, cfg);
        bool const on_path = req.target().substr(0, req.target().find('?')) == cfg.path;
        WSCORO_FUZZ_REQUIRE(wscoro::detail::asks_http_handler(kind) == !websocket::is_upgrade(req));
        WSCORO_FUZZ_REQUIRE((kind == request_kind::plain || kind == request_kind::upgrade_elsewhere) == !on_path);

        if (kind != request_kind::upgrade && kind != request_kind::origin_refused) {
            std::optional<http_response> handled;
            if (has_handler && wscoro::detail::asks_http_handler(kind) && req.target() == "/healthz") {
                // A naive handler: a body even for HEAD (the listener must not send it).
                handled.emplace(http::status::ok, req.version());
                handled->keep_alive(req.keep_alive());
                handled->body() = "ok\n";
            }
            auto const expected = handled ? http::status::ok
                                  : kind == request_kind::plain_on_endpoint ? http::status::upgrade_required
                                                                            : http::status::not_found;
            auto const res = wscoro::detail::answer_plain(req, kind, std::move(handled));
            bool const keep = wscoro::detail::keeps_open(req, res);
            WSCORO_FUZZ_REQUIRE(res.result() == expected);
            WSCORO_FUZZ_REQUIRE(!keep || req.keep_alive());
            http::write(server, res, ec);
            WSCORO_FUZZ_REQUIRE(!ec);
            auto const answer = read_answer(ioc, take_output(client), method);
            WSCORO_FUZZ_REQUIRE(answer.result() == expected);
            if (!keep) return 0;
            continue;
        }
        std::optional<refusal> refused;
        if (kind == request_kind::origin_refused) refused = refusal::origin_refused;
        else refused = limit;
        if (refused) {
            auto const res = wscoro::detail::make_refusal(req, *refused);
            WSCORO_FUZZ_REQUIRE(!wscoro::detail::keeps_open(req, res));
            http::write(server, res, ec);
            WSCORO_FUZZ_REQUIRE(!ec);
            auto const answer = read_answer(ioc, take_output(client), method);
            WSCORO_FUZZ_REQUIRE(answer.result() == (kind == request_kind::origin_refused
                                                        ? http::status::forbidden
                                                        : http::status::service_unavailable));
            WSCORO_FUZZ_REQUIRE(!answer.keep_alive());
            return 0;
        }

        // The handshake, as the listener does it: Beast validates the request and answers.
        websocket::stream<wscoro::detail::corked_stream<wscoro::fuzz::test_stream>> ws{std::move(server)};
        ws.set_option(websocket::stream_base::decorator(
            [](websocket::response_type& res) { res.set(http::field::server, wscoro::detail::server_name); }));
        std::optional<error_code> accepted;
        ws.async_accept(req, [&](error_code e) { accepted = e; });
        ioc.run();
        WSCORO_FUZZ_REQUIRE(accepted.has_value());
        auto const answer = read_answer(ioc, take_output(client), method);
        WSCORO_FUZZ_REQUIRE(answer[http::field::server] == wscoro::detail::server_name);
        if (*accepted) {
            WSCORO_FUZZ_REQUIRE(answer.result() == http::status::bad_request ||
                                answer.result() == http::status::upgrade_required);
            return 0;
        }
        WSCORO_FUZZ_REQUIRE(answer.result() == http::status::switching_protocols);
        websocket::detail::sec_ws_accept_type expected_accept;
        websocket::detail::make_sec_ws_accept(expected_accept, req[http::field::sec_websocket_key]);
        WSCORO_FUZZ_REQUIRE(answer[http::field::sec_websocket_accept] ==
                            beast::string_view(expected_accept.data(), expected_accept.size()));
        return 0;
    }
    return 0;
}
