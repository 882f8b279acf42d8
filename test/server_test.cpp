// The server side: the callback facade `wscoro::server` (and through it `wscoro::listener`),
// driven by peers that contain no wscoro code (test/support/raw_peer.hpp): plain Beast WebSocket
// clients, raw HTTP requests, and raw TCP sockets that do the upgrade by hand and then misbehave.
// Every wait is on a condition with a bound; nothing sleeps.
#include <wscoro/server.hpp>  // first: proves the header is self-contained

#include "support/process_info.hpp"
#include "support/raw_peer.hpp"
#include "support/recorder.hpp"

#include <boost/json/parse.hpp>
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using wscoro::test::latch_flag;
using wscoro::test::recorder;
namespace raw = wscoro::test::raw;
namespace websocket = boost::beast::websocket;
namespace http = boost::beast::http;
using steady = std::chrono::steady_clock;

namespace server_test_types {
// A user type serialized through Boost.JSON's customization point, found by ADL.
struct point {
    int x = 0;
    int y = 0;
};
void tag_invoke(boost::json::value_from_tag, boost::json::value& jv, point const& p) {
    jv = {{"x", p.x}, {"y", p.y}};
}
}  // namespace server_test_types

namespace {

auto const suite = doctest::test_suite("server");

wscoro::server_config loopback_config() {
    wscoro::server_config cfg;
    cfg.address = "127.0.0.1:0";  // the kernel picks the port
    cfg.path = "/ws";
    cfg.shutdown_timeout = 1s;
    return cfg;
}

/// What the callbacks saw, recorded from the server's threads.
/// n raw clients connected to srv, in order.
std::vector<std::unique_ptr<raw::ws_client>> connect_clients(wscoro::server const& srv, int n) {
    std::vector<std::unique_ptr<raw::ws_client>> clients;
    for (int i = 0; i < n; ++i) {
        clients.push_back(std::make_unique<raw::ws_client>());
        REQUIRE_FALSE(clients.back()->connect(srv.address()));
    }
    return clients;
}

struct disconnect_event {
    std::string id;
    wscoro::error_code why;
};
struct error_event {
    wscoro::error_code ec;
    std::string what;
};

std::chrono::milliseconds since(steady::time_point t0) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(steady::now() - t0);
}

int to_int(std::string_view s) {
    int v = -1;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    return ec == std::errc{} && end == s.data() + s.size() ? v : -1;
}

/// "127.0.0.1:port" of a socket's local end: what the server sees as the peer's remote_address.
std::string local_address(raw::tcp::socket const& s) {
    auto const ep = s.local_endpoint();
    return ep.address().to_string() + ":" + std::to_string(ep.port());
}

/// A started server that echoes every message and records its callbacks. The recorders come first,
/// so the server (and its callbacks) end before them, even when a test stops early.
struct recording_echo_server {
    recorder<wscoro::connection_ptr> joined;
    recorder<disconnect_event> left;
    recorder<error_event> errors;
    wscoro::server srv;

    explicit recording_echo_server(wscoro::server_config const& cfg) : srv{cfg} {
        srv.set_callbacks([this](wscoro::connection_ptr const& c) { joined.push(c); },
                          [this](wscoro::connection_ptr const& c, wscoro::error_code why) {
                              left.push({c->id(), why});
                          },
                          [](wscoro::connection_ptr const& c, wscoro::message const& m) { c->send(m); },
                          [this](wscoro::error_code ec, std::string_view what) {
                              errors.push({ec, std::string{what}});
                          });
        REQUIRE_FALSE(srv.start());
    }
};

using wscoro::test::foreign_threads;
using wscoro::test::thread_count;

/// Counts of numbered messages "t:i": checks that each sender's messages arrive in order, none
/// lost.
class per_sender_order {
public:
    explicit per_sender_order(int senders) : next_(static_cast<std::size_t>(senders), 0) {}
    /// False (and remembers the first problem) if `s` is malformed or out of order.
    bool add(std::string_view s) {
        auto const colon = s.find(':');
        int const t = colon == s.npos ? -1 : to_int(s.substr(0, colon));
        int const i = colon == s.npos ? -1 : to_int(s.substr(colon + 1));
        if (t < 0 || t >= static_cast<int>(next_.size()) ||
            i != next_[static_cast<std::size_t>(t)]) {
            if (problem_.empty())
                problem_ = "got \"" + std::string{s} + "\", expected index " +
                           (t >= 0 && t < static_cast<int>(next_.size())
                                ? std::to_string(next_[static_cast<std::size_t>(t)])
                                : std::string{"?"});
            return false;
        }
        ++next_[static_cast<std::size_t>(t)];
        return true;
    }
    bool complete(int per_sender) const {
        return std::all_of(next_.begin(), next_.end(),
                           [per_sender](int n) { return n == per_sender; });
    }
    std::string const& problem() const { return problem_; }

private:
    std::vector<int> next_;
    std::string problem_;
};

}  // namespace

// ---------------------------------------------------------------------------------------------
// 1. Lifecycle
// ---------------------------------------------------------------------------------------------

TEST_CASE("start binds a real port and stop then start again works" * suite) {
    wscoro::server srv{loopback_config()};
    srv.set_callbacks(
        nullptr, nullptr,
        [](wscoro::connection_ptr const& c, wscoro::message const& m) { c->send(m); }, nullptr);
    CHECK_FALSE(srv.is_running());
    CHECK(srv.address().empty());
    CHECK(srv.client_count() == 0);
    CHECK(srv.broadcast_text("nobody") == 0);

    REQUIRE_FALSE(srv.start());
    CHECK(srv.is_running());
    auto const first = srv.address();
    REQUIRE(first.rfind("127.0.0.1:", 0) == 0);
    CHECK(raw::endpoint_of(first).port() != 0);
    CHECK_FALSE(srv.start());  // already running: a no-op
    CHECK(srv.address() == first);
    {
        raw::ws_client cli;
        REQUIRE_FALSE(cli.connect(first));
        REQUIRE_FALSE(cli.send_text("one"));
        auto f = cli.read();
        REQUIRE_FALSE(f.ec);
        CHECK(f.data == "one");
        CHECK_FALSE(cli.close());
    }
    srv.stop();
    CHECK_FALSE(srv.is_running());
    CHECK(srv.address().empty());
    CHECK(srv.client_count() == 0);
    srv.stop();  // stopping a stopped server is harmless
    {
        raw::ws_client refused{1s};
        CHECK(refused.connect(first));  // nothing listens there any more
    }

    REQUIRE_FALSE(srv.start());  // and it starts again, with the same callbacks
    CHECK(srv.is_running());
    auto const second = srv.address();
    CHECK(raw::endpoint_of(second).port() != 0);
    {
        raw::ws_client cli;
        REQUIRE_FALSE(cli.connect(second));
        REQUIRE_FALSE(cli.send_text("two"));
        auto f = cli.read();
        REQUIRE_FALSE(f.ec);
        CHECK(f.data == "two");
        CHECK_FALSE(cli.close());
    }
    srv.stop();
    CHECK_FALSE(srv.is_running());
}

TEST_CASE("the destructor stops a running server and its clients cleanly" * suite) {
    int const threads_before = thread_count();
    recorder<disconnect_event> left;
    latch_flag connected;
    raw::ws_client cli;
    wscoro::error_code read_end;
    std::chrono::milliseconds destroy_time{};
    {
        std::jthread reader;  // declared before the server: joined after the server is gone
        auto srv = std::make_unique<wscoro::server>(loopback_config());
        srv->set_callbacks([&](wscoro::connection_ptr const&) { connected.set(); },
                           [&](wscoro::connection_ptr const& c, wscoro::error_code why) {
                               left.push({c->id(), why});
                           },
                           nullptr, nullptr);
        REQUIRE_FALSE(srv->start());
        REQUIRE_FALSE(cli.connect(srv->address()));
        REQUIRE(connected.wait(5s));
        // The client keeps reading (so it answers the server's close) on a thread of its own.
        reader = std::jthread{[&] { read_end = cli.read_until_closed(); }};
        auto const t0 = steady::now();
        srv.reset();
        destroy_time = since(t0);
    }
    // The client answered at once, so the destructor did not need the whole shutdown_timeout.
    CHECK(destroy_time < 1s);
    CHECK(read_end == websocket::error::closed);
    CHECK(cli.reason().code == websocket::close_code::going_away);
    // on_disconnect ran before the destructor returned, exactly once, for a clean closing
    // handshake.
    REQUIRE(left.size() == 1);
    CHECK_FALSE(left.items()[0].why);
    CHECK(thread_count() <= threads_before + foreign_threads);  // the I/O threads were joined
}

