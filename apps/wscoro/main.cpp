// wscoro: a WebSocket server and client for the terminal, built on the wscoro library.
//   wscoro serve [--host H] [--port P] [--path /ws] [--mode echo|broadcast|chat] ...
//   wscoro client URL [--echo] [-H "Name: value"] [--reconnect] ...
#include "commands.hpp"

#include <CLI/CLI.hpp>

#include <charconv>
#include <iostream>
#include <map>

namespace {

using wscoro::cli::serve_mode;

// "30s", "500ms", "2m", or a plain number of seconds.
std::string parse_duration(std::string const& text, std::chrono::milliseconds& out) {
    double value = 0;
    auto const* end = text.data() + text.size();
    auto [unit, ec] = std::from_chars(text.data(), end, value);
    if (ec != std::errc{} || value < 0) return "expected a duration such as 30s, 500ms or 2m";
    std::string_view const suffix{unit, static_cast<std::size_t>(end - unit)};
    double ms = 0;
    if (suffix.empty() || suffix == "s") ms = value * 1000;
    else if (suffix == "ms") ms = value;
    else if (suffix == "m") ms = value * 60'000;
    else return "unknown unit \"" + std::string{suffix} + "\" (use ms, s or m)";
    if (ms < 1) return "must be at least 1ms";
    out = std::chrono::milliseconds{static_cast<long long>(ms)};
    return {};
}

void add_duration(CLI::App& app, std::string const& name, std::chrono::milliseconds& target,
                  std::string const& help) {
    auto const ms = target.count();
    auto const shown = ms % 1000 == 0 ? std::to_string(ms / 1000) + "s" : std::to_string(ms) + "ms";
    app.add_option_function<std::string>(
           name,
           [&target, name](std::string const& v) {
               if (auto err = parse_duration(v, target); !err.empty())
                   throw CLI::ValidationError(name, err);
           },
           help)
        ->type_name("DURATION")
        ->default_str(shown);
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"wscoro: WebSocket server and client (C++20 coroutines, Boost.Beast)"};
    app.require_subcommand(1);
    app.set_version_flag("--version", std::string{"wscoro 0.1.0"});

    wscoro::cli::serve_options serve;
    auto* s = app.add_subcommand("serve", "run a WebSocket server (with /, /healthz and /metrics over HTTP)");
    s->add_option("--host", serve.host, "address to listen on")->capture_default_str();
    s->add_option("--port", serve.port, "port to listen on; 0 = any free port")
        ->check(CLI::Range(0u, 65535u))
        ->capture_default_str();
    s->add_option("--path", serve.path, "WebSocket endpoint path")
        ->check([](std::string const& p) { return p.empty() || p[0] != '/' ? "must start with /" : ""; })
        ->capture_default_str();
    std::map<std::string, serve_mode> const modes{
        {"echo", serve_mode::echo}, {"broadcast", serve_mode::broadcast}, {"chat", serve_mode::chat}};
    s->add_option("--mode", serve.mode,
                  "echo: back to the sender; broadcast: to every client; chat: broadcast with nicknames")
        ->transform(CLI::CheckedTransformer(modes, CLI::ignore_case).description(""))
        ->type_name("echo|broadcast|chat")
        ->default_str("chat");
    s->add_option("--max-connections", serve.max_connections, "0 = unlimited; beyond it upgrades get 503")
        ->capture_default_str();
    s->add_option("--max-connections-per-ip", serve.max_connections_per_ip,
                  "0 = unlimited; beyond it upgrades from that address get 503")
        ->capture_default_str();
    s->add_option("--threads", serve.threads, "I/O threads")->check(CLI::Range(1, 256))->capture_default_str();
    add_duration(*s, "--ping-interval", serve.ping_interval, "how often to ping each client");
    add_duration(*s, "--pong-wait", serve.pong_wait, "drop a client heard nothing from for this long");
    s->add_option("--max-message-size", serve.max_message_size, "bytes; larger messages close with 1009")
        ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 32))
        ->capture_default_str();

    wscoro::cli::client_options client;
    auto* c = app.add_subcommand("client", "connect to URL: send stdin lines, print what arrives");
    c->add_option("url", client.url, "ws://host[:port]/path")->required();
    c->add_flag("--echo", client.echo, "send every received message back unchanged until the server closes");
    c->add_flag("--json", client.json, "pretty-print received JSON");
    c->add_option("-H,--header", client.headers, "extra upgrade request header \"Name: value\" (repeatable)");
    c->add_flag("--reconnect", client.reconnect, "reconnect when the connection is lost");
    add_duration(*c, "--ping-interval", client.ping_interval, "how often to ping the server");
    add_duration(*c, "--linger", client.linger, "after the end of input, wait up to this long for replies");

    try {
        app.parse(argc, argv);
    } catch (CLI::CallForHelp const&) {
        std::cout << app.help();  // the help of the sub-command, if one was named
        return 0;
    } catch (CLI::CallForVersion const& e) {
        std::cout << e.what() << "\n";
        return 0;
    } catch (CLI::ParseError const& e) {
        if (e.get_exit_code() == 0) return app.exit(e);  // --help of a sub-command
        std::cerr << "wscoro: " << e.what() << " (see wscoro --help)\n";
        return 2;
    }
    if (s->parsed()) return wscoro::cli::serve(serve);
    return wscoro::cli::client(client);
}
