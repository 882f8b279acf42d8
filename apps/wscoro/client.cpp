// `wscoro client URL`: like wscat/websocat. Lines of standard input go out as text messages;
// received messages are printed one per line; events go to standard error.
#include "commands.hpp"

#include <wscoro/client.hpp>

#include <boost/json.hpp>

#include <condition_variable>
#include <iostream>
#include <mutex>
#include <sstream>
#include <thread>

namespace wscoro::cli {

namespace {

namespace json = boost::json;

void pretty(std::ostream& os, json::value const& v, std::string& indent) {
    switch (v.kind()) {
    case json::kind::object: {
        auto const& obj = v.get_object();
        if (obj.empty()) {
            os << "{}";
            return;
        }
        os << "{\n";
        indent += "  ";
        bool first = true;
        for (auto const& [key, value] : obj) {
            if (!first) os << ",\n";
            first = false;
            os << indent << json::serialize(json::string{key}) << ": ";
            pretty(os, value, indent);
        }
        indent.resize(indent.size() - 2);
        os << "\n" << indent << "}";
        return;
    }
    case json::kind::array: {
        auto const& arr = v.get_array();
        if (arr.empty()) {
            os << "[]";
            return;
        }
        os << "[\n";
        indent += "  ";
        for (std::size_t i = 0; i < arr.size(); ++i) {
            os << indent;
            pretty(os, arr[i], indent);
            os << (i + 1 < arr.size() ? ",\n" : "\n");
        }
        indent.resize(indent.size() - 2);
        os << indent << "]";
        return;
    }
    default:
        os << json::serialize(v);
    }
}

std::string render(message const& m, bool as_json) {
    if (m.is_binary()) {
        static constexpr char digits[] = "0123456789abcdef";
        std::string out = "<binary " + std::to_string(m.size()) + " bytes";
        auto const shown = std::min<std::size_t>(m.size(), 64);
        if (shown) out += ":";
        for (std::size_t i = 0; i < shown; ++i) {
            auto const b = static_cast<unsigned char>(m.data()[i]);
            out += ' ';
            out += digits[b >> 4];
            out += digits[b & 15];
        }
        return out + (shown < m.size() ? " ...>" : ">");
    }
    if (as_json) {
        boost::system::error_code ec;
        auto v = json::parse(m.data(), ec);
        if (!ec) {
            std::ostringstream os;
            std::string indent;
            pretty(os, v, indent);
            return os.str();
        }
    }
    return std::string{m.data()};
}

/// What the callbacks tell the main thread.
struct session_state {
    std::mutex mutex;
    std::condition_variable changed;
    std::size_t received = 0;
    std::size_t sent = 0;
    bool input_done = false;
    std::chrono::steady_clock::time_point last_activity = std::chrono::steady_clock::now();
    bool ended = false;  // disconnected, and no reconnect will follow
    error_code reason;
    close_reason close;

    template <class F> void update(F&& f) {
        {
            std::lock_guard lock{mutex};
            f();
            last_activity = std::chrono::steady_clock::now();
        }
        changed.notify_all();
    }
};

}  // namespace

int client(client_options const& o) {
    client_config cfg;
    cfg.url = o.url;
    cfg.auto_reconnect = o.reconnect;
    cfg.reconnect_delay = std::chrono::seconds{1};
    cfg.reconnect_delay_max = std::chrono::seconds{30};  // an interactive tool: retry at least twice a minute
    cfg.ping_interval = o.ping_interval;
    cfg.pong_wait = std::max(cfg.pong_wait, 2 * o.ping_interval);
    // --echo answers from the receive callback, which must not block: a deep queue instead of
    // refusals when a peer (a protocol test suite, say) sends bursts faster than it reads.
    cfg.send_queue_limit = std::size_t{1} << 16;
    for (auto const& h : o.headers) {
        auto colon = h.find(':');
        if (colon == std::string::npos || colon == 0) {
            std::cerr << "wscoro client: bad header \"" << h << "\" (expected \"Name: value\")\n";
            return 2;
        }
        auto value = h.substr(colon + 1);
        value.erase(0, value.find_first_not_of(" \t"));
        cfg.headers.set(h.substr(0, colon), value);
    }

    // Shared with the stdin reader thread, which may outlive this function (see below).
    auto const cli_ptr = std::make_shared<wscoro::client>(cfg);
    auto const st_ptr = std::make_shared<session_state>();
    auto& cli = *cli_ptr;
    auto& st = *st_ptr;
    std::mutex out_mutex;
    connection_ptr conn;  // the current connection, for its close code (client thread only)
    cli.set_callbacks(
        [&] {
            conn = cli.current();
            std::cerr << "connected to " << o.url << std::endl;
        },
        [&](error_code why) {
            auto const close = conn ? conn->last_close() : close_reason{};
            std::cerr << "disconnected";
            if (close.code != close_code::none) {
                std::cerr << " (close " << close.code;
                if (!close.reason.empty()) std::cerr << " " << std::string_view{close.reason.data(), close.reason.size()};
                std::cerr << ")";
            }
            if (why) std::cerr << ": " << why.message();
            std::cerr << std::endl;
            st.update([&] {
                st.reason = why;
                st.close = close;
                st.ended = !o.reconnect;
            });
        },
        [&](message const& m) {
            {
                std::lock_guard lock{out_mutex};
                std::cout << render(m, o.json) << std::endl;
            }
            if (o.echo) cli.send(m);
            st.update([&] { ++st.received; });
        },
        [&](error_code, std::string_view what) { std::cerr << "error: " << what << std::endl; });

    diagnostics diag;
    if (auto ec = cli.connect(diag)) {
        std::cerr << "wscoro client: " << (diag.message.empty() ? ec.message() : diag.message) << "\n";
        return ec == error::invalid_url || ec == error::invalid_config ? 2 : 1;
    }

    if (!o.echo) {
        // Standard input is read on its own thread, so that the end of the connection (the server
        // closed, and no --reconnect) ends the program even while input stays open. The thread
        // is detached: at exit it may still be blocked reading, which is harmless since it owns
        // what it touches (after disconnect() below its sends just fail with not_connected).
        std::thread{[st_ptr, cli_ptr] {
            auto& st = *st_ptr;
            auto& cli = *cli_ptr;
            std::size_t sent = 0;
            std::string line;
            while (std::getline(std::cin, line)) {
                if (!line.empty() && line.back() == '\r') line.pop_back();
                if (auto ec = cli.send_text(line)) {
                    std::cerr << "wscoro client: send failed: " << ec.message() << std::endl;
                    break;
                }
                ++sent;
                st.update([&] { st.sent = sent; });
            }
            st.update([&] { st.input_done = true; });
        }}.detach();
        std::unique_lock lock{st.mutex};
        st.changed.wait(lock, [&] { return st.ended || st.input_done; });
        // End of input: wait for the replies still in flight (one per message sent, or quiet for
        // `linger`), then close normally.
        while (!st.ended && st.received < st.sent &&
               st.changed.wait_until(lock, st.last_activity + o.linger) != std::cv_status::timeout) {
        }
        lock.unlock();
        cli.disconnect();  // waits for the closing handshake
        std::lock_guard done{st.mutex};
        return st.reason ? 1 : 0;
    }
    // --echo: until the server closes (or, with --reconnect, forever).
    std::unique_lock lock{st.mutex};
    st.changed.wait(lock, [&] { return st.ended; });
    auto const failed = bool(st.reason);
    lock.unlock();
    cli.close();
    return failed ? 1 : 0;
}

}  // namespace wscoro::cli
