// Fault injection (issue 5): a server process killed with SIGKILL, a peer that vanishes without a
// FIN (network namespace), slow loris handshakes, a connection flood beyond max_connections, a
// reader that stops while another thread broadcasts, stop() under load, and facades destroyed
// from their own callbacks or from other threads. Also the reconnect backoff those faults rely on.
// Every wait is on a condition with a bound; the few conditions nothing signals (open descriptors,
// threads) are polled with a bound.
#include <wscoro/client.hpp>  // first: proves the header is self-contained

#include "support/child_process.hpp"
#include "support/process_info.hpp"
#include "support/raw_peer.hpp"
#include "support/recorder.hpp"

#include <wscoro/server.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <doctest/doctest.h>

#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using wscoro::connection_ptr;
using wscoro::error_code;
using wscoro::message;
using wscoro::test::latch_flag;
using wscoro::test::recorder;
namespace raw = wscoro::test::raw;
namespace asio = wscoro::asio;
namespace websocket = boost::beast::websocket;
using tcp = asio::ip::tcp;
using steady = std::chrono::steady_clock;
using ms = std::chrono::milliseconds;

namespace {

auto const suite = doctest::test_suite("fault");
// Takes the loopback interface down: only ever run inside a private network namespace, through
// test/fault/in_netns.sh; the plain test discovery leaves this suite out.
auto const netns_suite = doctest::test_suite("netns");

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

ms since(steady::time_point t0) { return std::chrono::duration_cast<ms>(steady::now() - t0); }

/// The number a message starts with ("42" or "42....."), or -1.
int leading_int(std::string_view s) {
    int v = -1;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    return ec == std::errc{} && end != s.data() ? v : -1;
}

wscoro::server_config loopback_config() {
    wscoro::server_config cfg;
    cfg.address = "127.0.0.1:0";
    cfg.path = "/ws";
    cfg.shutdown_timeout = 1s;
    return cfg;
}

std::string url_of(wscoro::server const& srv) { return "ws://" + srv.address() + "/ws"; }

std::uint16_t port_of(std::string const& address) {
    return static_cast<std::uint16_t>(std::stoi(address.substr(address.rfind(':') + 1)));
}

/// Polls a condition that nothing signals (descriptors, threads) until it holds or `limit` passes.
template <class Pred> bool poll_until(Pred pred, ms limit) {
    auto const deadline = steady::now() + limit;
    while (!pred()) {
        if (steady::now() >= deadline) return false;
        std::this_thread::sleep_for(5ms);
    }
    return true;
}

/// Open sockets of this process (both ends of every loopback connection are ours): one that a
/// server failed to release would show here. Only sockets: an io_context holds descriptors too.
int open_sockets() {
    int n = 0;
    std::error_code ec;
    for (auto const& e : std::filesystem::directory_iterator{"/proc/self/fd", ec}) {
        auto const target = std::filesystem::read_symlink(e.path(), ec);
        n += !ec && target.string().rfind("socket:", 0) == 0;
    }
    return n;
}

using wscoro::test::foreign_threads;
using wscoro::test::thread_count;

struct disconnect_event {
    std::string id;
    error_code why;
};

/// A started wscoro::server that echoes and records. Recorders first: they outlive the server.
struct echo_server {
    recorder<connection_ptr> joined;
    recorder<disconnect_event> left;
    recorder<std::pair<error_code, std::string>> errors;
    wscoro::server srv;

    explicit echo_server(wscoro::server_config const& cfg) : srv{cfg} {
        srv.set_callbacks([this](connection_ptr const& c) { joined.push(c); },
                          [this](connection_ptr const& c, error_code why) {
                              left.push({c->id(), why});
                          },
                          [](connection_ptr const& c, message const& m) { c->send(m); },
                          [this](error_code ec, std::string_view what) {
                              errors.push({ec, std::string{what}});
                          });
        wscoro::diagnostics diag;
        auto ec = srv.start(diag);
        REQUIRE_MESSAGE(!ec, diag.message);
    }
};

/// A wscoro::client whose messages are numbers: records each one with the connection it arrived
/// on (1 = first connection, 2 = after the first reconnect...), and can send numbers in order from
/// a thread of its own with a bounded window of unanswered ones.
struct numbered_client {
    recorder<steady::time_point> connects;
    recorder<std::pair<error_code, steady::time_point>> disconnects;
    recorder<steady::time_point> failures;  // on_error: failed reconnect attempts
    recorder<std::pair<int, int>> got;      // (connection number, message number)
    std::atomic<int> epoch{0};
    std::atomic<int> highest{-1};
    std::atomic<int> next{0};    // the next number to send
    std::atomic<int> others{0};  // messages that do not start with a number
    wscoro::client cli;
    std::jthread sender;  // last: stopped before the rest goes

    explicit numbered_client(wscoro::client_config cfg) : cli{std::move(cfg)} {
        cli.set_callbacks(
            [this] {
                ++epoch;
                connects.push(steady::now());
            },
            [this](error_code why) {
                disconnects.push({why, steady::now()});
            },
            [this](message const& m) {
                int const n = leading_int(m.data());
                if (n < 0) {  // not one of ours (a broadcast)
                    ++others;
                    return;
                }
                highest = std::max(highest.load(), n);
                got.push({epoch.load(), n});
            },
            [this](error_code, std::string_view) { failures.push(steady::now()); });
    }
    ~numbered_client() { stop_sending(); }

