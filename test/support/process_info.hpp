#pragma once
// What a test can read about its own process (Linux /proc): to show that a server or client
// leaves no thread behind.
#include <fstream>
#include <string>

namespace wscoro::test {

/// Threads that may appear during a test without being ours: ThreadSanitizer starts a background
/// thread of its own when it first needs it.
#if defined(__SANITIZE_THREAD__)
constexpr int foreign_threads = 1;
#else
constexpr int foreign_threads = 0;
#endif

/// Threads of this process.
inline int thread_count() {
    std::ifstream status{"/proc/self/status"};
    std::string line;
    while (std::getline(status, line))
        if (line.rfind("Threads:", 0) == 0) return std::stoi(line.substr(8));
    return -1;
}

}  // namespace wscoro::test
