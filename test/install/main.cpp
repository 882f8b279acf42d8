// Built against an installed wscoro (see CMakeLists.txt next to it): a server and a client exchange
// one message over loopback through the documented callback API. Exit 0 on success.
#include <wscoro/wscoro.hpp>

#include <chrono>
#include <condition_variable>
#include <iostream>
#include <mutex>
#include <string>

using namespace std::chrono_literals;

int main() {
    wscoro::server_config scfg;
    scfg.address = "127.0.0.1:0";
    scfg.path = "/ws";
    wscoro::server server{scfg};
    server.set_callbacks(nullptr, nullptr,
                         [](wscoro::connection_ptr const& c, wscoro::message const& m) {
                             c->send_text("echo: " + std::string{m.data()});
                         },
                         nullptr);
    wscoro::diagnostics diag;
    if (auto ec = server.start(diag)) {
        std::cerr << "server start: " << diag.message << " [" << ec.message() << "]\n";
        return 1;
    }

    std::mutex mutex;
    std::condition_variable cv;
    std::string reply;
    wscoro::client_config ccfg;
    ccfg.url = "ws://" + server.address() + "/ws";
    wscoro::client client{ccfg};
    client.set_callbacks(nullptr, nullptr,
                         [&](wscoro::message const& m) {
                             std::lock_guard lock{mutex};
                             reply = m.data();
                             cv.notify_all();
                         },
                         nullptr);
    if (auto ec = client.connect(diag)) {
        std::cerr << "client connect: " << diag.message << " [" << ec.message() << "]\n";
        return 1;
    }
    if (auto ec = client.send_text("ping")) {
        std::cerr << "send: " << ec.message() << "\n";
        return 1;
    }
    bool got = false;
    {
        std::unique_lock lock{mutex};
        got = cv.wait_for(lock, 10s, [&] { return !reply.empty(); });
    }
    client.close();
    server.stop();
    if (!got || reply != "echo: ping") {
        std::cerr << "expected \"echo: ping\", got \"" << reply << "\"\n";
        return 1;
    }
    std::cout << "installed wscoro works: " << reply << "\n";
    return 0;
}