    void start_sending(int window = 16) {
        sender = std::jthread{[this, window](std::stop_token stop) {
            for (int rounds = 0; rounds < 1'000'000 && !stop.stop_requested(); ++rounds) {
                int const n = next.load();
                if (!cli.send_text(std::to_string(n))) {
                    next = n + 1;
                    // At most `window` unanswered: wait for the echoes to catch up.
                    got.wait(
                        [&](auto const&) {
                            return n - highest.load() < window || stop.stop_requested();
                        },
                        100ms);
                } else {
                    // Not connected (or the queue is full): wait for the next connection.
                    auto const seen = connects.size();
                    connects.wait(
                        [&](auto const& v) { return v.size() > seen || stop.stop_requested(); },
                        20ms);
                }
            }
        }};
    }
    void stop_sending() {
        if (sender.joinable()) {
            sender.request_stop();
            sender.join();
        }
    }
};

/// How many of `got` arrived on connection number `connection`.
std::size_t received_on(std::vector<std::pair<int, int>> const& got, int connection) {
    return static_cast<std::size_t>(std::count_if(
        got.begin(), got.end(), [connection](auto const& p) { return p.first == connection; }));
}

/// Checks that on every connection the numbers came back consecutively (an echo loses nothing and
/// reorders nothing while the connection lasts), and that each connection's numbers follow the
/// previous connection's (the ones in flight when a connection died may be lost).
void check_in_order(std::vector<std::pair<int, int>> const& got) {
    int last = -1;
    int last_epoch = 0;
    for (auto const& [epoch, n] : got) {
        CAPTURE(epoch);
        CAPTURE(n);
        REQUIRE(epoch >= last_epoch);
        if (epoch == last_epoch)
            REQUIRE(n == last + 1);
        else
            REQUIRE(n > last);
        last = n;
        last_epoch = epoch;
    }
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// 1. Reconnect backoff (client_config::reconnect_delay .. reconnect_delay_max)
// ---------------------------------------------------------------------------------------------

// The pause before attempt k (k failed attempts in a row before it) starts from
// base = min(reconnect_delay * 2^k, reconnect_delay_max); up to base/4 of jitter is added, or near
// reconnect_delay_max taken off, so it lies in [min(base, max - base/4), that + base/4] and never
// beyond reconnect_delay_max. Timers never fire early, so the lower bounds are exact; the upper
// ones allow for scheduling.
TEST_CASE(
    "reconnect pauses double from reconnect_delay up to reconnect_delay_max and reset on success" *
    suite) {
    constexpr ms delay = 50ms, most = 600ms, slack = 300ms;
    auto first = std::make_unique<echo_server>(loopback_config());
    auto const port = port_of(first->srv.address());
    wscoro::client_config cfg;
    cfg.url = url_of(first->srv);
    cfg.reconnect_delay = delay;
    cfg.reconnect_delay_max = most;
    numbered_client c{cfg};
    REQUIRE_FALSE(c.cli.connect());

    first.reset();  // close 1001, then every attempt is refused: nothing listens on the port
    REQUIRE(c.disconnects.wait_for_count(1, 5s));
    constexpr int attempts = 6;  // bases 50, 100, 200, 400, 600, 600 ms
    REQUIRE(c.failures.wait_for_count(attempts, 10s));
    auto const fails = c.failures.items();
    auto previous = c.disconnects.items().at(0).second;
    for (int k = 0; k < attempts; ++k) {
        auto const base = std::min(ms{delay.count() << k}, most);
        auto const low = std::min(base, most - base / 4);
        auto const gap =
            std::chrono::duration_cast<ms>(fails[static_cast<std::size_t>(k)] - previous);
        CAPTURE(k);
        CAPTURE(gap.count());
        CHECK(gap >= low);                     // doubled (timers never fire early)
        CHECK(gap <= low + base / 4 + slack);  // jitter within a quarter
        CHECK(gap <= most + slack);            // and within the bound
        previous = fails[static_cast<std::size_t>(k)];
    }

    // The server is back on the same port: the client returns within one (bounded) pause.
    auto cfg2 = loopback_config();
    cfg2.address = "127.0.0.1:" + std::to_string(port);
    auto second = std::make_unique<echo_server>(cfg2);
    auto const up = steady::now();
    REQUIRE(c.connects.wait_for_count(2, most + 5s));
    CHECK(c.connects.items().at(1) - up <= most + slack);

    // A successful connection reset the backoff: the first pause is reconnect_delay again.
    auto const failed_before = c.failures.size();
    second.reset();
    REQUIRE(c.disconnects.wait_for_count(2, 5s));
    REQUIRE(c.failures.wait_for_count(failed_before + 1, 5s));
    auto const lost = c.disconnects.items().at(1).second;
    auto const pause = c.failures.items().at(failed_before) - lost;
    CHECK(pause >= delay);
    CHECK(pause <= delay + delay / 4 + slack);  // not the 450+ ms it had reached
    c.cli.close();
    CHECK(c.disconnects.size() == 2);
}

// ---------------------------------------------------------------------------------------------
// 2. The server process is killed (SIGKILL) while clients send
// ---------------------------------------------------------------------------------------------

#if defined(WSCORO_CLI_PATH)
namespace {
/// `wscoro serve --mode echo` on 127.0.0.1, ready once it printed its listening line. The child is
/// killed and reaped by the destructor (also when a REQUIRE fails).
struct serve_process {
    wscoro::test::child_process proc;
    std::string url;

    explicit serve_process(std::string const& port)
        : proc{
              {WSCORO_CLI_PATH, "serve", "--mode", "echo", "--host", "127.0.0.1", "--port", port}} {
        auto line = proc.read_line(20s);  // a sanitizer build starts slowly
        REQUIRE_MESSAGE(line.has_value(), "wscoro serve printed no listening line");
        std::string const prefix = "listening on ";
        REQUIRE_MESSAGE(line->rfind(prefix, 0) == 0, *line);
        url = line->substr(prefix.size());
    }
    std::string port() const {
        auto const host_port = url.substr(5, url.find('/', 5) - 5);  // after "ws://"
        return host_port.substr(host_port.rfind(':') + 1);
    }
};
}  // namespace

TEST_CASE(
    "clients of a server killed with SIGKILL report one disconnect then reconnect and resume" *
    suite) {
    constexpr ms delay = 50ms, most = 400ms, slack = 2s;  // slack: a sanitizer build under load
    constexpr int n_clients = 4;
    constexpr std::size_t per_connection = 50;
    auto server = std::make_unique<serve_process>("0");
    auto const port = server->port();

    std::vector<std::unique_ptr<numbered_client>> clients;
    for (int i = 0; i < n_clients; ++i) {
        wscoro::client_config cfg;
        cfg.url = server->url;
        cfg.reconnect_delay = delay;
        cfg.reconnect_delay_max = most;
        clients.push_back(std::make_unique<numbered_client>(cfg));
        wscoro::diagnostics diag;
        auto ec = clients.back()->cli.connect(diag);
        REQUIRE_MESSAGE(!ec, diag.message);
        clients.back()->start_sending();
    }
    for (auto& c : clients)
        REQUIRE(c->got.wait([&](auto const& v) { return received_on(v, 1) >= per_connection; }));

    server->proc.kill(SIGKILL);
    auto const status = server->proc.wait();
    REQUIRE(status.has_value());
    CHECK(WIFSIGNALED(*status));
    for (auto& c : clients) {
        REQUIRE(c->disconnects.wait_for_count(1, 5s));
        CHECK_MESSAGE(c->disconnects.items().at(0).first, "a killed server cannot close cleanly");
        REQUIRE(c->failures.wait_for_count(2, 5s));  // it keeps trying while the server is down
    }

    server = std::make_unique<serve_process>(port);  // same port: SO_REUSEADDR
    auto const up = steady::now();
    for (auto& c : clients) {
        REQUIRE(c->connects.wait_for_count(2, most + slack));
        CHECK(c->connects.items().at(1) - up <= most + slack);
        REQUIRE(c->got.wait([&](auto const& v) { return received_on(v, 2) >= per_connection; }));
    }
    for (auto& c : clients) c->stop_sending();
    for (auto& c : clients) {
        // Exactly once: the failed attempts were errors, not disconnects.
        CHECK(c->disconnects.size() == 1);
        CHECK(c->cli.reconnect_count() >= 2);
        check_in_order(c->got.items());
        // While the server was down the attempts never paused longer than the bound.
        auto const fails = c->failures.items();
        for (std::size_t k = 1; k < fails.size(); ++k)
            CHECK(fails[k] - fails[k - 1] <= most + slack);
        c->cli.close();
        CHECK(c->disconnects.size() == 2);
        CHECK_FALSE(c->disconnects.items().at(1).first);  // our own close: clean
    }
}
#endif

// ---------------------------------------------------------------------------------------------
// 3. A peer that vanishes without FIN (network namespace: loopback down drops every packet)
// ---------------------------------------------------------------------------------------------

namespace {
std::string link_target(char const* path) {
    std::error_code ec;
    auto const target = std::filesystem::read_symlink(path, ec);
    return ec ? std::string{} : target.string();
}

/// The network interfaces of this process's namespace.
std::vector<std::string> interfaces() {
    std::ifstream dev{"/proc/self/net/dev"};
    std::vector<std::string> names;
    std::string line;
    for (int i = 0; std::getline(dev, line); ++i) {
        auto const colon = line.find(':');
        if (i < 2 || colon == std::string::npos) continue;  // two header lines
        auto name = line.substr(0, colon);
        name.erase(0, name.find_first_not_of(' '));
        names.push_back(name);
    }
    return names;
}

/// Fails the test unless it runs in a private network namespace made by test/fault/in_netns.sh
/// (which names the namespace it came from) with nothing but a loopback interface in it.
void require_private_netns() {
    char const* outer = std::getenv("WSCORO_OUTER_NETNS");
    REQUIRE_MESSAGE((outer && *outer),
                    "this test takes the loopback interface down: run it only through "
                    "test/fault/in_netns.sh (unshare --net), never in the machine's namespace");
    auto const here = link_target("/proc/self/ns/net");
    REQUIRE_MESSAGE((!here.empty() && here != outer), "not in a namespace of its own: " << here);
    REQUIRE(interfaces() == std::vector<std::string>{"lo"});
}

/// Sets the loopback interface up or down (SIOCSIFFLAGS, as `ip link set lo up|down` does).
bool set_loopback(bool up) {
    int const fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    ifreq ifr{};
    std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
    bool ok = ::ioctl(fd, SIOCGIFFLAGS, &ifr) == 0;
    if (ok) {
        ifr.ifr_flags =
            static_cast<short>(up ? (ifr.ifr_flags | IFF_UP) : (ifr.ifr_flags & ~IFF_UP));
        ok = ::ioctl(fd, SIOCSIFFLAGS, &ifr) == 0;
    }
    ::close(fd);
    return ok;
}

/// Brings the loopback interface back up, also when the test fails half-way.
struct loopback_down {
    loopback_down() { REQUIRE(set_loopback(false)); }
    ~loopback_down() { set_loopback(true); }
};
}  // namespace

TEST_CASE("a peer that vanishes without FIN is detected at both ends within pong_wait plus "
          "ping_interval" *
          netns_suite) {
    require_private_netns();
    REQUIRE(set_loopback(true));  // a new namespace starts with it down
    constexpr ms ping = 200ms, pong = 600ms, margin = 400ms;
    auto scfg = loopback_config();
    scfg.ping_interval = ping;
    scfg.pong_wait = pong;
    echo_server server{scfg};
    wscoro::client_config cfg;
    cfg.url = url_of(server.srv);
    cfg.ping_interval = ping;
    cfg.pong_wait = pong;
    cfg.auto_reconnect = false;  // nothing to reconnect to while the link is down
    numbered_client c{cfg};
    REQUIRE_FALSE(c.cli.connect());
    REQUIRE_FALSE(c.cli.send_text("0"));
    REQUIRE(c.got.wait_for_count(1));
    REQUIRE(server.joined.wait_for_count(1));

    {
        loopback_down down;  // from now on no data, no FIN, no RST: both ends just hear nothing
        auto const t0 = steady::now();
        REQUIRE(server.left.wait_for_count(1, pong + ping + 5s));
        REQUIRE(c.disconnects.wait_for_count(1, pong + ping + 5s));
        auto const server_end = server.left.items().at(0);
        auto const client_end = c.disconnects.items().at(0);
        CHECK_MESSAGE(server_end.why == wscoro::error::pong_timeout, server_end.why.message());
        CHECK_MESSAGE(client_end.first == wscoro::error::pong_timeout, client_end.first.message());
        // Each end heard the other within one ping_interval before the link went down.
        CHECK(since(t0) >= pong - ping);
        CHECK(since(t0) <= pong + ping + margin);
        CHECK(client_end.second - t0 <= pong + ping + margin);
    }
    // The link is back: the server serves a new client.
    numbered_client again{cfg};
    REQUIRE_FALSE(again.cli.connect());
    REQUIRE_FALSE(again.cli.send_text("0"));
    REQUIRE(again.got.wait_for_count(1));
    again.cli.close();
    c.cli.close();
    CHECK(c.disconnects.size() == 1);
}

// ---------------------------------------------------------------------------------------------
// 4. Slow loris: many half-finished handshakes
// ---------------------------------------------------------------------------------------------

namespace {
struct loris_state {
    explicit loris_state(std::size_t n) : started(n), ended(n), ec(n), bytes(n, 0) {}
    std::vector<steady::time_point> started, ended;  // each written by its own coroutine only
    std::vector<error_code> ec;
    std::vector<std::size_t> bytes;
    recorder<std::size_t> stalled;  // wrote half a request and waits
    recorder<std::size_t> closed;   // the server closed it
};

// Half an upgrade request (no blank line ends it), then silence until the server hangs up.
asio::awaitable<void> slow_handshake(tcp::endpoint ep, loris_state& st, std::size_t i) {
    tcp::socket s{co_await asio::this_coro::executor};
    st.started[i] = steady::now();
    auto [cec] = co_await s.async_connect(ep, use_tuple);
    if (!cec) {
        std::string const half = "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n";
        auto const out = asio::buffer(half);
        auto [wec, wn] = co_await asio::async_write(s, out, use_tuple);
        cec = wec;
    }
    if (cec) {
        st.ec[i] = cec;
        st.ended[i] = steady::now();
        st.closed.push(i);
        co_return;
    }
    st.stalled.push(i);
    char byte = 0;
    auto const in = asio::buffer(&byte, 1);
    auto [rec, rn] = co_await s.async_read_some(in, use_tuple);
    st.ended[i] = steady::now();
    st.ec[i] = rec;
    st.bytes[i] = rn;
    st.closed.push(i);
}
}  // namespace

TEST_CASE("slow loris handshakes are dropped after handshake_timeout while new clients are served" *
          suite) {
    constexpr std::size_t n = 200;
    constexpr ms timeout = 1s, late = 1500ms;
    auto cfg = loopback_config();
    cfg.handshake_timeout = timeout;
    echo_server server{cfg};
    int const sockets_before = open_sockets();

    loris_state st{n};
    asio::io_context ioc;
    auto const ep = raw::endpoint_of(server.srv.address());
    for (std::size_t i = 0; i < n; ++i)
        asio::co_spawn(ioc, slow_handshake(ep, st, i), asio::detached);
    std::jthread loris{[&] { ioc.run_for(timeout + late + 10s); }};
    REQUIRE(st.stalled.wait_for_count(n, 10s));

    // A well-behaved client is served while every slow one still holds its connection.
    wscoro::client_config ccfg;
    ccfg.url = url_of(server.srv);
    numbered_client good{ccfg};
    REQUIRE_FALSE(good.cli.connect());
    for (int i = 0; i < 10; ++i) REQUIRE_FALSE(good.cli.send_text(std::to_string(i)));
    REQUIRE(good.got.wait_for_count(10, 5s));
    CHECK(st.closed.size() == 0);  // served before any slow one was dropped
    check_in_order(good.got.items());

    REQUIRE(st.closed.wait_for_count(n, timeout + late + 5s));
    for (std::size_t i = 0; i < n; ++i) {
        CAPTURE(i);
        CHECK_MESSAGE((st.ec[i] == asio::error::eof || st.ec[i] == asio::error::connection_reset),
                      st.ec[i].message());
        CHECK(st.bytes[i] == 0);                        // closed without an answer
        CHECK(st.ended[i] - st.started[i] >= timeout);  // not before handshake_timeout
        CHECK(st.ended[i] - st.started[i] <= timeout + late);
    }
    // Each drop was counted (and reported) once.
    auto const timeouts = [](auto const& errors) {
        return std::count_if(errors.begin(), errors.end(),
                             [](auto const& e) { return e.first == boost::beast::error::timeout; });
    };
    REQUIRE(
        server.errors.wait([&](auto const& v) { return timeouts(v) >= static_cast<long>(n); }, 5s));
    CHECK(server.srv.get_metrics().handshake_timeouts.load() == n);

    // And the server still serves, with nothing left of the slow ones.
    for (int i = 10; i < 20; ++i) REQUIRE_FALSE(good.cli.send_text(std::to_string(i)));
    REQUIRE(good.got.wait_for_count(20, 5s));
    check_in_order(good.got.items());
    good.cli.close();
    loris.join();
    CHECK(poll_until([&] { return open_sockets() == sockets_before; }, 5s));
    // The server closes the socket first and leaves the registry a moment later (run() ends).
    CHECK(poll_until([&] { return server.srv.client_count() == 0; }, 5s));
}

// ---------------------------------------------------------------------------------------------
// 5. A connection flood beyond max_connections
// ---------------------------------------------------------------------------------------------

namespace {
struct flood_state {
    std::size_t total = 0;
    std::size_t started = 0;
    std::size_t refused = 0;  // answered 503 and closed by the server
    std::vector<std::string> problems;
};

// One upgrade attempt after another until `total` were made: connect, ask, expect 503, and read
// until the server closes (so that its socket is gone once this ends).
asio::awaitable<void> flood_worker(tcp::endpoint ep, flood_state& st) {
    auto ex = co_await asio::this_coro::executor;
    while (st.started < st.total) {
        ++st.started;
        tcp::socket s{ex};
        auto [cec] = co_await s.async_connect(ep, use_tuple);
        if (cec) {
            st.problems.push_back("connect: " + cec.message());
            continue;
        }
        std::string const req =
            "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n";
        auto const out = asio::buffer(req);
        auto [wec, wn] = co_await asio::async_write(s, out, use_tuple);
        std::string answer;
        auto in = asio::dynamic_buffer(answer);
        auto [rec, rn] =
            co_await asio::async_read(s, in, use_tuple);  // to the end: the server closes
        if (wec || (rec && rec != asio::error::eof && rec != asio::error::connection_reset)) {
            st.problems.push_back("exchange: " + (wec ? wec : rec).message());
        } else if (answer.rfind("HTTP/1.1 503", 0) == 0) {
            ++st.refused;
        } else {
            st.problems.push_back("answer: " + answer.substr(0, answer.find('\r')));
        }
    }
}
}  // namespace

TEST_CASE(
    "a connection flood beyond max_connections is refused with 503 and leaves nothing behind" *
    suite) {
    constexpr std::size_t limit = 4, attempts = 400, concurrency = 16;
    auto cfg = loopback_config();
    cfg.max_connections = limit;
    echo_server server{cfg};
    std::vector<std::unique_ptr<numbered_client>> clients;
    for (std::size_t i = 0; i < limit; ++i) {
        wscoro::client_config ccfg;
        ccfg.url = url_of(server.srv);
        ccfg.auto_reconnect = false;
        clients.push_back(std::make_unique<numbered_client>(ccfg));
        REQUIRE_FALSE(clients.back()->cli.connect());
    }
    REQUIRE(server.joined.wait_for_count(limit));
    auto const& stats = server.srv.get_metrics();
    auto const accepted_before = stats.connections_accepted.load();
    int const sockets_before = open_sockets();

    // The existing clients keep echoing, one round trip after another, during the whole flood.
    std::atomic<int> rounds{0};
    std::atomic<bool> echo_ok{true};
    std::jthread pinger{[&](std::stop_token stop) {
        for (int n = 0; n < 1'000'000 && !stop.stop_requested() && echo_ok; ++n) {
            for (auto& c : clients) {
                bool const ok = !c->cli.send_text(std::to_string(n)) &&
                                c->got.wait_for_count(static_cast<std::size_t>(n) + 1, 5s);
                if (!ok) echo_ok = false;
            }
            ++rounds;
        }
    }};

    flood_state st;
    st.total = attempts;
    asio::io_context ioc;
    auto const ep = raw::endpoint_of(server.srv.address());
    auto const rounds_before = rounds.load();
    for (std::size_t i = 0; i < concurrency; ++i)
        asio::co_spawn(ioc, flood_worker(ep, st), asio::detached);
    ioc.run_for(60s);
    auto const rounds_during = rounds.load() - rounds_before;
    pinger.request_stop();
    pinger.join();

    CHECK(ioc.stopped());  // every attempt finished
    for (auto const& p : st.problems) FAIL_CHECK(p);
    CHECK(st.refused == attempts);
    CHECK(echo_ok);
    CHECK(rounds_during > 0);  // echoes went on while the flood lasted
    for (auto& c : clients) check_in_order(c->got.items());
    // Nothing is left of the refused connections: counts and descriptors are back where they were.
    CHECK(stats.refused_max_connections.load() == attempts);
    CHECK(stats.connections_accepted.load() == accepted_before);
    CHECK(stats.connections_current.load() == limit);
    CHECK(server.srv.client_count() == limit);
    CHECK(poll_until([&] { return open_sockets() == sockets_before; }, 5s));

    // A slot comes back when a client leaves, and only one.
    clients.front()->cli.close();
    REQUIRE(server.left.wait_for_count(1));
    raw::ws_client next, extra;
    CHECK_FALSE(next.connect(server.srv.address()));
    CHECK(extra.connect(server.srv.address()));  // refused again: 503
    CHECK(stats.refused_max_connections.load() == attempts + 1);
    REQUIRE_FALSE(next.send_text("in"));
    CHECK(next.read().data == "in");
    CHECK_FALSE(next.close());
    for (auto& c : clients) c->cli.close();
}

// ---------------------------------------------------------------------------------------------
// 6. A reader that stops while another thread broadcasts
// ---------------------------------------------------------------------------------------------

// The broadcaster runs on its own thread and goes as fast as the readers drain (it only waits
// while a *reader's* queue is half full): the reader that stopped is left to its overflow policy.
TEST_CASE("a reader that stops while another thread broadcasts is bounded and dropped and the "
          "others get everything" *
          suite) {
    auto cfg = loopback_config();
    cfg.send_queue_limit = 64;
    cfg.send_queue_bytes = 64 * 1024;
    cfg.write_wait = 500ms;
    echo_server server{cfg};

    raw::ws_client stalled;
    stalled.set_receive_buffer(4096);
    REQUIRE_FALSE(stalled.connect(server.srv.address()));
    REQUIRE(server.joined.wait_for_count(1));
    auto const stalled_conn = server.joined.items().at(0);
    constexpr std::size_t n_readers = 3;
    std::vector<std::unique_ptr<numbered_client>> readers;
    for (std::size_t i = 0; i < n_readers; ++i) {
        wscoro::client_config ccfg;
        ccfg.url = url_of(server.srv);
        ccfg.auto_reconnect = false;
        readers.push_back(std::make_unique<numbered_client>(ccfg));
        REQUIRE_FALSE(readers.back()->cli.connect());
    }
    REQUIRE(server.joined.wait_for_count(n_readers + 1));
    auto const joined = server.joined.items();
    std::vector<connection_ptr> const reader_conns(joined.begin() + 1, joined.end());

    constexpr int max_messages = 20'000, after_drop = 500;
    std::string const padding(2000, '.');
    std::atomic<int> sent{0};
    std::atomic<std::size_t> most_queued{0}, most_queued_bytes{0};
    std::atomic<bool> paced_out{false};
    std::jthread broadcaster{[&] {
        int drop_seen_at = -1;
        for (int i = 0; i < max_messages; ++i) {
            // Dropped: the overflow policy closed it. (It leaves only once its close frame, which
            // the stalled peer never reads, times out after write_wait: time for many broadcasts.)
            if (drop_seen_at < 0 && !stalled_conn->is_open()) drop_seen_at = i;
            if (drop_seen_at >= 0 && i >= drop_seen_at + after_drop) break;
            auto const deadline = steady::now() + 5s;
            auto const readers_behind = [&] {
                return std::any_of(reader_conns.begin(), reader_conns.end(), [&](auto const& c) {
                    return c->queued_bytes() > cfg.send_queue_bytes / 2;
                });
            };
            while (readers_behind()) {
                if (steady::now() > deadline) {
                    paced_out = true;
                    return;
                }
                std::this_thread::yield();
            }
            server.srv.broadcast_text(std::to_string(i) + padding);
            most_queued = std::max(most_queued.load(), stalled_conn->queued());
            most_queued_bytes = std::max(most_queued_bytes.load(), stalled_conn->queued_bytes());
            sent = i + 1;
        }
    }};
    broadcaster.join();
    CHECK_FALSE(paced_out);  // the readers never stopped draining
    REQUIRE(server.left.wait_for_count(1, 5s));
    CHECK(sent < max_messages);  // dropped long before the bound on the test's load
    auto const gone = server.left.items().at(0);
    CHECK(gone.id == stalled_conn->id());
    CHECK(gone.why == wscoro::error::send_queue_full);
    CHECK(most_queued.load() <= cfg.send_queue_limit);
    CHECK(most_queued_bytes.load() <= cfg.send_queue_bytes);

    // Every reader got every broadcast, in order, from the first one on.
    for (auto& r : readers) {
        REQUIRE(r->got.wait_for_count(static_cast<std::size_t>(sent.load()), 10s));
        auto const got = r->got.items();
        CHECK(got.size() == static_cast<std::size_t>(sent.load()));
        REQUIRE(!got.empty());
        CHECK(got.front().second == 0);
        check_in_order(got);
        CHECK(r->disconnects.size() == 0);
    }
    stalled.kill();
    for (auto& r : readers) r->cli.close();
}

// ---------------------------------------------------------------------------------------------
// 7. stop() under load, and facades destroyed from their callbacks or from other threads
// ---------------------------------------------------------------------------------------------

TEST_CASE("stop during heavy traffic ends every connection once and refuses what comes after" *
          suite) {
    int const threads_before = thread_count();
    {
        auto cfg = loopback_config();
        cfg.threads = 2;
        echo_server server{cfg};
        constexpr std::size_t n = 4;
        std::vector<std::unique_ptr<numbered_client>> clients;
        for (std::size_t i = 0; i < n; ++i) {
            wscoro::client_config ccfg;
            ccfg.url = url_of(server.srv);
            ccfg.auto_reconnect = false;
            clients.push_back(std::make_unique<numbered_client>(ccfg));
            REQUIRE_FALSE(clients.back()->cli.connect());
            clients.back()->start_sending(64);
        }
        REQUIRE(server.joined.wait_for_count(n));
        // Broadcasts from another thread, as fast as the queues drain (an overflow would end a
        // connection before stop() does).
        std::atomic<int> broadcasts{0}, late_accepted{0};
        std::atomic<bool> stopped{false};
        std::jthread broadcaster{[&](std::stop_token stop) {
            for (int i = 0; i < 1'000'000 && !stop.stop_requested(); ++i) {
                auto const all = server.srv.clients();
                if (std::any_of(all.begin(), all.end(), [&](auto const& c) {
                        return c->queued() > cfg.send_queue_limit / 2;
                    })) {
                    std::this_thread::yield();
                    continue;
                }
                bool const after = stopped.load();
                auto const accepted = server.srv.broadcast_text("broadcast");
                if (after) late_accepted += static_cast<int>(accepted);
                ++broadcasts;
            }
        }};
        for (auto& c : clients) {
            REQUIRE(c->got.wait_for_count(100, 10s));
            REQUIRE(c->got.wait([&](auto const&) { return c->others.load() >= 100; }, 10s));
        }

        auto const t0 = steady::now();
        server.srv.stop();
        stopped = true;
        CHECK(since(t0) <= cfg.shutdown_timeout + 2s);
        CHECK_FALSE(server.srv.is_running());
        CHECK(server.srv.client_count() == 0);
        for (auto& c : clients) REQUIRE(c->disconnects.wait_for_count(1, 5s));
        auto const broadcasts_at_stop = broadcasts.load();
        REQUIRE(poll_until([&] { return broadcasts.load() > broadcasts_at_stop + 10; }, 5s));
        broadcaster.request_stop();
        broadcaster.join();
        CHECK(late_accepted.load() == 0);  // a stopped server has no one to broadcast to
        CHECK(server.left.size() == n);    // stop() returned after every on_disconnect
        for (auto& c : clients) {
            c->stop_sending();
            CHECK(c->cli.send_text("late") == wscoro::error::not_connected);
            CHECK(c->disconnects.size() == 1);
            check_in_order(c->got.items());
            c->cli.close();
        }
    }
    CHECK(poll_until([&] { return thread_count() <= threads_before + foreign_threads; }, 5s));
}

TEST_CASE("a server destroyed from its own callback closes its clients and calls nothing more" *
          suite) {
    int const threads_before = thread_count();
    // Shared with the callbacks, which must not run once the server is gone: they would be
    // wscoro's bug, and this keeps them from touching freed memory if they did.
    auto calls_after = std::make_shared<recorder<std::string>>();
    auto gone = std::make_shared<std::atomic<bool>>(false);
    latch_flag destroyed;
    std::mutex mutex;  // guards srv: the test thread and a callback both touch it
    std::unique_ptr<wscoro::server> srv = std::make_unique<wscoro::server>(loopback_config());
    srv->set_callbacks(
        nullptr,
        [calls_after, gone](connection_ptr const&, error_code) {
            if (*gone) calls_after->push("on_disconnect");
        },
        [&, calls_after, gone](connection_ptr const& c, message const& m) {
            if (*gone) calls_after->push("on_message");
            if (m.data() != "die") {
                c->send(m);
                return;
            }
            std::unique_ptr<wscoro::server> victim;
            {
                std::lock_guard lock{mutex};
                victim = std::move(srv);
            }
            victim.reset();  // ~server inside its own callback
            *gone = true;
            destroyed.set();
        },
        nullptr);
    REQUIRE_FALSE(srv->start());
    std::string address;
    {
        std::lock_guard lock{mutex};
        address = srv->address();
    }
    raw::ws_client a, b;
    REQUIRE_FALSE(a.connect(address));
    REQUIRE_FALSE(b.connect(address));
    REQUIRE_FALSE(a.send_text("x"));
    CHECK(a.read().data == "x");
    REQUIRE_FALSE(b.send_text("die"));
    REQUIRE_FALSE(
        a.send_text("after"));  // may reach the server after it is gone: delivered to no one
    REQUIRE(destroyed.wait(5s));
    for (auto* peer : {&a, &b}) {
        CHECK(peer->read_until_closed() == websocket::error::closed);
        CHECK(peer->reason().code == websocket::close_code::going_away);
    }
    {
        std::lock_guard lock{mutex};
        CHECK(srv == nullptr);
    }
    // The threads it could not join end by themselves once the connections are closed.
    CHECK(poll_until([&] { return thread_count() <= threads_before + foreign_threads; }, 5s));
    CHECK(calls_after->items() == std::vector<std::string>{});
}

TEST_CASE("a client destroyed from its own callback closes cleanly and calls nothing more" *
          suite) {
    int const threads_before = thread_count();
    {
        recorder<disconnect_event> left;
        wscoro::server srv{loopback_config()};
        // "bye" is answered with itself and ten more messages, which arrive after the client is
        // gone.
        srv.set_callbacks(
            nullptr,
            [&](connection_ptr const& c, error_code why) {
                left.push({c->id(), why});
            },
            [](connection_ptr const& c, message const& m) {
                c->send(m);
                if (m.data() == "bye")
                    for (int i = 0; i < 10; ++i) c->send_text("tail " + std::to_string(i));
            },
            nullptr);
        REQUIRE_FALSE(srv.start());
        auto events = std::make_shared<recorder<std::string>>();
        latch_flag destroyed;
        std::mutex mutex;
        wscoro::client_config cfg;
        cfg.url = url_of(srv);
        auto cli = std::make_unique<wscoro::client>(cfg);
        cli->set_callbacks([events] { events->push("connect"); },
                           [events](error_code) { events->push("disconnect"); },
                           [&, events](message const& m) {
                               events->push("message " + std::string{m.data()});
                               if (m.data() != "bye") return;
                               std::unique_ptr<wscoro::client> victim;
                               {
                                   std::lock_guard lock{mutex};
                                   victim = std::move(cli);
                               }
                               victim.reset();  // ~client inside its own callback
                               destroyed.set();
                           },
                           [events](error_code, std::string_view what) {
                               events->push("error " + std::string{what});
                           });
        {
            std::lock_guard lock{mutex};
            REQUIRE_FALSE(cli->connect());
            REQUIRE_FALSE(cli->send_text("a"));
            REQUIRE_FALSE(cli->send_text("bye"));
        }
        REQUIRE(destroyed.wait(5s));
        REQUIRE(left.wait_for_count(1, 5s));
        CHECK_FALSE(left.items().at(0).why);  // the client closed with 1000
        // The client's detached thread ended; the server's is still there.
        CHECK(
            poll_until([&] { return thread_count() <= threads_before + foreign_threads + 1; }, 5s));
        srv.stop();
        CHECK(events->items() == std::vector<std::string>{"connect", "message a", "message bye"});
    }
    CHECK(poll_until([&] { return thread_count() <= threads_before + foreign_threads; }, 5s));
}

TEST_CASE("clients and a server destroyed from other threads while traffic flows" * suite) {
    int const threads_before = thread_count();
    {
        auto cfg = loopback_config();
        cfg.threads = 2;
        auto server = std::make_unique<echo_server>(cfg);
        constexpr std::size_t n = 3;
        std::vector<std::unique_ptr<numbered_client>> clients;
        for (std::size_t i = 0; i < n; ++i) {
            wscoro::client_config ccfg;
            ccfg.url = url_of(server->srv);
            ccfg.auto_reconnect = false;
            clients.push_back(std::make_unique<numbered_client>(ccfg));
            REQUIRE_FALSE(clients.back()->cli.connect());
            clients.back()->start_sending(64);
        }
        for (auto& c : clients) REQUIRE(c->got.wait_for_count(100, 10s));

        // A client goes away (from a thread of its own) in the middle of its traffic.
        std::jthread{[&] { clients.front().reset(); }}.join();
        REQUIRE(server->left.wait_for_count(1, 5s));
        CHECK_FALSE(server->left.items().at(0).why);  // ~client closes with 1000

        // The server goes away (from a thread of its own) while the others keep sending.
        for (std::size_t i = 1; i < n; ++i) {
            auto const got = clients[i]->got.size();
            REQUIRE(clients[i]->got.wait_for_count(got + 10, 5s));  // still flowing
        }
        std::jthread{[&] { server.reset(); }}.join();
        for (std::size_t i = 1; i < n; ++i) {
            REQUIRE(clients[i]->disconnects.wait_for_count(1, 5s));
            check_in_order(clients[i]->got.items());
        }
        std::jthread{[&] { clients.clear(); }}.join();
    }
    CHECK(poll_until([&] { return thread_count() <= threads_before + foreign_threads; }, 5s));
}
