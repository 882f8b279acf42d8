#pragma once
// The sub-commands of the `wscoro` tool. main.cpp parses the command line into these options;
// each command is built on the library's public API only.
#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

namespace wscoro::cli {

enum class serve_mode { echo, broadcast, chat };

struct serve_options {
    std::string host = "0.0.0.0";
    unsigned port = 8080;
    std::string path = "/ws";
    serve_mode mode = serve_mode::chat;
    std::size_t max_connections = 0;
    std::size_t max_connections_per_ip = 0;
    std::size_t threads = 1;
    std::chrono::milliseconds ping_interval{30'000};
    std::chrono::milliseconds pong_wait{60'000};
    std::size_t max_message_size = 16u << 20;
};

struct client_options {
    std::string url;
    bool echo = false;
    bool json = false;
    bool reconnect = false;
    std::vector<std::string> headers;  // "Name: value"
    std::chrono::milliseconds ping_interval{30'000};
    std::chrono::milliseconds linger{2'000};  // after end of input: wait this long for replies
};

/// Exit status: 0 after a graceful stop, 1 if the server could not start.
int serve(serve_options const& opts);
/// Exit status: 0 after a normal close, 1 on connection or protocol failure, 2 on a bad URL/header.
int client(client_options const& opts);

/// The chat page served at "/", with the WebSocket path filled in.
std::string chat_page(std::string const& ws_path);

}  // namespace wscoro::cli
