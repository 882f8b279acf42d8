#include <wscoro/server.hpp>
#include <wscoro/client.hpp>

#include "support/recorder.hpp"

#include <doctest/doctest.h>

using namespace std::chrono_literals;
using wscoro::test::recorder;

namespace {
wscoro::server_config loopback_server() {
    wscoro::server_config cfg;
    cfg.address = "127.0.0.1:0";
    cfg.path = "/ws";
    return cfg;
}
std::string url_of(wscoro::server const& s) { return "ws://" + s.address() + "/ws"; }
}  // namespace

TEST_CASE("the seed quick start: welcome message then broadcast" * doctest::test_suite("facade")) {
    wscoro::server srv{loopback_server()};
    srv.set_callbacks(
        [](wscoro::connection_ptr const& c) { c->send_text("Welcome to WebSocket Server!"); }, nullptr,
        [&srv](wscoro::connection_ptr const&, wscoro::message const& m) {
            srv.broadcast_text("Broadcast: " + std::string{m.data()});
        },
        nullptr);
    REQUIRE_FALSE(srv.start());
    CHECK(srv.is_running());

    wscoro::client_config ccfg;
    ccfg.url = url_of(srv);
    wscoro::client cli{ccfg};
    recorder<std::string> got;
    wscoro::test::latch_flag connected;
    cli.set_callbacks([&] { connected.set(); }, nullptr,
                      [&](wscoro::message const& m) { got.push(std::string{m.data()}); }, nullptr);
    REQUIRE_FALSE(cli.connect());
    REQUIRE(connected.wait());
    REQUIRE(got.wait_for_count(1));
    CHECK(cli.send_text("Hello from client!") == wscoro::error_code{});
    REQUIRE(got.wait_for_count(2));
    auto items = got.items();
    CHECK(items[0] == "Welcome to WebSocket Server!");
    CHECK(items[1] == "Broadcast: Hello from client!");
    CHECK(srv.client_count() == 1);
    cli.close();
    srv.stop();
    CHECK_FALSE(srv.is_running());
}
