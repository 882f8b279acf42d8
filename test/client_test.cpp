// The callback facade `wscoro::client` against a `wscoro::server` (or a misbehaving raw peer) on
// 127.0.0.1. Every wait is on a condition with a bounded timeout; "nothing more happens" is proved
// by client.close(), which joins the client's only thread.
#include <wscoro/client.hpp>

#include "support/loopback.hpp"
#include "support/recorder.hpp"

#include <wscoro/server.hpp>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/websocket/stream.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/value_from.hpp>

#include <doctest/doctest.h>

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

using namespace std::chrono_literals;
using wscoro::connection_ptr;
using wscoro::error_code;
using wscoro::message;
using wscoro::test::latch_flag;
using wscoro::test::recorder;
namespace asio = wscoro::asio;
using tcp = asio::ip::tcp;
using steady = std::chrono::steady_clock;

namespace {

bool contains(std::string_view text, std::string_view part) { return text.find(part) != std::string_view::npos; }

// --- a wscoro::server that records (and by default echoes) ---

struct test_server {
    explicit test_server(wscoro::server_config cfg = wscoro::test::loopback_server_config(), bool echo = true)
        : srv{std::move(cfg)} {
        srv.set_callbacks([this](connection_ptr const& c) { connects.push(c->id()); },
                          [this](connection_ptr const&, error_code ec) { disconnects.push(ec); },
                          [this, echo](connection_ptr const& c, message const& m) {
                              messages.push(m);
                              if (echo) c->send(m);
                          },
                          [this](error_code, std::string_view what) { errors.push(std::string{what}); });
        wscoro::diagnostics diag;
        auto ec = srv.start(diag);
        REQUIRE_MESSAGE(!ec, diag.message);
    }
    std::uint16_t port() const {
        auto a = srv.address();
        return static_cast<std::uint16_t>(std::stoi(a.substr(a.rfind(':') + 1)));
    }
    std::string url(std::string const& path = "/ws") const { return "ws://" + srv.address() + path; }

    recorder<std::string> connects;
    recorder<error_code> disconnects;
    recorder<message> messages;
    recorder<std::string> errors;
    wscoro::server srv;  // last: stopped (threads joined) before the recorders go
};

// --- the client's callbacks, recorded ---

struct client_events {
    recorder<int> connects;
    recorder<error_code> disconnects;
    recorder<message> messages;
    recorder<std::pair<error_code, std::string>> errors;

    void attach(wscoro::client& c) {
        c.set_callbacks([this] { connects.push(1); }, [this](error_code ec) { disconnects.push(ec); },
                        [this](message const& m) { messages.push(m); },
                        [this](error_code ec, std::string_view what) { errors.push({ec, std::string{what}}); });
    }
};

wscoro::client_config client_cfg(std::string url) {
    wscoro::client_config cfg;
    cfg.url = std::move(url);
    return cfg;
}

// A port with nothing listening: bound by the kernel, then released.
std::uint16_t closed_port() {
    asio::io_context ioc;
    tcp::acceptor a{ioc, {asio::ip::address_v4::loopback(), 0}};
    auto const port = a.local_endpoint().port();
    a.close();
    return port;
}

// A peer that misbehaves on its own thread: accepts TCP connections and, in `upgrade` mode,
// completes the WebSocket handshake and then never reads again (so never answers a ping); in `mute`
// mode never answers the upgrade request at all. Sockets stay open until destruction.
class stuck_peer {
public:
    enum mode { upgrade, mute };

    explicit stuck_peer(mode m, std::uint16_t port = 0) : mode_(m) {
        tcp::endpoint const ep{asio::ip::address_v4::loopback(), port};
        acceptor_.open(ep.protocol());
        acceptor_.set_option(asio::socket_base::reuse_address(true));
        acceptor_.bind(ep);
        acceptor_.listen();
        port_ = acceptor_.local_endpoint().port();
        accept_next();
        thread_ = std::thread([this] { ioc_.run(); });
    }
    ~stuck_peer() {
        ioc_.stop();
        thread_.join();  // from here on, everything is touched by this thread only
    }
    std::uint16_t port() const { return port_; }

