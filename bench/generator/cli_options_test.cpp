// The command line both generators share: what each option parses to, what is refused and with
// which message, and that a generator's own check runs before the shared ones.
#include "cli_options.hpp"  // first: proves the header is self-contained

#include <doctest/doctest.h>

#include <unistd.h>

#include <cstddef>
#include <cstdio>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace bench = wscoro::bench;

namespace {

std::string refuse_connect(bench::options const& o) {
    return o.scenario == bench::scenario::connect ? "no connect here" : "";
}
std::string accept_all(bench::options const&) { return {}; }

struct outcome {
    std::optional<int> status;
    std::string out;  // stdout
    std::string err;  // stderr
};

// What stdout (fd 1) or stderr (fd 2) gets while it lives; the descriptor is put back after.
class capture {
public:
    explicit capture(int fd) : fd_(fd), saved_(::dup(fd)), file_(std::tmpfile()) {
        REQUIRE(saved_ >= 0);
        REQUIRE(file_ != nullptr);
        std::fflush(stream());  // what was written before is not ours
        ::dup2(::fileno(file_), fd_);
    }
    capture(capture const&) = delete;
    ~capture() {
        std::fflush(stream());
        ::dup2(saved_, fd_);
        ::close(saved_);
        std::fclose(file_);
    }
    std::string text() {
        std::fflush(stream());
        std::string out;
        std::rewind(file_);
        for (int c; (c = std::fgetc(file_)) != EOF;) out += static_cast<char>(c);
        return out;
    }

private:
    std::FILE* stream() const { return fd_ == 1 ? stdout : stderr; }

    int fd_;
    int saved_;
    std::FILE* file_;
};

outcome parse(std::vector<char const*> const& args, bench::options& o,
              std::string (*check)(bench::options const&) = accept_all) {
    std::vector<char*> argv{const_cast<char*>("gen")};  // CLI11 does not write to them
    for (auto const* a : args) argv.push_back(const_cast<char*>(a));
    bench::command_line const cl{.description = "gen: a test",
                                 .scenario_help = "echo | broadcast | connect",
                                 .scenarios = "echo, broadcast or connect",
                                 .check = check};
    outcome r;
    capture out{1}, err{2};
    r.status = bench::parse_command_line(static_cast<int>(argv.size()), argv.data(), cl, o);
    r.out = out.text();
    r.err = err.text();
    return r;
}

}  // namespace

TEST_CASE("the defaults are those of the help text and sizes take binary units") {
    bench::options o;
    auto r = parse({"--url", "ws://127.0.0.1:1/", "--scenario", "broadcast"}, o);
    CHECK_FALSE(r.status.has_value());
    CHECK(r.err.empty());
    CHECK(o.scenario == bench::scenario::broadcast);
    CHECK(o.connections == 100);
    CHECK(o.size == 32);
    CHECK(o.duration.count() == 8.0);
    CHECK(o.warmup.count() == 2.0);
    CHECK_FALSE(o.server_pid.has_value());

    std::pair<char const*, std::size_t> const sizes[] = {
        {"64k", 65536}, {"64KiB", 65536}, {"1MiB", 1048576}, {"100b", 100}, {"2m", 2097152}};
    for (auto const& [text, bytes] : sizes) {
        bench::options sized;
        r = parse({"--url", "ws://h/", "--scenario", "echo", "--size", text}, sized);
        CHECK_MESSAGE(!r.status.has_value(), text);
        CHECK(sized.size == bytes);
    }
}

TEST_CASE("bad values are refused with exit status 2 and the option named") {
    struct bad {
        std::vector<char const*> args;
        char const* message;
    };
    for (auto const& [args, message] : std::vector<bad>{
             bad{{"--scenario", "echo"}, "gen: --url is required (see --help)\n"},
             bad{{"--url", "u", "--scenario", "nope"},
                 "gen: --scenario: \"nope\" is not echo, broadcast or connect (see --help)\n"},
             bad{{"--url", "u", "--scenario", "echo", "--size", "2g"},
                 "gen: --size: unknown unit \"g\" (use k/KiB or m/MiB) (see --help)\n"},
             bad{{"--url", "u", "--scenario", "echo", "--size", "2048m"},
                 "gen: --size: at most 1 GiB (see --help)\n"},
             bad{{"--url", "u", "--scenario", "echo", "--size", "15"},
                 "gen: --size: at least 16 bytes (the verifiable header)\n"},
             bad{{"--url", "u", "--scenario", "broadcast", "--size", "19"},
                 "gen: --size: at least 20 bytes (the verifiable header)\n"},
             bad{{"--url", "u", "--scenario", "echo", "--duration", "0"},
                 "gen: --duration: must be positive\n"},
             bad{{"--url", "u", "--scenario", "echo", "--warmup", "-1"},
                 "gen: --warmup: must not be negative\n"},
             bad{{"--url", "u", "--scenario", "echo", "--connections", "0"},
                 "gen: --connections: Value 0 not in range 1 to 1000000 (see --help)\n"},
         }) {
        bench::options o;
        auto const r = parse(args, o);
        CHECK(r.status == 2);
        CHECK(r.err == message);
    }
}

TEST_CASE("the generator's own check runs first and connect skips the payload check") {
    bench::options o;
    auto r = parse({"--url", "u", "--scenario", "connect", "--size", "1"}, o, refuse_connect);
    CHECK(r.status == 2);
    CHECK(r.err == "gen: no connect here\n");

    bench::options connect;
    r = parse({"--url", "u", "--scenario", "connect", "--size", "1"}, connect);
    CHECK_FALSE(r.status.has_value());
    CHECK(connect.size == 1);
}

TEST_CASE("help goes to stdout with exit status 0") {
    bench::options o;
    auto const r = parse({"--help"}, o);
    CHECK(r.status == 0);
    CHECK(r.err.empty());
    CHECK(r.out.find("gen: a test\n") == 0);
    CHECK(r.out.find("--scenario NAME REQUIRED    echo | broadcast | connect") !=
          std::string::npos);
}

TEST_CASE("too many connections for the open-files limit are refused") {
    capture err{2};
    CHECK(bench::fit_open_files_limit(1, 16));
    CHECK_FALSE(bench::fit_open_files_limit(std::size_t{1} << 40, 16));
    CHECK(err.text().find("gen: 1099511627776 connections need 1099511627792 open files") == 0);
}
