// Pure functions: URL parsing, configuration validation, the message type, the error category.
#include <wscoro/url.hpp>

#include <wscoro/config.hpp>
#include <wscoro/error.hpp>
#include <wscoro/message.hpp>

#include <boost/json/parse.hpp>
#include <boost/json/value_from.hpp>

#include <doctest/doctest.h>

#include <array>
#include <cstddef>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

using namespace std::chrono_literals;
using wscoro::diagnostics;
using wscoro::error_code;
using wscoro::message;
using wscoro::ws_url;

namespace {

bool contains(std::string const& text, std::string_view part) { return text.find(part) != std::string::npos; }

ws_url parse_ok(std::string_view text) {
    ws_url u;
    diagnostics diag;
    auto ec = wscoro::parse_url(text, u, diag);
    CHECK_MESSAGE(!ec, text << ": " << diag.message);
    return u;
}

}  // namespace

TEST_SUITE("config") {

// --- parse_url ---

TEST_CASE("parse_url accepts ws URLs with defaults filled in") {
    auto u = parse_ok("ws://localhost");
    CHECK(u.scheme == "ws");
    CHECK(u.host == "localhost");
    CHECK(u.port == 80);
    CHECK(u.target == "/");
    CHECK(u.host_header() == "localhost");

    u = parse_ok("ws://example.com/");
    CHECK(u.target == "/");
    CHECK(u.host_header() == "example.com");
}

TEST_CASE("parse_url reads ports and paths") {
    auto u = parse_ok("ws://example.com:8080/chat");
    CHECK(u.host == "example.com");
    CHECK(u.port == 8080);
    CHECK(u.target == "/chat");
    CHECK(u.host_header() == "example.com:8080");

    u = parse_ok("ws://127.0.0.1:1/a/b/c");
    CHECK(u.host == "127.0.0.1");
    CHECK(u.port == 1);
    CHECK(u.target == "/a/b/c");
    CHECK(u.host_header() == "127.0.0.1:1");

    u = parse_ok("ws://h:65535");
    CHECK(u.port == 65535);
    CHECK(u.target == "/");

    // An explicit default port is left out of the Host header.
    u = parse_ok("ws://example.com:80/x");
    CHECK(u.port == 80);
    CHECK(u.host_header() == "example.com");

    // The target keeps its percent-encoding: it goes on the request line as is.
    u = parse_ok("ws://h/a%20b");
    CHECK(u.target == "/a%20b");
}

TEST_CASE("parse_url handles IPv6 hosts") {
    auto u = parse_ok("ws://[::1]:9000/ws");
    CHECK(u.host == "::1");  // without brackets: ready for the resolver
    CHECK(u.port == 9000);
    CHECK(u.target == "/ws");
    CHECK(u.host_header() == "[::1]:9000");

    u = parse_ok("ws://[::1]/");
    CHECK(u.port == 80);
    CHECK(u.host_header() == "[::1]");

    u = parse_ok("ws://[2001:db8::2]:443");
    CHECK(u.host == "2001:db8::2");
    CHECK(u.host_header() == "[2001:db8::2]:443");
}

TEST_CASE("parse_url keeps query strings in the target") {
    CHECK(parse_ok("ws://h/path?room=1&user=a").target == "/path?room=1&user=a");
    CHECK(parse_ok("ws://h?x=1").target == "/?x=1");
    CHECK(parse_ok("ws://h:81/?").target == "/?");
}

TEST_CASE("parse_url lowercases the scheme") {
    auto u = parse_ok("WS://Host:8080/P");
    CHECK(u.scheme == "ws");
    CHECK(u.port == 8080);
    CHECK(u.target == "/P");  // the path is case-sensitive
}

TEST_CASE("parse_url rejects bad URLs and says why") {
    struct bad_case {
        std::string_view url;
        std::string_view mentions;  // part of the explanation
    };
    std::array const cases{
        bad_case{"", "empty"},
        bad_case{"not a url", "not a URL"},
        bad_case{"//host/path", "not a URL"},  // no scheme
        bad_case{"http://x", "scheme"},
        bad_case{"https://x/", "scheme"},
        bad_case{"wss://localhost", "not supported"},
        bad_case{"WSS://localhost/", "not supported"},
        bad_case{"ws://", "missing host"},
        bad_case{"ws:/path", "missing host"},
        bad_case{"ws:///path", "missing host"},
        bad_case{"ws://host:99999", "port"},
        bad_case{"ws://host:65536", "port"},
        bad_case{"ws://host:0", "port"},
        bad_case{"ws://host:/", "port"},
        bad_case{"ws://user:secret@host/", "user information"},
        bad_case{"ws://host/#fragment", "fragment"},
        bad_case{"ws://[v1.future]/", "unsupported host"},
    };
    for (auto const& c : cases) {
        CAPTURE(c.url);
        ws_url u;
        u.host = "untouched";
        diagnostics diag;
        auto ec = wscoro::parse_url(c.url, u, diag);
        CHECK(ec == wscoro::error::invalid_url);
        CHECK_MESSAGE(contains(diag.message, c.mentions), diag.message);
        CHECK_MESSAGE(contains(diag.message, c.url), diag.message);  // quotes the input
        CHECK(u.host == "untouched");  // the output is left alone on failure
    }
}

// --- validate ---

TEST_CASE("default configurations are valid") {
    diagnostics diag;
    CHECK_FALSE(wscoro::validate(wscoro::server_config{}, diag));
    CHECK_FALSE(wscoro::validate(wscoro::connection_options{}, diag));
    wscoro::client_config ccfg;
    ccfg.url = "ws://localhost/";
    CHECK_FALSE(wscoro::validate(ccfg, diag));
    CHECK(diag.message.empty());
}

namespace {

// One rule: break the field, expect invalid_config naming it.
template <class Config> struct rule {
    std::string field;  // as named in the diagnostics, without the prefix
    std::function<void(Config&)> make_invalid;
};

// Every check_options rule, applied through `opts(cfg)`.
template <class Config, class Opts> std::vector<rule<Config>> connection_rules(Opts opts) {
    return {
        {"ping_interval", [=](Config& c) { opts(c).ping_interval = 0ms; }},
        {"ping_interval", [=](Config& c) { opts(c).ping_interval = -5ms; }},
        {"pong_wait", [=](Config& c) { opts(c).pong_wait = 0ms; }},
        {"pong_wait", [=](Config& c) { opts(c).pong_wait = -1ms; }},
        {"pong_wait", [=](Config& c) {  // shorter than ping_interval
             opts(c).ping_interval = 1000ms;
             opts(c).pong_wait = 999ms;
         }},
        {"write_wait", [=](Config& c) { opts(c).write_wait = 0ms; }},
        {"write_wait", [=](Config& c) { opts(c).write_wait = -1ms; }},
        {"read_buffer_size", [=](Config& c) { opts(c).read_buffer_size = 0; }},
        {"read_buffer_size", [=](Config& c) { opts(c).read_buffer_size = (std::size_t{1} << 32) + 1; }},
        {"write_buffer_size", [=](Config& c) { opts(c).write_buffer_size = 0; }},
        {"write_buffer_size", [=](Config& c) { opts(c).write_buffer_size = (std::size_t{1} << 32) + 1; }},
        {"max_message_size", [=](Config& c) { opts(c).max_message_size = 0; }},
        {"max_message_size", [=](Config& c) { opts(c).max_message_size = (std::size_t{1} << 32) + 1; }},
        {"send_queue_limit", [=](Config& c) { opts(c).send_queue_limit = 0; }},
        {"send_queue_limit", [=](Config& c) { opts(c).send_queue_limit = (std::size_t{1} << 24) + 1; }},
        {"send_queue_bytes", [=](Config& c) { opts(c).send_queue_bytes = 0; }},
    };
}

// The limits themselves are allowed.
template <class Config, class Opts> std::vector<std::function<void(Config&)>> connection_limits(Opts opts) {
    return {
        [=](Config& c) { opts(c).pong_wait = opts(c).ping_interval; },
        [=](Config& c) { opts(c).read_buffer_size = std::size_t{1} << 32; },
        [=](Config& c) { opts(c).write_buffer_size = 1; },
        [=](Config& c) { opts(c).max_message_size = std::size_t{1} << 32; },
        [=](Config& c) { opts(c).send_queue_limit = std::size_t{1} << 24; },
        [=](Config& c) { opts(c).send_queue_limit = 1; },
    };
}

template <class Config>
void check_rules(Config const& valid, std::string const& prefix, std::vector<rule<Config>> const& rules) {
    for (auto const& r : rules) {
        CAPTURE(r.field);
        Config cfg = valid;
        r.make_invalid(cfg);
        diagnostics diag;
        CHECK(wscoro::validate(cfg, diag) == wscoro::error::invalid_config);
        CHECK_MESSAGE(diag.message.starts_with(prefix + r.field + ":"), diag.message);
    }
}

template <class Config>
void check_allowed(Config const& valid, std::vector<std::function<void(Config&)>> const& changes) {
    for (std::size_t i = 0; i < changes.size(); ++i) {
        CAPTURE(i);
        Config cfg = valid;
        changes[i](cfg);
        diagnostics diag;
        CHECK_MESSAGE(!wscoro::validate(cfg, diag), diag.message);
    }
}

}  // namespace

TEST_CASE("validate connection_options names each invalid field") {
    using O = wscoro::connection_options;
    auto self = [](O& o) -> O& { return o; };
    check_rules(O{}, "", connection_rules<O>(self));
    check_allowed(O{}, connection_limits<O>(self));
}

TEST_CASE("validate server_config names each invalid field") {
    using S = wscoro::server_config;
    auto self = [](S& s) -> S& { return s; };
    auto rules = connection_rules<S>(self);
    rules.push_back({"address", [](S& c) { c.address.clear(); }});
    rules.push_back({"path", [](S& c) { c.path.clear(); }});
    rules.push_back({"path", [](S& c) { c.path = "ws"; }});
    rules.push_back({"handshake_timeout", [](S& c) { c.handshake_timeout = 0ms; }});
    rules.push_back({"handshake_timeout", [](S& c) { c.handshake_timeout = -1ms; }});
    rules.push_back({"shutdown_timeout", [](S& c) { c.shutdown_timeout = -1ms; }});
    rules.push_back({"threads", [](S& c) { c.threads = 0; }});
    rules.push_back({"threads", [](S& c) { c.threads = 1025; }});
    check_rules(S{}, "server_config.", rules);

    auto allowed = connection_limits<S>(self);
    allowed.push_back([](S& c) { c.shutdown_timeout = 0ms; });  // abort at once
    allowed.push_back([](S& c) { c.threads = 1024; });
    allowed.push_back([](S& c) { c.max_connections = 0; });  // unlimited
    allowed.push_back([](S& c) { c.path = "/"; });
    check_allowed(S{}, allowed);

    // The path rule quotes what it got.
    S cfg;
    cfg.path = "chat";
    diagnostics diag;
    CHECK(wscoro::validate(cfg, diag) == wscoro::error::invalid_config);
    CHECK_MESSAGE(contains(diag.message, "\"chat\""), diag.message);
}

TEST_CASE("validate client_config names each invalid field") {
    using C = wscoro::client_config;
    C valid;
    valid.url = "ws://localhost/";
    auto self = [](C& c) -> C& { return c; };
    auto rules = connection_rules<C>(self);
    rules.push_back({"url", [](C& c) { c.url.clear(); }});
    rules.push_back({"reconnect_delay", [](C& c) { c.reconnect_delay = -1ms; }});
    rules.push_back({"reconnect_delay_max", [](C& c) { c.reconnect_delay_max = c.reconnect_delay - 1ms; }});
    rules.push_back({"max_reconnects", [](C& c) { c.max_reconnects = -1; }});
    rules.push_back({"handshake_timeout", [](C& c) { c.handshake_timeout = 0ms; }});
    rules.push_back({"handshake_timeout", [](C& c) { c.handshake_timeout = -1ms; }});
    check_rules(valid, "client_config.", rules);

    auto allowed = connection_limits<C>(self);
    allowed.push_back([](C& c) { c.reconnect_delay = 0ms; });
    allowed.push_back([](C& c) { c.reconnect_delay_max = c.reconnect_delay; });  // a constant pause
    allowed.push_back([](C& c) { c.max_reconnects = 0; });  // unlimited
    allowed.push_back([](C& c) { c.auto_reconnect = false; });
    // validate() checks fields, not the URL's syntax: that is parse_url's job (connect runs both).
    allowed.push_back([](C& c) { c.url = "not a url"; });
    check_allowed(valid, allowed);
}

TEST_CASE("connection() carries every connection field of the configs") {
    wscoro::server_config s;
    s.ping_interval = 1s;
    s.pong_wait = 2s;
    s.write_wait = 3s;
    s.read_buffer_size = 11;
    s.write_buffer_size = 12;
    s.max_message_size = 13;
    s.send_queue_limit = 14;
    s.on_overflow = wscoro::overflow_policy::reject_message;
    auto o = s.connection();
    CHECK(o.ping_interval == 1s);
    CHECK(o.pong_wait == 2s);
    CHECK(o.write_wait == 3s);
    CHECK(o.read_buffer_size == 11);
    CHECK(o.write_buffer_size == 12);
    CHECK(o.max_message_size == 13);
    CHECK(o.send_queue_limit == 14);
    CHECK(o.on_overflow == wscoro::overflow_policy::reject_message);

    wscoro::client_config c;
    c.ping_interval = 4s;
    c.pong_wait = 5s;
    c.write_wait = 6s;
    c.read_buffer_size = 21;
    c.write_buffer_size = 22;
    c.max_message_size = 23;
    c.send_queue_limit = 24;
    c.on_overflow = wscoro::overflow_policy::close_connection;
    o = c.connection();
    CHECK(o.ping_interval == 4s);
    CHECK(o.pong_wait == 5s);
    CHECK(o.write_wait == 6s);
    CHECK(o.read_buffer_size == 21);
    CHECK(o.write_buffer_size == 22);
    CHECK(o.max_message_size == 23);
    CHECK(o.send_queue_limit == 24);
    CHECK(o.on_overflow == wscoro::overflow_policy::close_connection);

    // The defaults the seed documents: the server closes a slow consumer, the client refuses.
    CHECK(wscoro::server_config{}.on_overflow == wscoro::overflow_policy::close_connection);
    CHECK(wscoro::client_config{}.on_overflow == wscoro::overflow_policy::reject_message);
}

}  // TEST_SUITE("config")

