// JSON messages, after the Go README's ChatMessage example: a struct becomes JSON through
// Boost.JSON's value_from (found by tag_invoke), and send_json / broadcast_json send it as text.
//
//   json_chat [HOST:PORT]     default 127.0.0.1:0 (any free port)
//
// Runs a chat server and one client in the same process: the client sends a chat message, the
// server stamps it and broadcasts it, the client prints what it got; then both shut down.
// Exit status 0 once the broadcast came back (bounded by 5 s).
#include <wscoro/client.hpp>
#include <wscoro/server.hpp>

#include <boost/json.hpp>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <iostream>
#include <mutex>
#include <string>

namespace json = boost::json;
using namespace std::chrono_literals;

namespace chat {

// Go: type ChatMessage struct { Type, User, Content string; Time int64 `json:"timestamp"` }
struct chat_message {
    std::string type;
    std::string user;
    std::string content;
    std::int64_t timestamp = 0;
};

// Found by argument-dependent lookup: json::value_from(chat_message) and therefore
// message::json, connection::send_json, client::send_json and server::broadcast_json use it.
void tag_invoke(json::value_from_tag, json::value& v, chat_message const& m) {
    v = {{"type", m.type}, {"user", m.user}, {"content", m.content}, {"timestamp", m.timestamp}};
}

// The way back: json::value_to<chat_message>(v). Throws if a field is missing or of the wrong kind.
chat_message tag_invoke(json::value_to_tag<chat_message>, json::value const& v) {
    auto const& o = v.as_object();
    return {json::value_to<std::string>(o.at("type")), json::value_to<std::string>(o.at("user")),
            json::value_to<std::string>(o.at("content")),
            o.contains("timestamp") ? o.at("timestamp").to_number<std::int64_t>() : 0};
}

std::int64_t unix_now() {
    auto const since_epoch = std::chrono::system_clock::now().time_since_epoch();
    return std::chrono::duration_cast<std::chrono::seconds>(since_epoch).count();
}

}  // namespace chat

int main(int argc, char** argv) {
    using chat::chat_message;

    wscoro::server_config server_cfg;
    server_cfg.address = argc > 1 ? argv[1] : "127.0.0.1:0";
    server_cfg.path = "/chat";
    wscoro::server server{server_cfg};
    server.set_callbacks(
        [](wscoro::connection_ptr const& c) {
            // Any Boost.JSON value works too, like the Go README's map[string]interface{} welcome.
            c->send_json(json::object{
                {"type", "welcome"}, {"your_id", c->id()}, {"server_time", chat::unix_now()}});
        },
        nullptr,
        [&server](wscoro::connection_ptr const& c, wscoro::message const& m) {
            chat_message msg;
            try {  // parse throws on malformed JSON, value_to on a missing or mistyped field
                msg = json::value_to<chat_message>(json::parse(m.data()));
            } catch (std::exception const& e) {
                c->send_json(json::object{{"type", "error"}, {"error", e.what()}});
                return;
            }
            msg.timestamp = chat::unix_now();  // the server's clock is the reference
            // Serialized once; every client's queue holds the same immutable payload.
            server.broadcast_json(msg);
        },
        nullptr);

    wscoro::diagnostics diag;
    if (auto ec = server.start(diag)) {
        std::cerr << "server: " << diag.message << " [" << ec.message() << "]\n";
        return 1;
    }

    // The client prints what arrives and raises `got_chat` when the broadcast comes back.
    std::mutex mutex;
    std::condition_variable cv;
    bool got_chat = false;
    wscoro::client_config client_cfg;
    client_cfg.url = "ws://" + server.address() + "/chat";
    wscoro::client client{client_cfg};
    auto on_message = [&](wscoro::message const& m) {
        json::error_code ec;
        json::value v = json::parse(m.data(), ec);
        auto const* obj = ec ? nullptr : v.if_object();
        auto const* type = obj ? obj->if_contains("type") : nullptr;
        if (!type || !type->is_string()) {
            std::cout << "not a chat protocol message: " << m.data() << '\n';
        } else if (type->get_string() == "welcome") {
            std::cout << "welcome, your id is " << obj->at("your_id") << '\n';  // serialized JSON
        } else if (type->get_string() == "chat") {
            auto msg = json::value_to<chat_message>(v);
            std::cout << "[" << msg.type << "] " << msg.user << ": " << msg.content << " (at "
                      << msg.timestamp << ")\n";
            std::lock_guard lock{mutex};
            got_chat = true;
            cv.notify_all();
        } else {
            std::cout << "server said: " << m.data() << '\n';
        }
    };
    client.set_callbacks(nullptr, nullptr, on_message, nullptr);
    if (auto ec = client.connect(diag)) {
        std::cerr << "client: " << diag.message << " [" << ec.message() << "]\n";
        return 1;
    }

    // Sends are queued and never block; they fail only when disconnected or the queue is full.
    chat_message hello{.type = "chat", .user = "Alice", .content = "Hello everyone!"};
    auto sent = client.send_json(hello);
    bool ok = false;
    if (sent) {
        std::cerr << "send: " << sent.message() << '\n';
    } else {
        std::unique_lock lock{mutex};
        ok = cv.wait_for(lock, 5s, [&] { return got_chat; });
    }
    client.close();
    server.stop();
    if (!ok) std::cerr << "the chat broadcast did not come back within 5 s\n";
    return ok ? 0 : 1;
}
