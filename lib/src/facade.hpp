#pragma once
// What the two callback facades share: running user callbacks safely, and owning I/O threads.
#include <wscoro/error.hpp>
#include <wscoro/listener.hpp>

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

/// An io_context and the threads running it. Shared by the threads themselves, so that a facade
/// stopped from one of its own callbacks can let them finish on their own (detached).
class io_threads : public std::enable_shared_from_this<io_threads> {
public:
    explicit io_threads(std::size_t n) : ioc(static_cast<int>(n)), count_(n) {}

    asio::io_context ioc;

    void start();
    /// True on one of these threads.
    bool is_current() const;
    /// Joins the threads; when called from one of them, detaches them instead.
    void join();

private:
    std::size_t count_;
    std::vector<std::thread> threads_;
};

}  // namespace wscoro::detail