// ---------------------------------------------------------------------------------------------
// 2. Connection identity, lookups, and the connection_ptr after the peer left
// ---------------------------------------------------------------------------------------------

TEST_CASE("connect and disconnect fire once per connection with its identity" * suite) {
    wscoro::server srv{loopback_config()};
    recorder<wscoro::connection_ptr> joined;
    recorder<disconnect_event> left;
    srv.set_callbacks([&](wscoro::connection_ptr const& c) { joined.push(c); },
                      [&](wscoro::connection_ptr const& c, wscoro::error_code why) {
                          left.push({c->id(), why});
                      },
                      nullptr, nullptr);
    REQUIRE_FALSE(srv.start());

    constexpr int n = 3;
    std::vector<std::unique_ptr<raw::ws_client>> clients;
    auto const before = std::chrono::system_clock::now();
    for (int i = 0; i < n; ++i) {
        clients.push_back(std::make_unique<raw::ws_client>());
        REQUIRE_FALSE(clients.back()->connect(
            srv.address(), "/ws?n=" + std::to_string(i), [i](websocket::request_type& req) {
                req.set(http::field::user_agent, "raw-peer/" + std::to_string(i));
                req.set("X-Client", std::to_string(i));
            }));
    }
    REQUIRE(joined.wait_for_count(n, 5s));
    auto const after = std::chrono::system_clock::now();

    // Match each connection to its client through the header the client sent.
    std::vector<wscoro::connection_ptr> conn(n);
    std::set<std::string> ids;
    for (auto const& c : joined.items()) {
        int const i = to_int(c->headers()["X-Client"]);
        REQUIRE(i >= 0);
        REQUIRE(i < n);
        CHECK_FALSE(conn[static_cast<std::size_t>(i)]);  // each client connected once
        conn[static_cast<std::size_t>(i)] = c;
        ids.insert(c->id());
        CHECK_FALSE(c->id().empty());
        CHECK(c->user_agent() == "raw-peer/" + std::to_string(i));
        CHECK(c->target() == "/ws?n=" + std::to_string(i));
        CHECK(c->remote_address() == local_address(clients[static_cast<std::size_t>(i)]->socket()));
        CHECK(c->connected_at() >= before);
        CHECK(c->connected_at() <= after);
        CHECK(c->is_open());
        CHECK(srv.client(c->id()) == c);
    }
    CHECK(ids.size() == n);  // unique ids
    CHECK(srv.client_count() == n);
    auto all = srv.clients();
    CHECK(all.size() == n);
    for (auto const& c : conn) CHECK(std::find(all.begin(), all.end(), c) != all.end());
    CHECK(srv.client("no such id") == nullptr);

    // Client 0 leaves with a closing handshake: a clean disconnect.
    REQUIRE_FALSE(clients[0]->close());
    REQUIRE(left.wait_for_count(1, 5s));
    CHECK(left.items()[0].id == conn[0]->id());
    CHECK_FALSE(left.items()[0].why);
    CHECK(srv.client_count() == n - 1);
    CHECK(srv.client(conn[0]->id()) == nullptr);
    // The connection_ptr held after the peer left is still valid, and says so.
    CHECK_FALSE(conn[0]->is_open());
    CHECK(conn[0]->send_text("too late") == wscoro::error::not_connected);
    CHECK(conn[0]->send_binary(std::string{"too late"}) == wscoro::error::not_connected);
    CHECK(conn[0]->user_agent() == "raw-peer/0");
    CHECK_FALSE(conn[0]->disconnect_reason());
    CHECK(conn[0]->last_close().code == websocket::close_code::normal);

    // Client 1 vanishes without a closing handshake: a disconnect with an error.
    clients[1]->kill();
    REQUIRE(left.wait_for_count(2, 5s));
    CHECK(left.items()[1].id == conn[1]->id());
    CHECK(left.items()[1].why);
    CHECK(conn[1]->disconnect_reason() == left.items()[1].why);
    CHECK(srv.client_count() == n - 2);
    CHECK(srv.client(conn[1]->id()) == nullptr);
    CHECK(conn[1]->send_text("too late") == wscoro::error::not_connected);

    wscoro::error_code end2;
    {
        // Client 2 leaves with the server; it reads, so it answers the server's close at once.
        std::jthread reader{[&] { end2 = clients[2]->read_until_closed(); }};
        srv.stop();
    }
    CHECK(end2 == websocket::error::closed);
    CHECK(clients[2]->reason().code == websocket::close_code::going_away);
    CHECK(srv.client_count() == 0);
    // Exactly once each: the I/O threads are joined, so nothing more can arrive.
    REQUIRE(left.size() == n);
    REQUIRE(joined.size() == n);
    std::multiset<std::string> left_ids;
    for (auto const& e : left.items()) left_ids.insert(e.id);
    CHECK(left_ids == std::multiset<std::string>(ids.begin(), ids.end()));
    CHECK(conn[2]->send_text("after stop") == wscoro::error::not_connected);
}

TEST_CASE("headers() keeps every upgrade header in its order, repeated and empty ones too" * suite) {
    wscoro::server srv{loopback_config()};
    recorder<wscoro::connection_ptr> joined;
    srv.set_callbacks([&](wscoro::connection_ptr const& c) { joined.push(c); }, nullptr, nullptr, nullptr);
    REQUIRE_FALSE(srv.start());
    std::string const long_value(3000, 'v');
    raw::ws_client cli;
    REQUIRE_FALSE(cli.connect(srv.address(), "/ws", [&](websocket::request_type& req) {
        req.set(http::field::user_agent, "probe/1");
        req.insert("X-Tag", "one");
        req.insert("X-Long", long_value);
        req.insert("x-tag", "two");  // the same header again, in another case
        req.insert("X-Empty", "");
    }));
    REQUIRE(joined.wait_for_count(1, 5s));
    auto const c = joined.items()[0];
    // Read from the packed headers, before anything unpacked them.
    CHECK(c->user_agent() == "probe/1");

    // The first calls unpack them; concurrent ones agree on one result.
    std::vector<http::fields const*> seen(4);
    {
        std::vector<std::jthread> readers;
        for (auto& s : seen) readers.emplace_back([&s, &c] { s = &c->headers(); });
    }
    for (auto const* s : seen) CHECK(s == seen[0]);
    auto const& h = c->headers();
    CHECK(&h == seen[0]);

    std::vector<std::string> tags;
    for (auto [it, end] = h.equal_range("X-Tag"); it != end; ++it) tags.emplace_back(it->value());
    CHECK(tags == std::vector<std::string>{"one", "two"});
    CHECK(h["X-Long"] == long_value);
    CHECK(h.count("X-Empty") == 1);
    CHECK(h["X-Empty"].empty());
    CHECK(h.count(http::field::host) == 1);
    CHECK(h[http::field::user_agent] == "probe/1");
    // In the order the request had them (Beast's insert put the second X-Tag after the first).
    std::vector<std::string> names;
    for (auto const& f : h) names.emplace_back(f.name_string());
    auto const first_tag = std::find(names.begin(), names.end(), "X-Tag");
    REQUIRE(std::distance(first_tag, names.end()) >= 4);
    CHECK(std::vector<std::string>(first_tag, first_tag + 4) ==
          std::vector<std::string>{"X-Tag", "x-tag", "X-Long", "X-Empty"});
    REQUIRE_FALSE(cli.close());
    srv.stop();
}

// ---------------------------------------------------------------------------------------------
// 3. Messages: the seed's welcome, echo keeping the opcode, empty messages
// ---------------------------------------------------------------------------------------------

