// RFC 6455 conformance of the client side (`wscoro::client` and `wscoro::async_connect`), against
// a raw test server that answers the upgrade by hand and reads the client's bytes through the
// strict frame parser (test/support/frame_parser.hpp): masking with a fresh key per frame, minimal
// lengths, reassembly, pongs, and failing the connection with the right code when the server
// misbehaves.
#include <wscoro/client.hpp>  // first: proves the header is self-contained
#include <wscoro/connect.hpp>

#include "protocol/payloads.hpp"
#include "protocol/wire_peer.hpp"
#include "support/recorder.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <doctest/doctest.h>

#include <future>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace {

namespace wire = wscoro::test::wire;
namespace op = wire::op;
namespace asio = boost::asio;
namespace websocket = boost::beast::websocket;
using tcp = asio::ip::tcp;
using wscoro::test::recorder;
using namespace std::chrono_literals;
using namespace std::string_literals;

auto const suite = doctest::test_suite("protocol_client");

using wire::binary_of_size;
using wire::max_message;
using wire::size_classes;
using wire::text_of_size;

std::size_t masked_header(std::size_t n) { return wire::minimal_header(n, true); }

/// A raw server for one connection: a loopback acceptor and the accepted socket, which reads the
/// client's frames through the strict parser.
struct raw_server {
    wire::peer conn{wire::frame_parser::sender::client};
    tcp::acceptor acceptor{conn.context(), {asio::ip::address_v4::loopback(), 0}};
    wire::http_head request;

    std::string url(std::string const& target = "/ws") const {
        return "ws://127.0.0.1:" + std::to_string(acceptor.local_endpoint().port()) + target;
    }

    /// Accepts and reads the upgrade request; the test answers it.
    void accept_request() {
        REQUIRE_FALSE(conn.accept(acceptor));
        REQUIRE_FALSE(conn.read_head(request));
    }
    std::string key() const { return request.get("sec-websocket-key").value_or(""); }
    /// The answer a conforming server gives (RFC 6455 4.2.2), plus `extra` header lines.
    std::string good_response(std::string const& extra = {}) const {
        return "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Accept: " +
               wire::accept_for(key()) + "\r\n" + extra + "\r\n";
    }
    void accept_upgrade() {
        accept_request();
        REQUIRE_FALSE(conn.write(good_response()));
    }
    void send(unsigned opcode, std::string_view payload, bool fin = true) {
        REQUIRE_FALSE(conn.write(wire::server_frame(opcode, payload, fin)));
    }
    /// The client's next data or close frame (its pings are answered on the way).
    wire::frame next() {
        wire::frame f;
        REQUIRE_FALSE(conn.read_data_or_close(f));
        return f;
    }
    /// The client's next message: one masked, unfragmented frame with a minimal header.
    void expect_message(unsigned opcode, std::string_view payload) {
        auto const f = next();
        CHECK(f.opcode == opcode);
        CHECK(f.fin);
        CHECK(f.masked);
        CHECK(f.header_size == masked_header(payload.size()));
        REQUIRE(f.payload.size() == payload.size());
        CHECK_MESSAGE(f.payload == payload, "the payload differs");
    }
};

/// What a client's callbacks saw.
struct client_events {
    recorder<int> connected;
    recorder<wscoro::error_code> disconnected;
    recorder<wscoro::message> messages;
};

wscoro::client_config client_config(std::string url) {
    wscoro::client_config cfg;
    cfg.url = std::move(url);
    cfg.auto_reconnect = false;
    cfg.handshake_timeout = 3s;
    cfg.max_message_size = max_message;
    return cfg;
}

/// A callback client that sends every message back (the echo a test server checks). The events
/// come first: the client, and its callbacks, end before them.
struct echo_client {
    client_events events;
    wscoro::client cli;

    explicit echo_client(wscoro::client_config const& cfg) : cli{cfg} {
        cli.set_callbacks([this] { events.connected.push(1); },
                          [this](wscoro::error_code why) { events.disconnected.push(why); },
                          [this](wscoro::message const& m) {
                              events.messages.push(m);
                              cli.send(m);
                          },
                          nullptr);
    }

    /// connect() blocks until the upgrade is answered, so `server` answers it meanwhile.
    void connect_to(raw_server& server) {
        wscoro::error_code ec;
        wscoro::diagnostics diag;
        {
            std::jthread connecting{[&] { ec = cli.connect(diag); }};
            server.accept_upgrade();
        }
        REQUIRE_MESSAGE(!ec, ec.message() << ": " << diag.message);
        REQUIRE(events.connected.wait_for_count(1, 5s));
    }
};

