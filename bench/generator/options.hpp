#pragma once
// What one run of wscoro-bench does, as parsed from the command line (main.cpp). Every field has
// the default the CLI documents; the scenarios read it and never change it.
#include <chrono>
#include <cstddef>
#include <optional>
#include <string>

namespace wscoro::bench {

enum class scenario { echo, broadcast, connect };

struct options {
    std::string url;
    bench::scenario scenario = scenario::echo;
    std::size_t connections = 100;
    std::size_t depth = 1;  ///< echo: messages in flight per connection
    std::size_t size = 32;  ///< payload bytes
    std::chrono::duration<double> warmup{2.0};
    std::chrono::duration<double> duration{8.0};  ///< the measured window
    double rate = 0;          ///< broadcast: publishes per second, 0 = as fast as the window allows
    std::size_t window = 16;  ///< broadcast: publishes not yet delivered to every subscriber
    std::size_t concurrency = 100;  ///< handshakes in flight while opening connections
    std::optional<int> server_pid;  ///< read the server's CPU time and RSS from /proc
    std::chrono::duration<double> connect_timeout{30.0};
    bool progress = false;  ///< one line per second on stderr
};

}  // namespace wscoro::bench