TEST_CASE("welcome message then echo keeps the opcode including empty messages" * suite) {
    wscoro::server srv{loopback_config()};
    struct seen {
        bool text;
        std::string data;
    };
    recorder<seen> got;
    srv.set_callbacks(
        [](wscoro::connection_ptr const& c) { c->send_text("Welcome to WebSocket Server!"); },
        nullptr,
        [&](wscoro::connection_ptr const& c, wscoro::message const& m) {
            got.push({m.is_text(), std::string{m.data()}});
            c->send(m);  // echo the very message: same opcode, same payload
        },
        nullptr);
    REQUIRE_FALSE(srv.start());
    raw::ws_client cli;
    REQUIRE_FALSE(cli.connect(srv.address()));
    auto welcome = cli.read();
    REQUIRE_FALSE(welcome.ec);
    CHECK(welcome.text);
    CHECK(welcome.data == "Welcome to WebSocket Server!");

    std::string big(100'000, '\0');
    for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 7);
    struct sample {
        bool text;
        std::string data;
    };
    std::vector<sample> const samples{{true, "hello"},
                                      {false, std::string{"\x00\x01\xff\xfe", 4}},
                                      {true, ""},
                                      {false, ""},
                                      {true, "h\xc3\xa9llo \xe2\x82\xac"},  // UTF-8
                                      {false, big},
                                      {true, std::string(70'000, 'x')}};
    for (auto const& s : samples) {
        REQUIRE_FALSE(cli.send(s.text, s.data));
        auto f = cli.read();
        REQUIRE_FALSE(f.ec);
        CHECK(f.text == s.text);
        CHECK(f.data.size() == s.data.size());
        CHECK(f.data == s.data);
    }
    REQUIRE(got.wait_for_count(samples.size(), 5s));
    auto items = got.items();
    for (std::size_t i = 0; i < samples.size(); ++i) {
        CHECK(items[i].text == samples[i].text);
        CHECK(items[i].data == samples[i].data);
    }
    CHECK_FALSE(cli.close());
    srv.stop();
}

// ---------------------------------------------------------------------------------------------
// 4. Broadcast
// ---------------------------------------------------------------------------------------------

TEST_CASE("broadcast reaches every client in order including json" * suite) {
    wscoro::server srv{loopback_config()};
    recorder<wscoro::connection_ptr> joined;
    srv.set_callbacks([&](wscoro::connection_ptr const& c) { joined.push(c); }, nullptr, nullptr,
                      nullptr);
    REQUIRE_FALSE(srv.start());
    constexpr int n = 5;
    auto clients = connect_clients(srv, n);
    REQUIRE(joined.wait_for_count(n, 5s));

    constexpr int count = 200;
    for (int i = 0; i < count; ++i) CHECK(srv.broadcast_text("news " + std::to_string(i)) == n);
    CHECK(srv.broadcast_binary(std::string{"\x00\x01", 2}) == n);
    boost::json::value const jv = {{"type", "score"}, {"points", 42}, {"tags", {"a", "b"}}};
    CHECK(srv.broadcast_json(jv) == n);
    CHECK(srv.broadcast_json(server_test_types::point{3, -4}) == n);

    for (auto& cli : clients) {
        for (int i = 0; i < count; ++i) {
            auto f = cli->read();
            REQUIRE_FALSE(f.ec);
            CHECK(f.text);
            REQUIRE(f.data == "news " + std::to_string(i));
        }
        auto bin = cli->read();
        REQUIRE_FALSE(bin.ec);
        CHECK_FALSE(bin.text);
        CHECK(bin.data == std::string{"\x00\x01", 2});
        auto j1 = cli->read();
        REQUIRE_FALSE(j1.ec);
        CHECK(j1.text);  // JSON goes out as text
        CHECK(boost::json::parse(j1.data) == jv);
        auto j2 = cli->read();
        REQUIRE_FALSE(j2.ec);
        CHECK(j2.text);
        auto const p = boost::json::parse(j2.data);
        CHECK(p == boost::json::value{{"x", 3}, {"y", -4}});
    }
    for (auto& cli : clients) CHECK_FALSE(cli->close());
    srv.stop();
}

TEST_CASE("a message is built once and its copies share the payload" * suite) {
    auto const m = wscoro::message::text(std::string(16 * 1024, 'p'));
    auto const copy = m;  // what a broadcast queues to each receiver
    CHECK(copy.data().data() == m.data().data());
    CHECK(copy == m);
    auto const j = wscoro::message::json(server_test_types::point{1, 2});
    auto const jcopy = j;
    CHECK(jcopy.is_text());
    CHECK(jcopy.data().data() == j.data().data());
    CHECK(j.data() == R"({"x":1,"y":2})");
    auto const b = wscoro::message::binary(std::string{"\x01\x02", 2});
    auto const bcopy = b;
    CHECK(bcopy.is_binary());
    CHECK(bcopy.data().data() == b.data().data());
}

// ---------------------------------------------------------------------------------------------
// 5. Order of many messages, both ways
// ---------------------------------------------------------------------------------------------

TEST_CASE("ten thousand messages keep their order in both directions" * suite) {
    constexpr int count = 10'000;
    auto cfg = loopback_config();
    cfg.send_queue_limit = count + 16;  // the callback below queues them all at once
    wscoro::server srv{cfg};
    recorder<int> got;
    std::atomic<int> malformed{0};
    srv.set_callbacks(
        nullptr, nullptr,
        [&](wscoro::connection_ptr const& c, wscoro::message const& m) {
            if (m.data() == "go") {
                for (int i = 0; i < count; ++i)
                    if (c->send_text(std::to_string(i))) ++malformed;  // must be accepted
                return;
            }
            int const v = to_int(m.data());
            if (v < 0) ++malformed;
            got.push(v);
        },
        nullptr);
    REQUIRE_FALSE(srv.start());
    raw::ws_client cli;
    REQUIRE_FALSE(cli.connect(srv.address()));

    // client -> server
    for (int i = 0; i < count; ++i) REQUIRE_FALSE(cli.send_text(std::to_string(i)));
    REQUIRE(got.wait_for_count(count, 10s));
    auto const items = got.items();
    REQUIRE(items.size() == count);
    int out_of_order = 0;
    for (int i = 0; i < count; ++i) out_of_order += items[static_cast<std::size_t>(i)] != i;
    CHECK(out_of_order == 0);

    // server -> client
    REQUIRE_FALSE(cli.send_text("go"));
    int wrong = 0;
    for (int i = 0; i < count; ++i) {
        auto f = cli.read();
        REQUIRE_FALSE(f.ec);
        wrong += to_int(f.data) != i;
    }
    CHECK(wrong == 0);
    CHECK(malformed == 0);
    CHECK_FALSE(cli.close());
    srv.stop();
}

// ---------------------------------------------------------------------------------------------
// 6. Concurrent senders
// ---------------------------------------------------------------------------------------------

TEST_CASE("eight threads sending on one connection keep per thread order" * suite) {
    constexpr int senders = 8;
    constexpr int per_sender = 1000;
    auto cfg = loopback_config();
    cfg.send_queue_limit = senders * per_sender + 16;  // never overflows, even if the client lags
    wscoro::server srv{cfg};
    recorder<wscoro::connection_ptr> joined;
    srv.set_callbacks([&](wscoro::connection_ptr const& c) { joined.push(c); }, nullptr, nullptr,
                      nullptr);
    REQUIRE_FALSE(srv.start());
    raw::ws_client cli;
    REQUIRE_FALSE(cli.connect(srv.address()));
    REQUIRE(joined.wait_for_count(1, 5s));
    auto const conn = joined.items()[0];

    std::atomic<int> refused{0};
    {
        std::vector<std::jthread> threads;
        for (int t = 0; t < senders; ++t)
            threads.emplace_back([&conn, &refused, t] {
                for (int i = 0; i < per_sender; ++i)
                    if (conn->send_text(std::to_string(t) + ":" + std::to_string(i))) ++refused;
            });
        // Read while they send.
        per_sender_order order{senders};
        for (int k = 0; k < senders * per_sender; ++k) {
            auto f = cli.read();
            REQUIRE_FALSE(f.ec);
            if (!order.add(f.data)) break;
        }
        CHECK_MESSAGE(order.problem().empty(), order.problem());
        CHECK(order.complete(per_sender));
    }
    CHECK(refused == 0);
    CHECK_FALSE(cli.close());
    srv.stop();
}

TEST_CASE("eight threads broadcasting keep per thread order at every client" * suite) {
    constexpr int senders = 8;
    constexpr int per_sender = 500;
    constexpr int n = 3;
    auto cfg = loopback_config();
    cfg.send_queue_limit = senders * per_sender + 16;
    wscoro::server srv{cfg};
    recorder<wscoro::connection_ptr> joined;
    srv.set_callbacks([&](wscoro::connection_ptr const& c) { joined.push(c); }, nullptr, nullptr,
                      nullptr);
    REQUIRE_FALSE(srv.start());
    auto clients = connect_clients(srv, n);
    REQUIRE(joined.wait_for_count(n, 5s));

    std::atomic<int> short_counts{0};
    {
        std::vector<std::jthread> threads;
        for (int t = 0; t < senders; ++t)
            threads.emplace_back([&srv, &short_counts, t] {
                for (int i = 0; i < per_sender; ++i)
                    if (srv.broadcast_text(std::to_string(t) + ":" + std::to_string(i)) != n)
                        ++short_counts;
            });
    }
    CHECK(short_counts == 0);
    for (auto& cli : clients) {
        per_sender_order order{senders};
        for (int k = 0; k < senders * per_sender; ++k) {
            auto f = cli->read();
            REQUIRE_FALSE(f.ec);
            if (!order.add(f.data)) break;
        }
        CHECK_MESSAGE(order.problem().empty(), order.problem());
        CHECK(order.complete(per_sender));
    }
    for (auto& cli : clients) CHECK_FALSE(cli->close());
    srv.stop();
}

// ---------------------------------------------------------------------------------------------
// 7. Re-entrancy: callbacks use the server and the connection freely
// ---------------------------------------------------------------------------------------------

TEST_CASE("callbacks may send close broadcast and stop the server without deadlock" * suite) {
    int const threads_before = thread_count();
    recorder<std::string> log;  // what the callbacks observed
    raw::ws_client a, b;
    {
        wscoro::server srv{loopback_config()};
        auto name = [](wscoro::connection_ptr const& c) {
            return std::string{c->headers()["X-Name"]};
        };
        srv.set_callbacks(
            [&](wscoro::connection_ptr const& c) {
                auto const all = srv.clients();
                bool const found = srv.client(c->id()) == c;
                c->send_text("hello " + std::to_string(srv.client_count()) +
                             (found ? " found " : " missing ") + std::to_string(all.size()));
                srv.broadcast_text("joined " + name(c));
            },
            [&](wscoro::connection_ptr const& c, wscoro::error_code) {
                srv.broadcast_text("left " + name(c));  // to those still here
                log.push("left " + name(c) + " count " + std::to_string(srv.client_count()));
            },
            [&](wscoro::connection_ptr const& c, wscoro::message const& m) {
                if (m.data() == "close") {
                    c->close(wscoro::close_code::normal, "bye");
                    c->send_text("never sent");  // refused: the connection is closing
                } else if (m.data() == "all") {
                    srv.broadcast_text("all from " + name(c));
                } else if (m.data() == "stop") {
                    srv.stop();  // returns at once from a callback; the server stops by itself
                    log.push(srv.is_running() ? "still running" : "stopped");
                } else {
                    c->send_text("echo " + std::string{m.data()});
                }
            },
            nullptr);
        REQUIRE_FALSE(srv.start());
        auto named = [](std::string n) {
            return [n](websocket::request_type& req) { req.set("X-Name", n); };
        };
        REQUIRE_FALSE(a.connect(srv.address(), "/ws", named("A")));
        auto f = a.read();
        CHECK(f.data == "hello 1 found 1");
        f = a.read();
        CHECK(f.data == "joined A");
        REQUIRE_FALSE(b.connect(srv.address(), "/ws", named("B")));
        f = b.read();
        CHECK(f.data == "hello 2 found 2");
        f = b.read();
        CHECK(f.data == "joined B");
        f = a.read();
        CHECK(f.data == "joined B");

        REQUIRE_FALSE(a.send_text("all"));
        CHECK(a.read().data == "all from A");
        CHECK(b.read().data == "all from A");
        REQUIRE_FALSE(a.send_text("x"));
        CHECK(a.read().data == "echo x");

        REQUIRE_FALSE(b.send_text("close"));
        CHECK(b.read_until_closed() == websocket::error::closed);
        CHECK(b.reason().code == websocket::close_code::normal);
        CHECK(b.reason().reason == "bye");
        CHECK(a.read().data == "left B");
        REQUIRE(log.wait_for_count(1, 5s));
        CHECK(log.items()[0] == "left B count 1");

        auto const t0 = steady::now();
        REQUIRE_FALSE(a.send_text("stop"));
        REQUIRE(log.wait_for_count(2, 5s));  // srv.stop() returned inside the callback
        CHECK(log.items()[1] == "stopped");
        CHECK(a.read_until_closed() == websocket::error::closed);
        CHECK(a.reason().code == websocket::close_code::going_away);
        CHECK(since(t0) < 2s);
        CHECK_FALSE(srv.is_running());
    }
    // The server is gone: its threads were joined, so on_disconnect for A has run, and only once.
    REQUIRE(log.size() == 3);
    CHECK(log.items()[2] == "left A count 0");
    CHECK(thread_count() <= threads_before + foreign_threads);
}

TEST_CASE("a server stopped from a callback can be started again" * suite) {
    wscoro::server srv{loopback_config()};
    latch_flag stopped;
    srv.set_callbacks(
        nullptr, nullptr,
        [&](wscoro::connection_ptr const& c, wscoro::message const& m) {
            if (m.data() == "stop") {
                srv.stop();
                stopped.set();
            } else {
                c->send(m);
            }
        },
        nullptr);
    REQUIRE_FALSE(srv.start());
    {
        raw::ws_client cli;
        REQUIRE_FALSE(cli.connect(srv.address()));
        REQUIRE_FALSE(cli.send_text("stop"));
        REQUIRE(stopped.wait(5s));
        CHECK(cli.read_until_closed() == websocket::error::closed);
    }
    CHECK_FALSE(srv.is_running());
    REQUIRE_FALSE(srv.start());  // waits for the old threads, then starts afresh
    raw::ws_client cli;
    REQUIRE_FALSE(cli.connect(srv.address()));
    REQUIRE_FALSE(cli.send_text("again"));
    CHECK(cli.read().data == "again");
    CHECK_FALSE(cli.close());
    srv.stop();
}

TEST_CASE("a throwing callback closes its connection with 1011 and the server goes on" * suite) {
    wscoro::server srv{loopback_config()};
    recorder<error_event> errors;
    recorder<disconnect_event> left;
    srv.set_callbacks(
        nullptr,
        [&](wscoro::connection_ptr const& c, wscoro::error_code why) {
            left.push({c->id(), why});
        },
        [](wscoro::connection_ptr const& c, wscoro::message const& m) {
            if (m.data() == "throw") throw std::runtime_error("boom");
            c->send(m);
        },
        [&](wscoro::error_code ec, std::string_view what) {
            errors.push({ec, std::string{what}});
        });
    REQUIRE_FALSE(srv.start());
    raw::ws_client bad, good;
    REQUIRE_FALSE(bad.connect(srv.address()));
    REQUIRE_FALSE(good.connect(srv.address()));
    REQUIRE_FALSE(bad.send_text("throw"));
    CHECK(bad.read_until_closed() == websocket::error::closed);
    CHECK(bad.reason().code == websocket::close_code::internal_error);
    REQUIRE(errors.wait_for_count(1, 5s));
    CHECK(errors.items()[0].ec == wscoro::error::callback_failed);
    CHECK(errors.items()[0].what.find("boom") != std::string::npos);
    REQUIRE(left.wait_for_count(1, 5s));
    REQUIRE_FALSE(good.send_text("still here"));
    CHECK(good.read().data == "still here");
    CHECK_FALSE(good.close());
    srv.stop();
}

// ---------------------------------------------------------------------------------------------
// 8. Slow consumers
// ---------------------------------------------------------------------------------------------

// The policy under test (server_config::on_overflow, default overflow_policy::close_connection):
// messages to one connection wait in its own bounded queue (send_queue_limit). A peer that stops
// reading fills it; the next send to it fails with send_queue_full, its queue is dropped and it is
// closed with 1008 "send queue overflow" (bounded by write_wait, since a peer that does not read
// cannot receive that close frame either). on_error and on_disconnect report send_queue_full. The
// other receivers of the same broadcasts are never delayed by it.
TEST_CASE("a slow consumer is dropped with send_queue_full and others get every broadcast" *
          suite) {
    auto cfg = loopback_config();
    cfg.send_queue_limit = 16;
    cfg.write_wait = 500ms;  // how long the close frame to the slow peer may take to go out
    recording_echo_server rec{cfg};  // the peers send nothing: the echo never runs
    auto& [joined, left, errors, srv] = rec;

    raw::ws_client slow;
    slow.set_receive_buffer(4096);  // little room in the kernel: it fills up quickly
    REQUIRE_FALSE(slow.connect(srv.address()));
    REQUIRE(joined.wait_for_count(1, 5s));
    auto const slow_conn = joined.items()[0];
    constexpr int n = 3;
    std::vector<std::unique_ptr<raw::ws_client>> readers;
    for (int i = 0; i < n; ++i) {
        readers.push_back(std::make_unique<raw::ws_client>(2s));  // every read must be prompt
        REQUIRE_FALSE(readers.back()->connect(srv.address()));
    }
    REQUIRE(joined.wait_for_count(n + 1, 5s));

    // Broadcast 16 KiB messages in batches of 8 (half the queue), and let the readers read each
    // batch before the next: they never lag by more than a batch, so only the slow one overflows.
    constexpr int batch = 8;
    constexpr int max_batches = 1000;  // ~128 MiB per reader: far more than any socket buffers
    std::string const padding(16 * 1024, '.');
    int sent = 0;
    bool slow_refused = false;
    for (int b = 0; b < max_batches && !left.size(); ++b) {
        for (int k = 0; k < batch; ++k, ++sent) {
            auto const accepted = srv.broadcast_text(std::to_string(sent) + ":" + padding);
            CHECK(accepted >= n);
            slow_refused = slow_refused || accepted == n;
        }
        for (auto& r : readers)
            for (int k = sent - batch; k < sent; ++k) {
                auto f = r->read();
                REQUIRE_FALSE(f.ec);
                REQUIRE(to_int(std::string_view{f.data}.substr(0, f.data.find(':'))) == k);
            }
    }
    CHECK(slow_refused);
    REQUIRE(left.wait_for_count(1, 5s));
    auto const gone = left.items()[0];
    CHECK(gone.id == slow_conn->id());
    CHECK(gone.why == wscoro::error::send_queue_full);
    CHECK(slow_conn->disconnect_reason() == wscoro::error::send_queue_full);
    CHECK(slow_conn->send_text("x") == wscoro::error::not_connected);
    REQUIRE(errors.wait_for_count(1, 5s));
    CHECK(errors.items()[0].ec == wscoro::error::send_queue_full);
    CHECK(errors.items()[0].what.find(slow_conn->id()) != std::string::npos);
    CHECK(srv.client_count() == n);

    // The readers are unaffected: one more broadcast reaches all of them.
    CHECK(srv.broadcast_text("after") == n);
    for (auto& r : readers) {
        auto f = r->read();
        REQUIRE_FALSE(f.ec);
        CHECK(f.data == "after");
    }
    for (auto& r : readers) CHECK_FALSE(r->close());
    srv.stop();
    CHECK(left.size() == n + 1);
}

/// A server with one peer that reads nothing and has little kernel receive room, so that the
/// server's send queue to it fills up.
struct slow_consumer_setup {
    recording_echo_server rec;
    raw::ws_client slow;
    wscoro::connection_ptr conn;  // the server's side of `slow`

    explicit slow_consumer_setup(wscoro::server_config const& cfg) : rec{cfg} {
        slow.set_receive_buffer(4096);
        REQUIRE_FALSE(slow.connect(rec.srv.address()));
        REQUIRE(rec.joined.wait_for_count(1, 5s));
        conn = rec.joined.items()[0];
    }
    ~slow_consumer_setup() {
        slow.kill();
        rec.srv.stop();
    }

    /// Sends `payload` until the queue refuses it (bounded); calls `after_each()` after every
    /// accepted send. Returns the refusal and the number accepted before it.
    template <class AfterEach>
    std::pair<wscoro::error_code, int> fill_until_refused(std::string const& payload, AfterEach after_each) {
        wscoro::error_code ec;
        int accepted = 0;
        for (int i = 0; i < 100'000 && !ec; ++i) {
            ec = conn->send_text(payload);
            if (!ec) {
                ++accepted;
                after_each();
            }
        }
        return {ec, accepted};
    }
};

// With overflow_policy::reject_message the message is refused and the connection stays.
TEST_CASE("reject_message refuses sends to a full queue but keeps the connection" * suite) {
    auto cfg = loopback_config();
    cfg.send_queue_limit = 4;
    cfg.on_overflow = wscoro::overflow_policy::reject_message;
    slow_consumer_setup s{cfg};
    auto const [ec, accepted] = s.fill_until_refused(std::string(64 * 1024, 'r'), [] {});
    CHECK(ec == wscoro::error::send_queue_full);
    CHECK(accepted >= 4);
    CHECK(s.conn->is_open());  // refused, not closed
    CHECK(s.rec.srv.client_count() == 1);
}

TEST_CASE("send_queue_bytes bounds the queued bytes of a slow consumer" * suite) {
    auto cfg = loopback_config();
    cfg.send_queue_limit = 100'000;  // the count is not what stops it
    cfg.send_queue_bytes = 256 * 1024;
    cfg.on_overflow = wscoro::overflow_policy::reject_message;
    slow_consumer_setup s{cfg};
    std::size_t most_queued = 0;
    auto const [ec, accepted] = s.fill_until_refused(
        std::string(16 * 1024, 'b'), [&] { most_queued = std::max(most_queued, s.conn->queued_bytes()); });
    CHECK(ec == wscoro::error::send_queue_full);
    CHECK(accepted > 0);
    CHECK(most_queued <= cfg.send_queue_bytes);
    CHECK(s.conn->queued() < 100'000);
    CHECK(s.conn->is_open());  // reject_message: refused, not closed
}

// ---------------------------------------------------------------------------------------------
// 9. Keepalive against a peer that went silent
// ---------------------------------------------------------------------------------------------

TEST_CASE("a peer that never answers pings is dropped with pong_timeout" * suite) {
    auto cfg = loopback_config();
    cfg.ping_interval = 50ms;
    cfg.pong_wait = 200ms;
    wscoro::server srv{cfg};
    recorder<wscoro::connection_ptr> joined;
    recorder<disconnect_event> left;
    srv.set_callbacks([&](wscoro::connection_ptr const& c) { joined.push(c); },
                      [&](wscoro::connection_ptr const& c, wscoro::error_code why) {
                          left.push({c->id(), why});
                      },
                      nullptr, nullptr);
    REQUIRE_FALSE(srv.start());

    // A live Beast client: it reads all the time (on its own thread), so it answers every ping.
    raw::ws_client live{10s};
    REQUIRE_FALSE(live.connect(srv.address()));
    REQUIRE(joined.wait_for_count(1, 5s));
    auto const live_id = joined.items()[0]->id();
    wscoro::error_code live_end;
    std::jthread reader{[&] { live_end = live.read_until_closed(); }};

    // A raw TCP peer: the upgrade by hand, then silence (it never reads, so it never pongs).
    raw::tcp_peer dead;
    auto const t0 = steady::now();
    REQUIRE_FALSE(dead.connect(srv.address()));
    std::string head;
    REQUIRE_FALSE(dead.upgrade(srv.address(), "/ws", head));
    REQUIRE(head.rfind("HTTP/1.1 101", 0) == 0);
    CHECK(head.find("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") !=
          std::string::npos);  // RFC 6455's sample accept
    REQUIRE(joined.wait_for_count(2, 5s));
    auto const dead_id = joined.items()[1]->id();

    REQUIRE(left.wait_for_count(1, 3s));
    auto const elapsed = since(t0);
    auto const gone = left.items()[0];
    CHECK(gone.id == dead_id);
    bool const timed_out =
        gone.why == wscoro::error::pong_timeout || gone.why == wscoro::error::write_timeout;
    CHECK_MESSAGE(timed_out, gone.why.message());
    CHECK(elapsed >= 200ms);  // not before pong_wait
    CHECK(elapsed < 1500ms);  // and not much after it
    // The live client connected earlier and is still there: its pongs kept it alive.
    CHECK(srv.client(live_id) != nullptr);
    CHECK(left.size() == 1);
    srv.stop();
    reader.join();
    CHECK(live_end == websocket::error::closed);
    CHECK(live.reason().code == websocket::close_code::going_away);
}

// ---------------------------------------------------------------------------------------------
// 10. HTTP answers to requests the server refuses
// ---------------------------------------------------------------------------------------------

TEST_CASE("the wrong path answers 404 and plain GET on the endpoint answers 426" * suite) {
    wscoro::server srv{loopback_config()};
    REQUIRE_FALSE(srv.start());
    auto const host = srv.address();
    {
        raw::http_client h;
        REQUIRE_FALSE(h.connect(host));
        http::response<http::string_body> res;
        REQUIRE_FALSE(h.exchange(raw::http_client::upgrade_request(host, "/elsewhere"), res));
        CHECK(res.result() == http::status::not_found);
    }
    {
        raw::http_client h;
        REQUIRE_FALSE(h.connect(host));
        http::request<http::string_body> req{http::verb::get, "/ws", 11};
        req.set(http::field::host, host);
        http::response<http::string_body> res;
        REQUIRE_FALSE(h.exchange(req, res));
        CHECK(res.result() == http::status::upgrade_required);
        CHECK(res[http::field::upgrade] == "websocket");
        // Keep-alive: the same connection serves the next request (a 404 for another path).
        http::request<http::string_body> other{http::verb::get, "/other", 11};
        other.set(http::field::host, host);
        http::response<http::string_body> res2;
        REQUIRE_FALSE(h.exchange(other, res2));
        CHECK(res2.result() == http::status::not_found);
    }
    {
        raw::ws_client cli;  // the endpoint itself still upgrades
        CHECK_FALSE(cli.connect(host, "/ws?query=1"));
        CHECK_FALSE(cli.close());
    }
    srv.stop();
}

TEST_CASE("an http handler answers plain requests on the same port" * suite) {
    wscoro::server srv{loopback_config()};
    srv.set_http_handler(
        [](wscoro::http_request const& req) -> std::optional<wscoro::http_response> {
            if (req.target() != "/health") return std::nullopt;
            wscoro::http_response res{http::status::ok, req.version()};
            res.body() = "ok";
            return res;
        });
    REQUIRE_FALSE(srv.start());
    raw::http_client h;
    REQUIRE_FALSE(h.connect(srv.address()));
    http::request<http::string_body> req{http::verb::get, "/health", 11};
    req.set(http::field::host, srv.address());
    http::response<http::string_body> res;
    REQUIRE_FALSE(h.exchange(req, res));
    CHECK(res.result() == http::status::ok);
    CHECK(res.body() == "ok");
    req.target("/missing");
    http::response<http::string_body> res2;
    REQUIRE_FALSE(h.exchange(req, res2));
    CHECK(res2.result() == http::status::not_found);
    srv.stop();
}

TEST_CASE("max_connections reached answers 503 and the existing client is unaffected" * suite) {
    auto cfg = loopback_config();
    cfg.max_connections = 1;
    recording_echo_server rec{cfg};
    auto& [joined, left, errors, srv] = rec;
    auto const host = srv.address();
    raw::ws_client first;
    REQUIRE_FALSE(first.connect(host));
    REQUIRE(joined.wait_for_count(1, 5s));
    {
        raw::http_client h;
        REQUIRE_FALSE(h.connect(host));
        http::response<http::string_body> res;
        REQUIRE_FALSE(h.exchange(raw::http_client::upgrade_request(host, "/ws"), res));
        CHECK(res.result() == http::status::service_unavailable);
    }
    {
        raw::ws_client second;  // a real client is refused the same way
        CHECK(second.connect(host));
    }
    REQUIRE(errors.wait_for_count(1, 5s));
    CHECK(errors.items()[0].ec == wscoro::error::upgrade_rejected);
    CHECK(errors.items()[0].what.find("max_connections") != std::string::npos);
    CHECK(srv.client_count() == 1);
    REQUIRE_FALSE(first.send_text("still echoing"));
    CHECK(first.read().data == "still echoing");

    // The slot is released when the first client leaves.
    REQUIRE_FALSE(first.close());
    REQUIRE(left.wait_for_count(1, 5s));
    raw::ws_client third;
    REQUIRE_FALSE(third.connect(host));
    REQUIRE_FALSE(third.send_text("my turn"));
    CHECK(third.read().data == "my turn");
    CHECK_FALSE(third.close());
    srv.stop();
}

TEST_CASE("max_connections_per_ip refuses one address with 503 and not the others" * suite) {
    auto cfg = loopback_config();
    cfg.max_connections_per_ip = 2;
    recording_echo_server rec{cfg};
    auto& [joined, left, errors, srv] = rec;
    auto const host = srv.address();
    raw::ws_client a1, a2, a3;
    REQUIRE_FALSE(a1.connect(host));
    REQUIRE_FALSE(a2.connect(host));
    REQUIRE(joined.wait_for_count(2, 5s));
    CHECK(a3.connect(host));  // a third from 127.0.0.1: refused
    {
        raw::http_client h;  // and the answer is 503
        REQUIRE_FALSE(h.connect(host));
        http::response<http::string_body> res;
        REQUIRE_FALSE(h.exchange(raw::http_client::upgrade_request(host, "/ws"), res));
        CHECK(res.result() == http::status::service_unavailable);
    }
    REQUIRE(errors.wait_for_count(1, 5s));
    CHECK(errors.items()[0].ec == wscoro::error::upgrade_rejected);
    CHECK(errors.items()[0].what.find("max_connections_per_ip") != std::string::npos);
    CHECK(srv.get_metrics().refused_per_ip.load() == 2);

    // Another address of the loopback network is another peer: it has slots of its own.
    raw::ws_client b;
    b.set_source_address("127.0.0.2");
    REQUIRE_FALSE(b.connect(host));
    REQUIRE(joined.wait_for_count(3, 5s));
    CHECK(joined.items()[2]->remote_address().rfind("127.0.0.2:", 0) == 0);
    REQUIRE_FALSE(b.send_text("from elsewhere"));
    CHECK(b.read().data == "from elsewhere");

    // A slot of 127.0.0.1 comes back when one of its clients leaves.
    REQUIRE_FALSE(a1.close());
    REQUIRE(left.wait_for_count(1, 5s));
    raw::ws_client a4;
    REQUIRE_FALSE(a4.connect(host));
    REQUIRE_FALSE(a4.send_text("my turn"));
    CHECK(a4.read().data == "my turn");
    CHECK_FALSE(a4.close());
    CHECK_FALSE(a2.close());
    CHECK_FALSE(b.close());
    srv.stop();
}

TEST_CASE("check_origin refusing answers 403 and an allowed origin connects" * suite) {
    auto cfg = loopback_config();
    cfg.check_origin = [](wscoro::http_request const& req) {
        return req[http::field::origin] == "http://good.example";
    };
    wscoro::server srv{cfg};
    recorder<error_event> errors;
    srv.set_callbacks(
        nullptr, nullptr,
        [](wscoro::connection_ptr const& c, wscoro::message const& m) { c->send(m); },
        [&](wscoro::error_code ec, std::string_view what) {
            errors.push({ec, std::string{what}});
        });
    REQUIRE_FALSE(srv.start());
    auto const host = srv.address();
    {
        raw::http_client h;
        REQUIRE_FALSE(h.connect(host));
        auto req = raw::http_client::upgrade_request(host, "/ws");
        req.set(http::field::origin, "http://evil.example");
        http::response<http::string_body> res;
        REQUIRE_FALSE(h.exchange(req, res));
        CHECK(res.result() == http::status::forbidden);
    }
    REQUIRE(errors.wait_for_count(1, 5s));
    CHECK(errors.items()[0].ec == wscoro::error::upgrade_rejected);
    CHECK(errors.items()[0].what.find("evil.example") != std::string::npos);
    {
        raw::ws_client cli;
        REQUIRE_FALSE(cli.connect(host, "/ws", [](websocket::request_type& req) {
            req.set(http::field::origin, "http://good.example");
        }));
        REQUIRE_FALSE(cli.send_text("welcome"));
        CHECK(cli.read().data == "welcome");
        CHECK_FALSE(cli.close());
    }
    srv.stop();
}

TEST_CASE("a bad upgrade request is answered 426 or 400" * suite) {
    wscoro::server srv{loopback_config()};
    recorder<wscoro::connection_ptr> joined;
    srv.set_callbacks([&](wscoro::connection_ptr const& c) { joined.push(c); }, nullptr, nullptr,
                      nullptr);
    REQUIRE_FALSE(srv.start());
    auto const host = srv.address();
    auto status_of = [&host](http::request<http::string_body> req) {
        raw::http_client h;
        http::response<http::string_body> res;
        if (h.connect(host) || h.exchange(std::move(req), res)) return 0;
        return static_cast<int>(res.result_int());
    };
    auto wrong_version = raw::http_client::upgrade_request(host, "/ws");
    wrong_version.set(http::field::sec_websocket_version, "12");
    int const s1 = status_of(wrong_version);
    CHECK((s1 == 426 || s1 == 400));
    auto no_key = raw::http_client::upgrade_request(host, "/ws");
    no_key.erase(http::field::sec_websocket_key);
    int const s2 = status_of(no_key);
    CHECK((s2 == 426 || s2 == 400));
    CHECK(srv.client_count() == 0);
    CHECK(joined.size() == 0);
    // Garbage instead of HTTP: 400.
    {
        raw::tcp_peer p;
        REQUIRE_FALSE(p.connect(host));
        REQUIRE_FALSE(p.write("NOT HTTP AT ALL\r\n\r\n"));
        std::string head;
        REQUIRE_FALSE(p.read_until("\r\n", head));
        CHECK(head.rfind("HTTP/1.1 400", 0) == 0);
    }
    srv.stop();
}

// ---------------------------------------------------------------------------------------------
// 11. Stopping with clients connected
// ---------------------------------------------------------------------------------------------

TEST_CASE("stop sends 1001 to every client and returns promptly" * suite) {
    auto cfg = loopback_config();
    cfg.shutdown_timeout = 1s;
    wscoro::server srv{cfg};
    recorder<wscoro::connection_ptr> joined;
    recorder<disconnect_event> left;
    srv.set_callbacks([&](wscoro::connection_ptr const& c) { joined.push(c); },
                      [&](wscoro::connection_ptr const& c, wscoro::error_code why) {
                          left.push({c->id(), why});
                      },
                      nullptr, nullptr);
    REQUIRE_FALSE(srv.start());
    constexpr int n = 4;
    auto clients = connect_clients(srv, n);
    REQUIRE(joined.wait_for_count(n, 5s));
    std::vector<wscoro::error_code> ends(n);
    std::chrono::milliseconds stop_time{};
    {
        std::vector<std::jthread> readers;
        for (int i = 0; i < n; ++i)
            readers.emplace_back([&, i] {
                ends[static_cast<std::size_t>(i)] =
                    clients[static_cast<std::size_t>(i)]->read_until_closed();
            });
        auto const t0 = steady::now();
        srv.stop();
        stop_time = since(t0);
    }
    CHECK(stop_time < 1s);  // everyone answered the close: no need to wait for shutdown_timeout
    for (int i = 0; i < n; ++i) {
        CHECK(ends[static_cast<std::size_t>(i)] == websocket::error::closed);
        CHECK(clients[static_cast<std::size_t>(i)]->reason().code ==
              websocket::close_code::going_away);
    }
    REQUIRE(left.size() == n);  // on_disconnect ran for each before stop() returned
    for (auto const& e : left.items()) CHECK_FALSE(e.why);  // a completed closing handshake
    CHECK_FALSE(srv.is_running());
}

TEST_CASE("stop aborts clients that ignore the close after shutdown_timeout" * suite) {
    auto cfg = loopback_config();
    cfg.shutdown_timeout = 300ms;
    wscoro::server srv{cfg};
    recorder<wscoro::connection_ptr> joined;
    recorder<disconnect_event> left;
    srv.set_callbacks([&](wscoro::connection_ptr const& c) { joined.push(c); },
                      [&](wscoro::connection_ptr const& c, wscoro::error_code why) {
                          left.push({c->id(), why});
                      },
                      nullptr, nullptr);
    REQUIRE_FALSE(srv.start());
    raw::tcp_peer deaf;  // upgrades, then never reads: it never answers the close
    REQUIRE_FALSE(deaf.connect(srv.address()));
    std::string head;
    REQUIRE_FALSE(deaf.upgrade(srv.address(), "/ws", head));
    REQUIRE(head.rfind("HTTP/1.1 101", 0) == 0);
    raw::tcp_peer half;  // connects but never finishes its HTTP request
    REQUIRE_FALSE(half.connect(srv.address()));
    REQUIRE_FALSE(half.write("GET /ws HTTP/1.1\r\n"));
    REQUIRE(joined.wait_for_count(1, 5s));
    auto const t0 = steady::now();
    srv.stop();
    auto const elapsed = since(t0);
    CHECK(elapsed >= 250ms);  // it did wait for the deaf client...
    CHECK(elapsed < 1500ms);  // ...but only about shutdown_timeout
    REQUIRE(left.size() == 1);
    CHECK(left.items()[0].why == wscoro::error::server_stopping);
}

// ---------------------------------------------------------------------------------------------
// 12. Bad configuration and a busy address
// ---------------------------------------------------------------------------------------------

TEST_CASE("start refuses an invalid config and names the field" * suite) {
    struct bad_case {
        char const* field;
        void (*spoil)(wscoro::server_config&);
    };
    bad_case const cases[] = {
        {"path", [](wscoro::server_config& c) { c.path = "ws"; }},
        {"ping_interval", [](wscoro::server_config& c) { c.ping_interval = 0ms; }},
        {"threads", [](wscoro::server_config& c) { c.threads = 0; }},
        {"address", [](wscoro::server_config& c) { c.address = "nonsense"; }},
        {"address", [](wscoro::server_config& c) { c.address = "127.0.0.1:99999"; }},
        {"address", [](wscoro::server_config& c) { c.address = ""; }},
        {"send_queue_limit", [](wscoro::server_config& c) { c.send_queue_limit = 0; }},
    };
    for (auto const& bad : cases) {
        CAPTURE(bad.field);
        auto cfg = loopback_config();
        bad.spoil(cfg);
        wscoro::server srv{cfg};
        recorder<error_event> errors;
        srv.set_callbacks(nullptr, nullptr, nullptr,
                          [&](wscoro::error_code ec, std::string_view what) {
                              errors.push({ec, std::string{what}});
                          });
        wscoro::diagnostics diag;
        CHECK(srv.start(diag) == wscoro::error::invalid_config);
        CAPTURE(diag.message);
        CHECK(diag.message.find(bad.field) != std::string::npos);
        CHECK_FALSE(srv.is_running());
        CHECK(srv.address().empty());
        CHECK(srv.start() ==
              wscoro::error::invalid_config);  // the overload without diagnostics too
    }
}

TEST_CASE("start on an address in use fails and names the address" * suite) {
    wscoro::server first{loopback_config()};
    REQUIRE_FALSE(first.start());
    auto cfg = loopback_config();
    cfg.address = first.address();
    wscoro::server second{cfg};
    recorder<error_event> errors;
    second.set_callbacks(nullptr, nullptr, nullptr,
                         [&](wscoro::error_code ec, std::string_view what) {
                             errors.push({ec, std::string{what}});
                         });
    wscoro::diagnostics diag;
    auto const ec = second.start(diag);
    CHECK(ec == boost::asio::error::address_in_use);
    CAPTURE(diag.message);
    CHECK(diag.message.find(first.address()) != std::string::npos);
    CHECK_FALSE(second.is_running());
    REQUIRE(errors.size() == 1);  // start() also reports it to on_error
    CHECK(errors.items()[0].ec == ec);
    // The first server is untouched.
    raw::ws_client cli;
    CHECK_FALSE(cli.connect(first.address()));
    CHECK_FALSE(cli.close());
    first.stop();
}

// ---------------------------------------------------------------------------------------------
// 13. Protocol limits: oversized messages and invalid UTF-8
// ---------------------------------------------------------------------------------------------

TEST_CASE("an oversized message closes with 1009 and bad UTF-8 with 1007" * suite) {
    auto cfg = loopback_config();
    cfg.max_message_size = 1024;
    wscoro::server srv{cfg};
    recorder<disconnect_event> left;
    srv.set_callbacks(
        nullptr,
        [&](wscoro::connection_ptr const& c, wscoro::error_code why) {
            left.push({c->id(), why});
        },
        [](wscoro::connection_ptr const& c, wscoro::message const& m) { c->send(m); }, nullptr);
    REQUIRE_FALSE(srv.start());
    raw::ws_client good;
    REQUIRE_FALSE(good.connect(srv.address()));
    {
        raw::ws_client big;
        REQUIRE_FALSE(big.connect(srv.address()));
        REQUIRE_FALSE(big.send_binary(std::string(1024, 'a')));  // exactly the limit: fine
        CHECK(big.read().data.size() == 1024);
        REQUIRE_FALSE(big.send_binary(std::string(1025, 'b')));
        CHECK(big.read_until_closed() == websocket::error::closed);
        CHECK(big.reason().code == websocket::close_code::too_big);
        REQUIRE(left.wait_for_count(1, 5s));
        CHECK(left.items()[0].why);
    }
    {
        raw::ws_client bad;
        REQUIRE_FALSE(bad.connect(srv.address()));
        REQUIRE_FALSE(bad.send_text(std::string{"ok \xc3\xa9"}));
        CHECK(bad.read().data == "ok \xc3\xa9");
        REQUIRE_FALSE(
            bad.send_text(std::string{"bad \xff\xfe\xc3"}));  // Beast does not check what it sends
        CHECK(bad.read_until_closed() == websocket::error::closed);
        CHECK(bad.reason().code == websocket::close_code::bad_payload);
        REQUIRE(left.wait_for_count(2, 5s));
        CHECK(left.items()[1].why);
    }
    // The server is still up and serves the others.
    REQUIRE_FALSE(good.send_text("still fine"));
    CHECK(good.read().data == "still fine");
    CHECK(srv.client_count() == 1);
    CHECK_FALSE(good.close());
    srv.stop();
}

// ---------------------------------------------------------------------------------------------
// 14. Several I/O threads
// ---------------------------------------------------------------------------------------------

TEST_CASE("a four thread server echoes to many concurrent clients" * suite) {
    auto cfg = loopback_config();
    cfg.threads = 4;
    wscoro::server srv{cfg};
    // Callbacks of one connection must never overlap, even with four threads.
    std::mutex busy_mutex;
    std::set<std::string> busy;
    std::atomic<int> overlaps{0};
    std::set<std::thread::id> callback_threads;
    std::map<std::string, std::set<std::thread::id>> threads_of;  // per connection
    srv.set_callbacks(
        nullptr, nullptr,
        [&](wscoro::connection_ptr const& c, wscoro::message const& m) {
            {
                std::lock_guard lock{busy_mutex};
                if (!busy.insert(c->id()).second) ++overlaps;
                callback_threads.insert(std::this_thread::get_id());
                threads_of[c->id()].insert(std::this_thread::get_id());
            }
            c->send(m);
            std::lock_guard lock{busy_mutex};
            busy.erase(c->id());
        },
        nullptr);
    REQUIRE_FALSE(srv.start());
    constexpr int n = 16;
    constexpr int rounds = 200;
    std::vector<int> correct(n, 0);
    std::vector<std::string> problems(n);
    {
        std::vector<std::jthread> threads;
        for (int i = 0; i < n; ++i)
            threads.emplace_back([&, i] {
                auto const ix = static_cast<std::size_t>(i);
                raw::ws_client cli;
                if (auto ec = cli.connect(srv.address())) {
                    problems[ix] = "connect: " + ec.message();
                    return;
                }
                for (int r = 0; r < rounds; ++r) {
                    auto const text = std::to_string(i) + "/" + std::to_string(r) +
                                      std::string(static_cast<std::size_t>(r), '+');
                    bool const as_text = r % 2 == 0;
                    if (auto ec = cli.send(as_text, text)) {
                        problems[ix] = "send: " + ec.message();
                        return;
                    }
                    auto f = cli.read();
                    if (f.ec || f.data != text || f.text != as_text) {
                        problems[ix] = "round " + std::to_string(r) + ": got \"" + f.data + "\" " +
                                       f.ec.message();
                        return;
                    }
                    ++correct[ix];
                }
                if (auto ec = cli.close()) problems[ix] = "close: " + ec.message();
            });
    }
    for (int i = 0; i < n; ++i) {
        CAPTURE(i);
        CHECK_MESSAGE(problems[static_cast<std::size_t>(i)].empty(),
                      problems[static_cast<std::size_t>(i)]);
        CHECK(correct[static_cast<std::size_t>(i)] == rounds);
    }
    CHECK(overlaps == 0);
    srv.stop();
    std::lock_guard lock{busy_mutex};
    // The listener hands the connections to the threads in turn, and each stays on its thread.
    CHECK(callback_threads.size() == 4);
    CHECK(threads_of.size() == n);
    for (auto const& [id, on] : threads_of) {
        CAPTURE(id);
        CHECK(on.size() == 1);
    }
}

TEST_CASE("with two threads, a broadcast from a callback reaches the connections of both" * suite) {
    auto cfg = loopback_config();
    cfg.threads = 2;
    wscoro::server srv{cfg};
    recorder<wscoro::connection_ptr> joined;
    std::mutex threads_mutex;
    std::set<std::thread::id> connect_threads;
    srv.set_callbacks(
        [&](wscoro::connection_ptr const& c) {
            {
                std::lock_guard lock{threads_mutex};
                connect_threads.insert(std::this_thread::get_id());
            }
            joined.push(c);
        },
        nullptr,
        [&](wscoro::connection_ptr const&, wscoro::message const& m) { srv.broadcast(m); }, nullptr);
    REQUIRE_FALSE(srv.start());
    constexpr int n = 4;
    auto clients = connect_clients(srv, n);
    REQUIRE(joined.wait_for_count(n, 5s));
    {
        std::lock_guard lock{threads_mutex};
        CHECK(connect_threads.size() == 2);
    }
    // Each client speaks once, in turn; everyone (the speaker included) hears each, in order.
    for (int i = 0; i < n; ++i) {
        auto const text = "from " + std::to_string(i);
        REQUIRE_FALSE(clients[static_cast<std::size_t>(i)]->send_text(text));
        for (auto& cli : clients) {
            auto f = cli->read();
            REQUIRE_FALSE(f.ec);
            CHECK(f.data == text);
        }
    }
    for (auto& cli : clients) CHECK_FALSE(cli->close());
    srv.stop();
}