    recorder<int> accepted;    // TCP connections
    recorder<int> handshakes;  // completed upgrades (upgrade mode)

private:
    using ws_stream = wscoro::websocket::stream<tcp::socket>;
    void accept_next() {
        acceptor_.async_accept([this](error_code ec, tcp::socket s) {
            if (ec) return;
            accepted.push(1);
            auto ws = std::make_shared<ws_stream>(std::move(s));
            streams_.push_back(ws);
            if (mode_ == upgrade)
                ws->async_accept([this, ws](error_code ec) {
                    if (!ec) handshakes.push(1);  // and no read is ever started
                });
            accept_next();
        });
    }

    mode mode_;
    asio::io_context ioc_;
    asio::executor_work_guard<asio::io_context::executor_type> work_{ioc_.get_executor()};
    tcp::acceptor acceptor_{ioc_};
    std::uint16_t port_ = 0;
    std::vector<std::shared_ptr<ws_stream>> streams_;
    std::thread thread_;
};

}  // namespace

// JSON conversions for a user type, found by argument-dependent lookup.
namespace client_test_types {
struct order {
    std::string item;
    int quantity = 0;
    bool express = false;
};
void tag_invoke(boost::json::value_from_tag, boost::json::value& v, order const& o) {
    v = {{"item", o.item}, {"quantity", o.quantity}, {"express", o.express}};
}
}  // namespace client_test_types