/// The server closes TCP after the client's close frame, as RFC 6455 7.1.1 asks of it; the client
/// then reports the end. Returns the reported reason.
wscoro::error_code end_of(raw_server& server, echo_client& c) {
    server.conn.kill();
    REQUIRE(c.events.disconnected.wait_for_count(1, 5s));
    return c.events.disconnected.items()[0];
}

}  // namespace

TEST_CASE("the client's upgrade request is well formed with a fresh 16-byte key" * suite) {
    std::set<std::string> keys;
    for (int i = 0; i < 3; ++i) {
        raw_server server;
        echo_client c{client_config(server.url("/chat?room=1"))};
        wscoro::error_code ec;
        {
            std::jthread connecting{[&] { ec = c.cli.connect(); }};
            server.accept_request();
            auto const& req = server.request;
            CHECK(req.start_line == "GET /chat?room=1 HTTP/1.1");
            CHECK(req.get("host") ==
                  "127.0.0.1:" + std::to_string(server.acceptor.local_endpoint().port()));
            CHECK(req.has_token("upgrade", "websocket"));
            CHECK(req.has_token("connection", "upgrade"));
            CHECK(req.get("sec-websocket-version") == "13"s);
            auto const decoded = wire::base64_decode(server.key());
            REQUIRE(decoded.has_value());
            CHECK(decoded->size() == 16);
            keys.insert(server.key());
            // No extension is offered: the write loop's own framing relies on it.
            CHECK_FALSE(req.get("sec-websocket-extensions"));
            CHECK_FALSE(req.get("sec-websocket-protocol"));
            REQUIRE_FALSE(server.conn.write(server.good_response()));
        }
        REQUIRE_FALSE(ec);
        std::jthread closing{[&] { c.cli.disconnect(); }};  // waits for the closing handshake
        auto const f = server.next();
        CHECK(f.opcode == op::close);
        CHECK(f.close_code() == 1000);
        server.send(op::close, wire::close_payload(1000));
        CHECK_FALSE(end_of(server, c));
    }
    CHECK(keys.size() == 3);
}

TEST_CASE("client frames of every size class are masked with fresh keys and minimal lengths" *
          suite) {
    // The client also pings every 5 ms: its pings (written by Beast) interleave with our own
    // masked data frames, and every frame must stay intact.
    raw_server server;
    auto cfg = client_config(server.url());
    cfg.ping_interval = 5ms;
    cfg.pong_wait = 10s;
    echo_client c{cfg};
    c.connect_to(server);
    std::set<std::uint32_t> keys;
    auto remember = [&keys](wire::frame const& f) {
        keys.insert(std::uint32_t{f.key[0]} << 24 | std::uint32_t{f.key[1]} << 16 |
                    std::uint32_t{f.key[2]} << 8 | f.key[3]);
    };
    std::size_t frames = 0;
    for (int round = 0; round < 100 && (round < 2 || server.conn.pings_seen < 3); ++round) {
        std::vector<std::pair<unsigned, std::string>> sent;
        for (std::size_t n : size_classes) {
            sent.emplace_back(op::text, text_of_size(n));
            sent.emplace_back(op::binary, binary_of_size(n, static_cast<unsigned>(round)));
        }
        for (auto const& [opcode, payload] : sent) {
            auto const ec =
                opcode == op::text ? c.cli.send_text(payload) : c.cli.send_binary(payload);
            REQUIRE_FALSE(ec);
        }
        for (auto const& [opcode, payload] : sent) {
            wire::frame f;
            for (;;) {  // pings too: their keys must be fresh as well
                REQUIRE_FALSE(server.conn.read_frame(f));
                remember(f);
                ++frames;
                if (f.opcode != op::ping) break;
                ++server.conn.pings_seen;
                server.send(op::pong, f.payload);
            }
            CAPTURE(payload.size());
            CHECK(f.opcode == opcode);
            CHECK(f.fin);
            CHECK(f.header_size == masked_header(payload.size()));
            REQUIRE(f.payload.size() == payload.size());
            CHECK_MESSAGE(f.payload == payload, "the payload differs");
        }
    }
    CHECK(server.conn.pings_seen >= 3);
    // Pongs are written by Beast: 40 of them, each with a key of its own as well.
    std::string pings;
    for (int i = 0; i < 40; ++i) pings += wire::server_frame(op::ping, "ping " + std::to_string(i));
    REQUIRE_FALSE(server.conn.write(pings));
    for (int i = 0; i < 40;) {
        wire::frame f;
        REQUIRE_FALSE(server.conn.read_frame(f));
        remember(f);
        ++frames;
        if (f.opcode == op::ping) {  // the client's own keepalive goes on meanwhile
            server.send(op::pong, f.payload);
            continue;
        }
        CHECK(f.opcode == op::pong);
        CHECK(f.payload == "ping " + std::to_string(i++));
    }
    // 32 random bits per frame: among a few hundred frames a repeat is a one-in-a-million event,
    // while a key reused per connection, or a counter stuck, repeats at once.
    CHECK(keys.size() == frames);
    CHECK(c.cli.is_connected());
    std::jthread closing{[&] { c.cli.disconnect(); }};
    CHECK(server.next().close_code() == 1000);
    server.send(op::close, wire::close_payload(1000));
    CHECK_FALSE(end_of(server, c));
}