// --- message ---

namespace url_config_test_types {
struct point {
    int x = 0;
    int y = 0;
    std::string label;
};
void tag_invoke(boost::json::value_from_tag, boost::json::value& v, point const& p) {
    v = {{"x", p.x}, {"y", p.y}, {"label", p.label}};
}
}  // namespace url_config_test_types

TEST_SUITE("config") {

TEST_CASE("message construction: text binary empty") {
    auto t = message::text("hello");
    CHECK(t.is_text());
    CHECK_FALSE(t.is_binary());
    CHECK(t.kind() == wscoro::message_kind::text);
    CHECK(t.data() == "hello");
    CHECK(t.size() == 5);
    CHECK_FALSE(t.empty());
    CHECK(t.buffer().size() == 5);
    CHECK(t.buffer().data() == t.data().data());

    std::string const raw{"\0\x01\x02\xff", 4};
    auto b = message::binary(raw);
    CHECK(b.is_binary());
    CHECK(b.data() == raw);  // embedded NUL kept
    std::array<std::byte, 3> const bytes{std::byte{0}, std::byte{0x7f}, std::byte{0xff}};
    auto bs = message::binary(std::span<std::byte const>{bytes});
    CHECK(bs.is_binary());
    CHECK(bs.size() == 3);
    CHECK(static_cast<unsigned char>(bs.data()[2]) == 0xff);

    message const none;
    CHECK(none.is_text());
    CHECK(none.empty());
    CHECK(none.data().empty());
    CHECK(none.buffer().size() == 0);
    CHECK(message::text("").empty());
    CHECK(message::binary("").is_binary());
    CHECK(message::binary("").empty());

    // Equality is kind and bytes.
    CHECK(message::text("a") == message::text("a"));
    CHECK_FALSE(message::text("a") == message::binary("a"));
    CHECK_FALSE(message::text("a") == message::text("b"));
    CHECK(message{} == message::text(""));
    CHECK_FALSE(message{} == message::binary(""));
}

TEST_CASE("message copies share one payload") {
    auto const original = message::binary(std::string(1000, 'z'));
    message copy = original;  // NOLINT(performance-unnecessary-copy-initialization): the point
    CHECK(copy == original);
    CHECK(copy.data().data() == original.data().data());  // same bytes, not a copy of them
    std::vector<message> fan_out(100, original);
    for (auto const& m : fan_out) CHECK(m.data().data() == original.data().data());
    message moved = std::move(copy);
    CHECK(moved.data().data() == original.data().data());
}

TEST_CASE("message json serializes values maps and structs") {
    boost::json::value const v = {{"type", "chat"}, {"n", 3}, {"tags", {"a", "b"}}};
    auto m = message::json(v);
    CHECK(m.is_text());
    CHECK(boost::json::parse(m.data()) == v);

    std::map<std::string, int> const scores{{"ann", 3}, {"bob", 5}};
    auto mm = message::json(scores);
    CHECK(mm.is_text());
    CHECK(boost::json::parse(mm.data()) == boost::json::value_from(scores));
    CHECK(boost::json::parse(mm.data()).at("bob") == 5);

    url_config_test_types::point const p{1, -2, "origin-ish"};
    auto mp = message::json(p);
    auto const parsed = boost::json::parse(mp.data());
    CHECK(parsed.at("x") == 1);
    CHECK(parsed.at("y") == -2);
    CHECK(parsed.at("label") == "origin-ish");

    std::vector<int> const list{1, 2, 3};
    CHECK(message::json(list).data() == "[1,2,3]");
}

// --- the error category ---

TEST_CASE("wscoro error codes have a category and messages") {
    error_code const ec = wscoro::error::pong_timeout;
    CHECK(ec.category().name() == std::string_view{"wscoro"});
    for (int e = static_cast<int>(wscoro::error::pong_timeout); e <= static_cast<int>(wscoro::error::aborted); ++e) {
        error_code const code = static_cast<wscoro::error>(e);
        CAPTURE(e);
        CHECK(code);
        CHECK_FALSE(code.message().empty());
        CHECK(code.message() != "unknown wscoro error");
    }
    CHECK(error_code{wscoro::error::not_connected} != error_code{wscoro::error::send_queue_full});
}

}  // TEST_SUITE("config")
