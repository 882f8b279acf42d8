#pragma once
// executor_ref<Executor>: an executor that refers to another, which outlives it and every copy.
//
// Why: a connection's two channels each hold their executor, and each pending channel operation
// holds one more (Asio's handler_work, for the channel's own executor). As the connection's
// any_io_executor that is 56 bytes each, three copies per idle connection; as a reference to the
// connection's own executor member, 8. The channels and their operations live inside the
// connection, and every operation on them starts, completes or is cancelled from the
// connection's code while it is alive, so the reference never outlives what it refers to.
//
// What Asio's channels ask of their executor: execute(), equality, the execution context, and
// blocking.never for the completions they post (which go through the referred executor, a copy
// of it). outstanding_work.tracked is a preference that this executor does not take: a channel
// operation keeps no work of its own on the connection's io_context, which the connection's
// socket and timers keep busy anyway; the completion handler's own executor (a coroutine's, a
// facade's) still keeps its work, as Asio's channel operations keep that separately.
#include <boost/asio/execution.hpp>
#include <boost/asio/execution_context.hpp>
#include <boost/asio/query.hpp>
#include <boost/asio/require.hpp>

#include <utility>

namespace wscoro::detail {

template <class Executor> class executor_ref {
public:
    // A pointer, not a reference: a constructor from Executor const& would make clang 14 ask,
    // for every copy of this type, whether it converts to Executor, which asks whether it is an
    // executor, which asks whether it can be copied.
    explicit executor_ref(Executor const* ex) noexcept : ex_(ex) {}
    executor_ref(executor_ref const&) noexcept = default;
    executor_ref& operator=(executor_ref const&) noexcept = default;

    Executor const& target() const noexcept { return *ex_; }

    template <class Function> void execute(Function&& f) const { ex_->execute(std::forward<Function>(f)); }

    boost::asio::execution_context& query(boost::asio::execution::context_t) const noexcept {
        return boost::asio::query(*ex_, boost::asio::execution::context);
    }

    /// The referred executor itself, as it never blocks: what a posted completion goes through.
    auto require(boost::asio::execution::blocking_t::never_t never) const {
        return boost::asio::require(*ex_, never);
    }

    friend bool operator==(executor_ref const& a, executor_ref const& b) noexcept { return *a.ex_ == *b.ex_; }
    friend bool operator!=(executor_ref const& a, executor_ref const& b) noexcept { return !(a == b); }

private:
    Executor const* ex_;
};

}  // namespace wscoro::detail