TEST_CASE("the client reassembles fragments and pongs a ping between them first" * suite) {
    raw_server server;
    echo_client c{client_config(server.url())};
    c.connect_to(server);
    // A ping in the middle of a fragmented message: its pong goes out at once, before the
    // message is complete, so before the echo.
    std::string const ping_payload = "ping between fragments";
    REQUIRE_FALSE(server.conn.write(
        wire::server_frame(op::text, "Hel", false) + wire::server_frame(op::ping, ping_payload) +
        wire::server_frame(op::cont, "lo ", false) + wire::server_frame(op::pong, "unsolicited") +
        wire::server_frame(op::cont, "world")));
    wire::frame f;
    REQUIRE_FALSE(server.conn.read_frame(f));
    CHECK(f.opcode == op::pong);
    CHECK(f.masked);
    CHECK(f.payload == ping_payload);
    server.expect_message(op::text, "Hello world");
    // Binary with empty fragments; text with code points split across fragments.
    auto const bin = binary_of_size(3000, 5);
    std::string bytes = wire::server_frame(op::binary, "", false);
    for (std::size_t at = 0; at < bin.size(); at += 700) {
        bytes += wire::server_frame(op::cont, std::string_view{bin}.substr(at, 700), false);
        bytes += wire::server_frame(op::cont, "", false);
    }
    bytes += wire::server_frame(op::cont, "", true);
    REQUIRE_FALSE(server.conn.write(bytes));
    server.expect_message(op::binary, bin);
    REQUIRE_FALSE(server.conn.write(wire::server_frame(op::text, "\xe2", false) +
                                    wire::server_frame(op::cont, "\x82", false) +
                                    wire::server_frame(op::cont, "\xac and \xf0\x9f", false) +
                                    wire::server_frame(op::cont, "\x98\x80")));
    server.expect_message(op::text, "\xe2\x82\xac and \xf0\x9f\x98\x80");
    REQUIRE(c.events.messages.size() == 3);
    CHECK(c.events.messages.items()[1].is_binary());
    // Server messages of every size class, unfragmented, come back intact.
    for (std::size_t n : size_classes) {
        CAPTURE(n);
        auto const text = text_of_size(n);
        server.send(op::text, text);
        server.expect_message(op::text, text);
        auto const b = binary_of_size(n, 1);
        server.send(op::binary, b);
        server.expect_message(op::binary, b);
    }
    // A server initiated close is answered with the same code, and the end is clean.
    server.send(op::close, wire::close_payload(4001, "bye"));
    f = server.next();
    CHECK(f.opcode == op::close);
    CHECK(f.close_code() == 4001);
    CHECK_FALSE(end_of(server, c));
}

