#pragma once
// What the two callback facades share: running user callbacks safely, and owning I/O threads.
#include <wscoro/error.hpp>
#include <wscoro/listener.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include <exception>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace wscoro::detail {

/// Calls a user callback. An exception is reported through on_error (callback_failed) instead of
/// unwinding into the I/O loop; returns false in that case.
template <class F, class... Args>
bool invoke_callback(F const& f, error_handler const& on_error, std::string_view what, Args&&... args) {
    if (!f) return true;
    try {
        f(std::forward<Args>(args)...);
        return true;
    } catch (std::exception const& e) {
        if (on_error) on_error(error::callback_failed, std::string{what} + " callback threw: " + e.what());
    } catch (...) {
        if (on_error) on_error(error::callback_failed, std::string{what} + " callback threw");
    }
    return false;
}

/// The I/O threads of a facade: n threads, each running an io_context of its own (constructed with
/// concurrency hint 1). Shared by the threads themselves, so that a facade stopped from one of its
/// own callbacks can let them finish on their own (detached).
///
/// Why not one io_context run by n threads: its threads share one queue and one reactor, so every
/// handler of every connection passes through a contended lock and the threads wake each other
/// for each other's work. Measured (bench/RESULTS.md), two threads on two cores served echo slower
/// than one thread. With a context per thread, a connection lives on one thread from accept to
/// close (the listener spreads them in turn), and each thread keeps the single-thread fast paths
/// (deferred_flush.hpp) for its own connections.
class io_threads : public std::enable_shared_from_this<io_threads> {
public:
    explicit io_threads(std::size_t n);

    /// The first thread's context: the listener's (and the client's) home.
    asio::io_context& main() noexcept { return *contexts_.front(); }
    /// Every context's executor, the main one first.
    std::vector<asio::any_io_executor> executors() const;

    void start();
    /// True on one of these threads.
    bool is_current() const;
    /// Joins the threads; when called from one of them, detaches them instead.
    void join();

private:
    std::vector<std::unique_ptr<asio::io_context>> contexts_;
    // The other contexts have no work while they serve no connection: they keep running until the
    // main context (whose work includes the listener's run(), which drains every connection) ends.
    using work_guard = asio::executor_work_guard<asio::io_context::executor_type>;
    std::vector<work_guard> idle_guards_;
    std::vector<std::thread> threads_;
};

}  // namespace wscoro::detail
