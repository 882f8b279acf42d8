#pragma once
// A child process for tests (POSIX): started with posix_spawn, its standard output on a pipe that
// the test reads line by line with a bound, and killed (SIGKILL) and reaped by the destructor, so
// that no process outlives a test, even one that failed half-way.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

extern char** environ;

namespace wscoro::test {

class child_process {
public:
    /// Starts `argv[0]` (a path) with these arguments. Standard error goes to /dev/null unless
    /// `keep_stderr` (then it is the test's). Throws std::runtime_error if it cannot be started.
    explicit child_process(std::vector<std::string> argv, bool keep_stderr = false) {
        int fds[2];
        if (::pipe2(fds, O_CLOEXEC) != 0)
            throw std::runtime_error{"pipe: " + std::string{std::strerror(errno)}};
        out_ = fds[0];
        posix_spawn_file_actions_t actions;
        posix_spawn_file_actions_init(&actions);
        posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);  // dup2 clears CLOEXEC
        if (!keep_stderr)
            posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
        // Asio's sockets are not close-on-exec: a child holding a copy of a test's socket would
        // keep that connection open after the test closed it.
        posix_spawn_file_actions_addclosefrom_np(&actions, 3);
        std::vector<char*> args;
        for (auto& a : argv) args.push_back(a.data());
        args.push_back(nullptr);
        int const rc = ::posix_spawn(&pid_, args[0], &actions, nullptr, args.data(), environ);
        posix_spawn_file_actions_destroy(&actions);
        ::close(fds[1]);
        if (rc != 0) {
            ::close(out_);
            pid_ = -1;
            throw std::runtime_error{"posix_spawn " + argv.at(0) + ": " + std::strerror(rc)};
        }
    }
    child_process(child_process const&) = delete;
    child_process& operator=(child_process const&) = delete;
    ~child_process() {
        kill(SIGKILL);
        wait();
        ::close(out_);
    }

    pid_t pid() const noexcept { return pid_; }

    /// The next line of standard output (without '\n'), or nullopt after `limit` or at the end of
    /// the output.
    std::optional<std::string> read_line(std::chrono::milliseconds limit) {
        auto const deadline = std::chrono::steady_clock::now() + limit;
        for (;;) {
            if (auto nl = buffer_.find('\n'); nl != std::string::npos) {
                std::string line = buffer_.substr(0, nl);
                buffer_.erase(0, nl + 1);
                return line;
            }
            auto const left = std::chrono::duration_cast<std::chrono::milliseconds>(
                deadline - std::chrono::steady_clock::now());
            if (left.count() <= 0) return std::nullopt;
            pollfd p{out_, POLLIN, 0};
            int const n = ::poll(&p, 1, static_cast<int>(left.count()));
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) return std::nullopt;
            char chunk[512];
            auto const got = ::read(out_, chunk, sizeof chunk);
            if (got < 0 && errno == EINTR) continue;
            if (got <= 0) return std::nullopt;  // end of output: the child closed it or exited
            buffer_.append(chunk, static_cast<std::size_t>(got));
        }
    }

    /// Sends `sig` (no-op once reaped).
    void kill(int sig) {
        if (pid_ > 0) ::kill(pid_, sig);
    }

    /// Reaps the child (blocks until it exits); returns the raw wait status, or nullopt when it was
    /// already reaped.
    std::optional<int> wait() {
        if (pid_ <= 0) return std::nullopt;
        int status = 0;
        while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
        }
        pid_ = -1;
        return status;
    }

private:
    pid_t pid_ = -1;
    int out_ = -1;
    std::string buffer_;
};

}  // namespace wscoro::test