TEST_CASE("the client fails a misbehaving server with the right close code" * suite) {
    using wire::encode;
    struct hostile {
        std::string name;
        std::string bytes;
        unsigned code;
    };
    std::vector<hostile> const cases{
        {"masked server frame", wire::client_frame(op::text, "masked"), 1002},
        {"masked ping", wire::client_frame(op::ping, "p"), 1002},
        {"RSV1", encode({.opcode = op::text, .payload = "x", .rsv = wire::rsv1, .mask = false}),
         1002},
        {"RSV3 on a ping",
         encode({.opcode = op::ping, .payload = "x", .rsv = wire::rsv3, .mask = false}), 1002},
        {"reserved opcode 0x3", wire::server_frame(0x3, "x"), 1002},
        {"reserved opcode 0xB", wire::server_frame(0xB, "x"), 1002},
        {"continuation without a message", wire::server_frame(op::cont, "x"), 1002},
        {"text inside a fragmented message",
         wire::server_frame(op::text, "a", false) + wire::server_frame(op::text, "b"), 1002},
        {"ping of 126 bytes", wire::server_frame(op::ping, std::string(126, 'p')), 1002},
        {"fragmented ping", wire::server_frame(op::ping, "p", false), 1002},
        {"length not minimal",
         encode({.opcode = op::text, .payload = "x", .mask = false, .length_bits = 16}), 1002},
        {"64-bit length with the top bit set",
         encode({.opcode = op::binary, .mask = false, .declared_length = std::uint64_t{1} << 63}),
         1009},
        {"message over max_message_size",
         encode({.opcode = op::binary, .mask = false, .declared_length = max_message + 1}), 1009},
        {"invalid UTF-8", wire::server_frame(op::text, "bad \xc0\xaf"), 1007},
        {"UTF-8 cut off by an empty final fragment",
         wire::server_frame(op::text, "ok \xe2\x82", false) + wire::server_frame(op::cont, ""),
         1007},
        {"invalid UTF-8 across fragments",
         wire::server_frame(op::text, "\xf0\x9f", false) + wire::server_frame(op::cont, "\x98("),
         1007},
        {"close code 1005", wire::server_frame(op::close, wire::close_payload(1005)), 1002},
        {"close with a 1-byte payload", wire::server_frame(op::close, "\x03"), 1002},
    };
    for (auto const& h : cases) {
        CAPTURE(h.name);
        raw_server server;
        echo_client c{client_config(server.url())};
        c.connect_to(server);
        REQUIRE_FALSE(server.conn.write(h.bytes));
        auto const f = server.next();
        CHECK(f.opcode == op::close);
        CHECK(f.close_code() == h.code);
        auto const why = end_of(server, c);
        CHECK_MESSAGE(why, "a failed connection must not be reported as a clean close");
        CHECK(c.events.messages.size() == 0);
        CHECK_FALSE(c.cli.is_connected());
    }
}

TEST_CASE("a bad upgrade answer fails connect with a clear error" * suite) {
    struct bad_answer {
        char const* name;
        std::string (*answer)(raw_server const&);
        wscoro::error_code expected;
    };
    bad_answer const cases[] = {
        {"wrong Sec-WebSocket-Accept",
         [](raw_server const& s) {
             auto r = s.good_response();
             auto const at = r.find("Accept: ") + 8;
             r[at] = r[at] == 'A' ? 'B' : 'A';
             return r;
         },
         websocket::error::bad_sec_accept},
        {"accept of the RFC example key instead of ours",
         [](raw_server const&) {
             return "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: "
                    "Upgrade\r\n"
                    "Sec-WebSocket-Accept: " +
                    std::string{wire::rfc_accept} + "\r\n\r\n";
         },
         websocket::error::bad_sec_accept},
        {"missing Sec-WebSocket-Accept",
         [](raw_server const&) {
             return "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"s;
         },
         websocket::error::no_sec_accept},
        {"missing Upgrade",
         [](raw_server const& s) {
             auto r = s.good_response();
             r.erase(r.find("Upgrade: websocket\r\n"), 20);
             return r;
         },
         websocket::error::no_upgrade},
        {"Connection without upgrade",
         [](raw_server const& s) {
             auto r = s.good_response();
             r.replace(r.find("Connection: Upgrade"), 19, "Connection: close");
             return r;
         },
         websocket::error::no_connection_upgrade},
        {"HTTP/1.0",
         [](raw_server const& s) {
             auto r = s.good_response();
             r.replace(0, 8, "HTTP/1.0");
             return r;
         },
         websocket::error::bad_http_version},
        {"200 OK",
         [](raw_server const&) { return "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi"s; },
         wscoro::error::upgrade_rejected},
        {"426 naming another version",
         [](raw_server const&) {
             return "HTTP/1.1 426 Upgrade Required\r\nSec-WebSocket-Version: 8\r\nContent-Length: 0\r\n\r\n"s;
         },
         wscoro::error::upgrade_rejected},
    };
    for (auto const& bad : cases) {
        CAPTURE(bad.name);
        raw_server server;
        echo_client c{client_config(server.url())};
        wscoro::error_code ec;
        wscoro::diagnostics diag;
        {
            std::jthread connecting{[&] { ec = c.cli.connect(diag); }};
            server.accept_request();
            REQUIRE_FALSE(server.conn.write(bad.answer(server)));
        }
        CHECK(ec == bad.expected);
        CAPTURE(diag.message);
        CHECK_FALSE(diag.message.empty());
        CHECK_FALSE(c.cli.is_connected());
        CHECK(c.events.connected.size() == 0);
    }
}

