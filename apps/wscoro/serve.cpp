// `wscoro serve`: echo, broadcast or chat over the server facade, plus plain HTTP on the same
// port: the chat page at "/", /healthz and /metrics.
#include "chat_protocol.hpp"
#include "commands.hpp"

#include <wscoro/server.hpp>

#include <boost/json.hpp>

#include <pthread.h>
#include <signal.h>

#include <iostream>
#include <mutex>
#include <unordered_map>

namespace wscoro::cli {

namespace {

namespace json = boost::json;

/// Nicknames of the chat, by connection id.
class chat_room {
public:
    std::string join(std::string const& id) {
        std::lock_guard lock{mutex_};
        return nicks_[id] = "guest-" + std::to_string(++guests_);
    }
    std::string leave(std::string const& id) {
        std::lock_guard lock{mutex_};
        auto it = nicks_.find(id);
        if (it == nicks_.end()) return {};
        auto nick = std::move(it->second);
        nicks_.erase(it);
        return nick;
    }
    std::string nick(std::string const& id) const {
        std::lock_guard lock{mutex_};
        auto it = nicks_.find(id);
        return it == nicks_.end() ? std::string{} : it->second;
    }
    /// Returns the old nickname.
    std::string rename(std::string const& id, std::string nick) {
        std::lock_guard lock{mutex_};
        auto& slot = nicks_[id];
        return std::exchange(slot, std::move(nick));
    }

private:
    mutable std::mutex mutex_;
    std::unordered_map<std::string, std::string> nicks_;
    std::uint64_t guests_ = 0;
};

// The protocol is in chat_protocol.hpp; this applies it to the room.
void on_chat_message(server& srv, chat_room& room, connection_ptr const& c, message const& m) {
    auto const req = parse_chat_message(m);
    switch (req.what) {
    case chat_request::kind::ignore:
        return;
    case chat_request::kind::relay:
        srv.broadcast(m);  // unchanged
        return;
    case chat_request::kind::nick: {
        auto old = room.rename(c->id(), req.nick);
        srv.broadcast_json(nick_event(old, req.nick));
        return;
    }
    case chat_request::kind::say:
        srv.broadcast_json(say_event(room.nick(c->id()), req.text));
        return;
    }
}

http_response respond(http_request const& req, http::status status, std::string type, std::string body) {
    http_response res{status, req.version()};
    res.set(http::field::server, "wscoro/0.1");
    res.set(http::field::content_type, std::move(type));
    res.set(http::field::cache_control, "no-store");
    res.keep_alive(req.keep_alive());
    res.body() = std::move(body);
    res.prepare_payload();
    if (req.method() == http::verb::head) res.body().clear();  // Content-Length stays
    return res;
}

std::string bracket(std::string const& host) {
    return host.find(':') != std::string::npos && host.front() != '[' ? "[" + host + "]" : host;
}

}  // namespace

int serve(serve_options const& o) {
    server_config cfg;
    cfg.address = bracket(o.host) + ":" + std::to_string(o.port);
    cfg.path = o.path;
    cfg.max_connections = o.max_connections;
    cfg.max_connections_per_ip = o.max_connections_per_ip;
    cfg.threads = o.threads;
    cfg.ping_interval = o.ping_interval;
    cfg.pong_wait = std::max(o.pong_wait, o.ping_interval);
    cfg.max_message_size = o.max_message_size;

    server srv{cfg};
    chat_room room;
    auto log = [](std::string_view line) {
        static std::mutex mutex;
        std::lock_guard lock{mutex};
        std::cerr << line << std::endl;
    };
    server::connect_handler on_connect = [&](connection_ptr const& c) {
        log("connect " + c->id() + " from " + c->remote_address());
    };
    server::disconnect_handler on_disconnect = [&](connection_ptr const& c, error_code why) {
        log("disconnect " + c->id() + (why ? ": " + why.message() : std::string{}));
    };
    server::message_handler on_message;
    switch (o.mode) {
    case serve_mode::echo:
        on_message = [](connection_ptr const& c, message const& m) { c->send(m); };
        break;
    case serve_mode::broadcast:
        on_message = [&srv](connection_ptr const&, message const& m) { srv.broadcast(m); };
        break;
    case serve_mode::chat:
        on_connect = [&](connection_ptr const& c) {
            auto nick = room.join(c->id());
            log("connect " + c->id() + " from " + c->remote_address() + " as " + nick);
            c->send_json(json::value{{"type", "welcome"}, {"id", c->id()}, {"nick", nick}});
            srv.broadcast_json(json::value{{"type", "join"}, {"nick", nick}});
        };
        on_disconnect = [&](connection_ptr const& c, error_code why) {
            auto nick = room.leave(c->id());
            log("disconnect " + c->id() + (why ? ": " + why.message() : std::string{}));
            srv.broadcast_json(json::value{{"type", "leave"}, {"nick", nick}});
        };
        on_message = [&](connection_ptr const& c, message const& m) { on_chat_message(srv, room, c, m); };
        break;
    }
    srv.set_callbacks(on_connect, on_disconnect, on_message,
                      [&](error_code, std::string_view what) { log(std::string{"error: "} + std::string{what}); });

    std::string const page = chat_page(o.path);
    srv.set_http_handler([&](http_request const& req) -> std::optional<http_response> {
        auto const target = std::string_view{req.target()}.substr(0, req.target().find('?'));
        if (req.method() != http::verb::get && req.method() != http::verb::head) return std::nullopt;
        if (target == "/" || target == "/index.html")
            return respond(req, http::status::ok, "text/html; charset=utf-8", page);
        if (target == "/healthz") return respond(req, http::status::ok, "text/plain; charset=utf-8", "ok\n");
        if (target == "/metrics")
            return respond(req, http::status::ok, "text/plain; version=0.0.4; charset=utf-8",
                           srv.get_metrics().to_prometheus());
        return std::nullopt;  // 404
    });

    // SIGINT and SIGTERM are blocked before the I/O threads start (they inherit the mask) and
    // taken here by sigwait: no asynchronous handler runs, so a signal cannot arrive on an I/O
    // thread or at a bad moment, and one that comes before the wait stays pending for it. Asio's
    // signal_set (a handler that writes to a pipe) lost about one SIGINT in eight under
    // ThreadSanitizer's deferred signal delivery: the process then never stopped.
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

    diagnostics diag;
    if (auto ec = srv.start(diag)) {
        std::cerr << "wscoro serve: " << (diag.message.empty() ? ec.message() : diag.message) << "\n";
        return 1;
    }
    std::cout << "listening on ws://" << srv.address() << o.path << std::endl;  // flushed: scripts wait for it
    int stop_signal = 0;
    while (sigwait(&stop_signals, &stop_signal) != 0) {
    }
    log("signal " + std::to_string(stop_signal) + ": stopping (close 1001 to every client)");
    srv.stop();
    return 0;
}

}  // namespace wscoro::cli