TEST_SUITE("client") {

TEST_CASE("connect then disconnect: one on_connect and one clean on_disconnect and no reconnect") {
    test_server server;
    client_events ev;
    auto cfg = client_cfg(server.url());
    cfg.auto_reconnect = true;
    cfg.reconnect_delay = 0ms;  // a reconnect, if one were (wrongly) made, would be immediate
    wscoro::client cli{cfg};
    ev.attach(cli);
    CHECK_FALSE(cli.is_connected());
    CHECK(cli.current() == nullptr);

    wscoro::diagnostics diag;
    REQUIRE_MESSAGE(!cli.connect(diag), diag.message);
    // connect() returns once connected: state and sending are usable at once.
    CHECK(cli.is_connected());
    CHECK(cli.current() != nullptr);
    REQUIRE(ev.connects.wait_for_count(1));
    REQUIRE(server.connects.wait_for_count(1));

    cli.disconnect();  // returns once on_disconnect has run
    CHECK(ev.disconnects.size() == 1);
    CHECK_FALSE(ev.disconnects.items().at(0));  // clean: we closed with 1000
    CHECK_FALSE(cli.is_connected());
    CHECK(cli.current() == nullptr);
    REQUIRE(server.disconnects.wait_for_count(1));
    CHECK_FALSE(server.disconnects.items().at(0));

    // disconnect() joined the client's thread: if it were going to reconnect, it would have done
    // so already (reconnect_delay is 0), and nothing can happen any more.
    CHECK(cli.reconnect_count() == 0);
    CHECK(ev.connects.size() == 1);
    CHECK(ev.disconnects.size() == 1);
    CHECK(ev.errors.size() == 0);
    CHECK(server.connects.size() == 1);

    // And connect() works again.
    REQUIRE_FALSE(cli.connect());
    CHECK(cli.is_connected());
    REQUIRE(ev.connects.wait_for_count(2));
    REQUIRE(server.connects.wait_for_count(2));
    cli.close();
    CHECK(ev.disconnects.size() == 2);
    CHECK_FALSE(ev.disconnects.items().at(1));
    CHECK(cli.reconnect_count() == 0);
    CHECK(ev.connects.size() == 2);
    cli.close();  // idempotent
    cli.disconnect();
}

TEST_CASE("connect returns only once the client is connected") {
    // connect() then send at once is the seed's usage: it must never see not_connected.
    test_server server;
    wscoro::client cli{client_cfg(server.url())};
    for (int i = 0; i < 20; ++i) {
        CAPTURE(i);
        REQUIRE_FALSE(cli.connect());
        CHECK(cli.is_connected());
        CHECK(cli.send_text("n" + std::to_string(i)) == error_code{});
        cli.disconnect();
        CHECK_FALSE(cli.is_connected());
    }
    REQUIRE(server.messages.wait_for_count(20));
}

TEST_CASE("text binary empty and JSON messages round trip with their kinds") {
    test_server server;  // echoes
    client_events ev;
    wscoro::client cli{client_cfg(server.url())};
    ev.attach(cli);
    REQUIRE_FALSE(cli.connect());

    boost::json::value const jv = {{"type", "greeting"}, {"n", 42}, {"tags", {"a", "b"}}, {"ok", true}};
    std::map<std::string, int> const scores{{"ann", 1}, {"bob", 2}};
    client_test_types::order const order{"tea", 3, true};
    std::string const bytes{"\0\x01\x02\xfe\xff", 5};

    CHECK(cli.send_text("hello") == error_code{});
    CHECK(cli.send_binary(bytes) == error_code{});
    CHECK(cli.send_text("") == error_code{});
    CHECK(cli.send_binary("") == error_code{});
    CHECK(cli.send_json(jv) == error_code{});
    CHECK(cli.send_json(scores) == error_code{});
    CHECK(cli.send_json(order) == error_code{});
    CHECK(cli.send(message::text(std::string(200'000, 'L'))) == error_code{});

    REQUIRE(ev.messages.wait_for_count(8));
    auto const got = ev.messages.items();
    CHECK(got[0] == message::text("hello"));
    CHECK(got[1].is_binary());
    CHECK(got[1].data() == bytes);
    CHECK(got[2].is_text());
    CHECK(got[2].empty());
    CHECK(got[3].is_binary());
    CHECK(got[3].empty());
    CHECK(got[4].is_text());
    CHECK(boost::json::parse(got[4].data()) == jv);
    CHECK(got[5].is_text());
    CHECK(boost::json::parse(got[5].data()) == boost::json::value_from(scores));
    CHECK(got[6].is_text());
    CHECK(boost::json::parse(got[6].data()) == boost::json::value_from(order));
    CHECK(got[7].size() == 200'000);

    // The server saw the same kinds.
    auto const seen = server.messages.items();
    REQUIRE(seen.size() == 8);
    CHECK(seen[1].is_binary());
    CHECK(seen[3].is_binary());
    CHECK(seen[4].is_text());
    cli.close();
}

TEST_CASE("the client reconnects after the server restarts on the same port") {
    client_events ev;
    auto first = std::make_unique<test_server>();
    auto const port = first->port();
    auto cfg = client_cfg(first->url());
    cfg.auto_reconnect = true;
    cfg.reconnect_delay = 50ms;
    wscoro::client cli{cfg};
    ev.attach(cli);
    REQUIRE_FALSE(cli.connect());
    REQUIRE(ev.connects.wait_for_count(1));
    CHECK(cli.reconnect_count() == 0);

    first->srv.stop();  // the server says 1001 going away: a clean close, then reconnection
    REQUIRE(ev.disconnects.wait_for_count(1));
    CHECK_FALSE(ev.disconnects.items().at(0));
    first.reset();

    auto scfg = wscoro::test::loopback_server_config();
    scfg.address = "127.0.0.1:" + std::to_string(port);
    test_server second{scfg};
    REQUIRE(ev.connects.wait_for_count(2, 5s));
    CHECK(cli.reconnect_count() >= 1);
    CHECK(cli.is_connected());
    CHECK(ev.disconnects.size() == 1);  // failed attempts are errors, not disconnects
    for (auto const& [ec, what] : ev.errors.items()) CHECK_MESSAGE(ec, what);  // failed attempts only

    CHECK(cli.send_text("after restart") == error_code{});
    REQUIRE(second.messages.wait_for_count(1));
    CHECK(second.messages.items().at(0).data() == "after restart");
    REQUIRE(ev.messages.wait_for_count(1));  // and the echo comes back
    cli.close();
    CHECK(ev.disconnects.size() == 2);
}

TEST_CASE("max_reconnects limits the attempts then the client gives up") {
    client_events ev;
    auto server = std::make_unique<test_server>();
    auto cfg = client_cfg(server->url());
    cfg.auto_reconnect = true;
    cfg.max_reconnects = 3;
    cfg.reconnect_delay = 10ms;
    wscoro::client cli{cfg};
    ev.attach(cli);
    REQUIRE_FALSE(cli.connect());
    REQUIRE(ev.connects.wait_for_count(1));

    server.reset();  // gone for good: every attempt is refused
    REQUIRE(ev.disconnects.wait_for_count(1));
    auto gave_up = [](auto const& errors) {
        return !errors.empty() && contains(errors.back().second, "giving up");
    };
    REQUIRE(ev.errors.wait(gave_up, 5s));
    cli.close();  // returns: nothing is running any more

    auto const errors = ev.errors.items();
    REQUIRE(errors.size() == 4);  // three failed attempts, then "giving up"
    for (int i = 0; i < 3; ++i) {
        CAPTURE(errors[i].second);
        CHECK(errors[i].first == asio::error::connection_refused);
        CHECK_FALSE(contains(errors[i].second, "giving up"));
    }
    CHECK_MESSAGE(contains(errors[3].second, "3"), errors[3].second);
    CHECK(errors[3].first);
    CHECK(cli.reconnect_count() == 3);
    CHECK(ev.connects.size() == 1);
    CHECK(ev.disconnects.size() == 1);
    CHECK_FALSE(cli.is_connected());
}

TEST_CASE("close during the reconnect delay returns promptly and stops reconnecting") {
    client_events ev;
    auto server = std::make_unique<test_server>();
    auto cfg = client_cfg(server->url());
    cfg.auto_reconnect = true;
    cfg.reconnect_delay = 30s;  // close() must not wait for it
    wscoro::client cli{cfg};
    ev.attach(cli);
    REQUIRE_FALSE(cli.connect());
    REQUIRE(ev.connects.wait_for_count(1));
    server.reset();
    REQUIRE(ev.disconnects.wait_for_count(1));  // now waiting reconnect_delay

    auto const t0 = steady::now();
    cli.close();
    CHECK(steady::now() - t0 < 1s);
    CHECK(cli.reconnect_count() == 0);
    CHECK(ev.errors.size() == 0);  // no attempt was made
    CHECK(ev.connects.size() == 1);
    CHECK(ev.disconnects.size() == 1);
}

TEST_CASE("close while reconnect attempts keep failing returns promptly") {
    client_events ev;
    auto server = std::make_unique<test_server>();
    auto cfg = client_cfg(server->url());
    cfg.reconnect_delay = 5ms;
    wscoro::client cli{cfg};
    ev.attach(cli);
    REQUIRE_FALSE(cli.connect());
    server.reset();
    REQUIRE(ev.errors.wait_for_count(3));  // cycling: attempt, refused, delay, attempt...
    auto const t0 = steady::now();
    cli.close();
    CHECK(steady::now() - t0 < 1s);
    auto const errors = ev.errors.size();
    auto const attempts = cli.reconnect_count();
    CHECK(attempts >= 3);
    // The thread is joined: the counts are final.
    CHECK(ev.errors.size() == errors);
    CHECK(cli.reconnect_count() == attempts);
    CHECK(ev.connects.size() == 1);
}

TEST_CASE("close during a reconnect attempt that hangs returns promptly") {
    client_events ev;
    auto server = std::make_unique<test_server>();
    auto const port = server->port();
    auto cfg = client_cfg(server->url());
    cfg.reconnect_delay = 0ms;
    cfg.handshake_timeout = 10s;  // close() must not wait for it
    wscoro::client cli{cfg};
    ev.attach(cli);
    REQUIRE_FALSE(cli.connect());
    REQUIRE(ev.connects.wait_for_count(1));
    server->srv.stop();
    REQUIRE(ev.disconnects.wait_for_count(1));
    server.reset();
    // On the same port, a peer that takes the TCP connection and never answers the upgrade.
    stuck_peer peer{stuck_peer::mute, port};
    REQUIRE(peer.accepted.wait_for_count(1, 5s));  // an attempt is under way (maybe after refusals)

    auto const t0 = steady::now();
    cli.close();
    CHECK(steady::now() - t0 < 1s);
    CHECK(ev.connects.size() == 1);
    CHECK_FALSE(cli.is_connected());
    for (auto const& [ec, what] : ev.errors.items())  // refusals before the peer was up; no abort
        CHECK_MESSAGE(ec == asio::error::connection_refused, what);
}

TEST_CASE("sending while disconnected fails with not_connected") {
    test_server server;
    wscoro::client cli{client_cfg(server.url())};
    CHECK(cli.send_text("never") == wscoro::error::not_connected);
    CHECK(cli.send_binary("never") == wscoro::error::not_connected);
    CHECK(cli.send_json(boost::json::value{{"a", 1}}) == wscoro::error::not_connected);
    REQUIRE_FALSE(cli.connect());
    CHECK(cli.send_text("one") == error_code{});
    cli.disconnect();
    CHECK(cli.send_text("after") == wscoro::error::not_connected);
    REQUIRE(server.disconnects.wait_for_count(1));
    auto const got = server.messages.items();  // messages come before the disconnect callback
    REQUIRE(got.size() == 1);
    CHECK(got[0].data() == "one");
}

TEST_CASE("eight threads sending on one client keep each thread's order") {
    constexpr int threads = 8;
    constexpr int per_thread = 1000;
    test_server server{wscoro::test::loopback_server_config(), false};
    auto cfg = client_cfg(server.url());
    cfg.send_queue_limit = threads * per_thread;  // room for everything: no send may fail
    wscoro::client cli{cfg};
    REQUIRE_FALSE(cli.connect());

    std::vector<std::vector<error_code>> results(threads);
    {
        std::vector<std::thread> senders;
        for (int t = 0; t < threads; ++t)
            senders.emplace_back([&cli, &results, t] {
                for (int i = 0; i < per_thread; ++i)
                    results[t].push_back(cli.send_text(std::to_string(t) + ":" + std::to_string(i)));
            });
        for (auto& s : senders) s.join();
    }
    for (auto const& r : results)
        for (auto const& ec : r) REQUIRE_MESSAGE(!ec, ec.message());

    REQUIRE(server.messages.wait_for_count(threads * per_thread));
    std::vector<int> next(threads, 0);
    bool in_order = true;
    for (auto const& m : server.messages.items()) {
        auto const text = std::string{m.data()};
        auto const colon = text.find(':');
        int const t = std::stoi(text.substr(0, colon));
        int const i = std::stoi(text.substr(colon + 1));
        if (i != next[t]) in_order = false;
        next[t] = i + 1;
    }
    CHECK(in_order);
    for (int t = 0; t < threads; ++t) CHECK(next[t] == per_thread);
    CHECK(server.messages.size() == threads * per_thread);
    cli.close();
}

TEST_CASE("ten thousand messages arrive in order") {
    constexpr int count = 10'000;
    test_server server{wscoro::test::loopback_server_config(), false};
    auto cfg = client_cfg(server.url());
    cfg.send_queue_limit = count;
    wscoro::client cli{cfg};
    REQUIRE_FALSE(cli.connect());
    for (int i = 0; i < count; ++i) REQUIRE(cli.send_text(std::to_string(i)) == error_code{});
    REQUIRE(server.messages.wait_for_count(count));
    auto const got = server.messages.items();
    int misplaced = 0;
    for (int i = 0; i < count; ++i) misplaced += got[i].data() != std::to_string(i);
    CHECK(misplaced == 0);
    cli.close();
}

TEST_CASE("bad URLs and configs fail connect at once") {
    struct bad_case {
        std::string url;
        wscoro::error expected;
    };
    std::vector<bad_case> const cases{
        {"", wscoro::error::invalid_config},  // client_config.url must not be empty
        {"http://x", wscoro::error::invalid_url},
        {"ws://", wscoro::error::invalid_url},
        {"ws://host:99999", wscoro::error::invalid_url},
        {"wss://localhost", wscoro::error::invalid_url},  // unsupported for now
        {"not a url", wscoro::error::invalid_url},
    };
    for (auto const& c : cases) {
        CAPTURE(c.url);
        client_events ev;
        wscoro::client cli{client_cfg(c.url)};
        ev.attach(cli);
        wscoro::diagnostics diag;
        auto const t0 = steady::now();
        auto ec = cli.connect(diag);
        CHECK(steady::now() - t0 < 1s);
        CHECK(ec == c.expected);
        CHECK_FALSE(diag.message.empty());
        CHECK_FALSE(cli.is_connected());
        cli.close();
        CHECK(ev.errors.size() == 0);
        CHECK(ev.connects.size() == 0);
        CHECK(ev.disconnects.size() == 0);
    }

    auto cfg = client_cfg("ws://127.0.0.1:1/");
    cfg.pong_wait = 1ms;  // shorter than ping_interval
    wscoro::client cli{cfg};
    wscoro::diagnostics diag;
    CHECK(cli.connect(diag) == wscoro::error::invalid_config);
    CHECK_MESSAGE(contains(diag.message, "pong_wait"), diag.message);
}

TEST_CASE("a refused connection fails connect quickly and is not retried") {
    client_events ev;
    auto cfg = client_cfg("ws://127.0.0.1:" + std::to_string(closed_port()) + "/ws");
    cfg.auto_reconnect = true;
    cfg.reconnect_delay = 0ms;
    wscoro::client cli{cfg};
    ev.attach(cli);
    wscoro::diagnostics diag;
    auto const t0 = steady::now();
    auto ec = cli.connect(diag);
    CHECK(steady::now() - t0 < 2s);
    CHECK(ec == asio::error::connection_refused);
    CHECK_FALSE(diag.message.empty());
    CHECK_FALSE(cli.is_connected());
    cli.close();
    CHECK(cli.reconnect_count() == 0);  // a failed connect() is returned, not retried
    CHECK(ev.errors.size() == 0);
    CHECK(ev.connects.size() == 0);
}

TEST_CASE("a server that never answers the upgrade fails connect with handshake_timeout") {
    stuck_peer peer{stuck_peer::mute};
    auto cfg = client_cfg("ws://127.0.0.1:" + std::to_string(peer.port()) + "/ws");
    cfg.handshake_timeout = 200ms;
    wscoro::client cli{cfg};
    wscoro::diagnostics diag;
    auto const t0 = steady::now();
    CHECK(cli.connect(diag) == wscoro::error::handshake_timeout);
    CHECK(steady::now() - t0 >= 200ms);  // one budget for TCP connect and upgrade: not cut short
    CHECK_MESSAGE(contains(diag.message, "handshake"), diag.message);
    CHECK(peer.accepted.size() == 1);  // TCP was connected: the upgrade timed out
    CHECK_FALSE(cli.is_connected());
}

TEST_CASE("handshake_timeout bounds the handshake only: an open connection outlives it") {
    auto scfg = wscoro::test::loopback_server_config();
    scfg.handshake_timeout = 100ms;
    test_server server{scfg};
    client_events ev;
    auto cfg = client_cfg(server.url());
    cfg.handshake_timeout = 100ms;
    wscoro::client cli{cfg};
    ev.attach(cli);
    REQUIRE_FALSE(cli.connect());
    // Four handshake timeouts of silence on both sides, and nobody ends the connection.
    CHECK_FALSE(server.disconnects.wait_for_count(1, 400ms));
    CHECK(ev.disconnects.size() == 0);
    REQUIRE_FALSE(cli.send_text("still here"));
    REQUIRE(ev.messages.wait_for_count(1));
    CHECK(ev.messages.items().at(0).data() == "still here");
    cli.close();
    REQUIRE(ev.disconnects.wait_for_count(1));
    CHECK_FALSE(ev.disconnects.items().at(0));  // a clean closing handshake
    REQUIRE(server.disconnects.wait_for_count(1));
    CHECK_FALSE(server.disconnects.items().at(0));
}

TEST_CASE("an upgrade answered 404 or 503 fails with upgrade_rejected") {
    auto scfg = wscoro::test::loopback_server_config();
    scfg.max_connections = 1;
    test_server server{scfg};

    wscoro::client wrong_path{client_cfg(server.url("/nope"))};
    wscoro::diagnostics diag;
    CHECK(wrong_path.connect(diag) == wscoro::error::upgrade_rejected);
    CHECK_MESSAGE(contains(diag.message, "404"), diag.message);

    wscoro::client first{client_cfg(server.url())};
    REQUIRE_FALSE(first.connect());
    REQUIRE(server.connects.wait_for_count(1));
    wscoro::client second{client_cfg(server.url())};
    diag = {};
    CHECK(second.connect(diag) == wscoro::error::upgrade_rejected);
    CHECK_MESSAGE(contains(diag.message, "503"), diag.message);
    CHECK_FALSE(second.is_connected());
    second.close();
    CHECK(second.reconnect_count() == 0);
    first.close();
}

TEST_CASE("a server that stops answering pings is detected") {
    stuck_peer peer{stuck_peer::upgrade};
    client_events ev;
    auto cfg = client_cfg("ws://127.0.0.1:" + std::to_string(peer.port()) + "/");
    cfg.auto_reconnect = false;
    cfg.ping_interval = 50ms;
    cfg.pong_wait = 200ms;
    wscoro::client cli{cfg};
    ev.attach(cli);
    auto const t0 = steady::now();
    REQUIRE_FALSE(cli.connect());
    REQUIRE(peer.handshakes.wait_for_count(1));
    REQUIRE(ev.disconnects.wait_for_count(1, 3s));
    auto const elapsed = steady::now() - t0;
    auto const why = ev.disconnects.items().at(0);
    CHECK_MESSAGE((why == wscoro::error::pong_timeout || why == wscoro::error::write_timeout), why.message());
    CHECK(elapsed >= 200ms);
    CHECK(elapsed < 2s);
    CHECK_FALSE(cli.is_connected());
    cli.close();
    // auto_reconnect is off: nothing more happened, and nothing can now.
    CHECK(ev.connects.size() == 1);
    CHECK(ev.disconnects.size() == 1);
    CHECK(cli.reconnect_count() == 0);
    CHECK(peer.accepted.size() == 1);
}

TEST_CASE("callbacks may send and disconnect from inside callbacks") {
    test_server server;  // echoes
    auto cfg = client_cfg(server.url());
    cfg.reconnect_delay = 0ms;
    wscoro::client cli{cfg};
    recorder<std::string> got;
    recorder<error_code> disconnects;
    recorder<error_code> send_results;
    recorder<error_code> nested_connect;
    cli.set_callbacks(
        [&] {
            send_results.push(cli.send_text("one"));
            nested_connect.push(cli.connect());  // not allowed from a callback: fails, no deadlock
        },
        [&](error_code ec) {
            disconnects.push(ec);
            send_results.push(cli.send_text("too late"));
        },
        [&](message const& m) {
            got.push(std::string{m.data()});
            if (m.data() == "one") send_results.push(cli.send_text("two"));
            else if (m.data() == "two") cli.disconnect();  // returns at once from a callback
        },
        nullptr);
    REQUIRE_FALSE(cli.connect());
    REQUIRE(disconnects.wait_for_count(1));
    CHECK_FALSE(disconnects.items().at(0));
    cli.close();
    CHECK(got.items() == std::vector<std::string>{"one", "two"});
    REQUIRE(send_results.size() == 3);
    CHECK_FALSE(send_results.items()[0]);
    CHECK_FALSE(send_results.items()[1]);
    CHECK(send_results.items()[2] == wscoro::error::not_connected);
    REQUIRE(nested_connect.size() == 1);
    CHECK(nested_connect.items()[0]);
    CHECK(cli.reconnect_count() == 0);  // a disconnect() from a callback stops reconnection too
    CHECK(disconnects.size() == 1);
}

TEST_CASE("the destructor closes a connected client") {
    test_server server;
    {
        wscoro::client cli{client_cfg(server.url())};
        REQUIRE_FALSE(cli.connect());
        REQUIRE(server.connects.wait_for_count(1));
    }  // ~client: close with 1000, join the thread
    REQUIRE(server.disconnects.wait_for_count(1));
    CHECK_FALSE(server.disconnects.items().at(0));
}

TEST_CASE("a connection held after the client is gone stays valid") {
    test_server server;
    connection_ptr held;
    {
        wscoro::client cli{client_cfg(server.url())};
        REQUIRE_FALSE(cli.connect());
        held = cli.current();
        REQUIRE(held);
        CHECK(held->is_open());
    }  // ~client: closed, thread joined; the connection's socket and timers outlive it safely
    REQUIRE(server.disconnects.wait_for_count(1));
    CHECK_FALSE(held->is_open());
    CHECK(held->send_text("late") == wscoro::error::not_connected);
    CHECK_FALSE(held->disconnect_reason());
    held.reset();  // destroys the Beast stream: its io_context must still exist (ASan checks)
}

}  // TEST_SUITE("client")