TEST_CASE("an unrequested extension or subprotocol in the answer fails connect" * suite) {
    // RFC 6455 4.1: the client MUST fail the connection when the answer names an extension or a
    // subprotocol it did not offer. Beast does not check (it even adopts the permessage-deflate
    // parameters, though it never enables them); lib/src/connect.cpp does.
    for (std::string extra : {"Sec-WebSocket-Extensions: permessage-deflate\r\n"s,
                              "Sec-WebSocket-Protocol: chat\r\n"s}) {
        CAPTURE(extra);
        raw_server server;
        echo_client c{client_config(server.url())};
        wscoro::error_code ec;
        wscoro::diagnostics diag;
        {
            std::jthread connecting{[&] { ec = c.cli.connect(diag); }};
            server.accept_request();
            REQUIRE_FALSE(server.conn.write(server.good_response(extra)));
        }
        CHECK(ec == wscoro::error::upgrade_rejected);
        CAPTURE(diag.message);
        CHECK(diag.message.find("not offered") != std::string::npos);
        CHECK_FALSE(c.cli.is_connected());
        server.conn.kill();  // do not let the client wait write_wait for a closing handshake
    }
}

TEST_CASE("a subprotocol the client offered is accepted" * suite) {
    raw_server server;
    auto cfg = client_config(server.url());
    cfg.headers.set(boost::beast::http::field::sec_websocket_protocol, "v2.wscoro, chat");
    echo_client c{cfg};
    wscoro::error_code ec;
    {
        std::jthread connecting{[&] { ec = c.cli.connect(); }};
        server.accept_request();
        REQUIRE_FALSE(server.conn.write(server.good_response("Sec-WebSocket-Protocol: chat\r\n")));
    }
    CHECK_FALSE(ec);
    CHECK(c.cli.is_connected());
    server.conn.kill();
}

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

/// The co_await API: connect, echo every message, and return how the connection ended.
asio::awaitable<wscoro::error_code> echo_until_the_end(std::string url) {
    auto cfg = client_config(std::move(url));
    auto ex = co_await asio::this_coro::executor;
    wscoro::diagnostics diag;
    auto [ec, conn] = co_await wscoro::async_connect(ex, cfg, diag, use_tuple);
    if (ec) co_return ec;
    for (;;) {
        auto [rec, m] = co_await conn->async_receive(use_tuple);
        if (rec) co_return rec;
        auto [sent] = co_await conn->async_send(std::move(m), use_tuple);
        if (sent) co_return sent;
    }
}

}  // namespace

TEST_CASE("async_connect: masked echoes and pongs then a masked server frame fails with 1002" *
          suite) {
    raw_server server;
    asio::io_context ioc;
    auto outcome = asio::co_spawn(ioc, echo_until_the_end(server.url()), asio::use_future);
    std::jthread io{[&ioc] { ioc.run_for(10s); }};
    server.accept_upgrade();
    auto const big = binary_of_size(max_message, 11);
    REQUIRE_FALSE(server.conn.write(
        wire::server_frame(op::binary, std::string_view{big}.substr(0, 1000), false) +
        wire::server_frame(op::ping, "p1") +
        wire::server_frame(op::cont, std::string_view{big}.substr(1000))));
    wire::frame f;
    REQUIRE_FALSE(server.conn.read_frame(f));
    CHECK(f.opcode == op::pong);
    CHECK(f.payload == "p1");
    server.expect_message(op::binary, big);
    server.send(op::text, "");
    server.expect_message(op::text, "");
    REQUIRE_FALSE(server.conn.write(wire::client_frame(op::text, "masked by the server")));
    f = server.next();
    CHECK(f.close_code() == 1002);
    server.conn.kill();
    REQUIRE(outcome.wait_for(5s) == std::future_status::ready);
    auto const ec = outcome.get();
    CAPTURE(ec.message());
    CHECK(ec == websocket::error::bad_masked_frame);
}
