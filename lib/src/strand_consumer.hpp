#pragma once
// The callback facades' way of taking messages: their consumer, on the connection's thread, takes
// every message the read loop already handed off without an asynchronous operation each, and says
// when it ran out, so that the replies its callbacks sent leave in one write.
#include "handler_memory.hpp"
#include "stream_connection.hpp"  // wait_tuple

#include <wscoro/connection.hpp>

#include <boost/asio/bind_allocator.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/io_context.hpp>

#include <stdexcept>

namespace wscoro::detail {

/// Used by one consumer on the connection's executor: the client facade's coroutine,
///
///     message m;
///     if (!consumer.try_take(m)) {
///         auto [ec, next] = co_await consumer.async_receive();
///         if (ec) break;  // the stream ended
///         m = std::move(next);
///         consumer.took(m);
///     }
///
/// or the server facade's completion handlers (server.cpp), which do the same without a frame.
class strand_consumer {
public:
    /// A facade's connection runs on one of its io_threads, an io_context{1}, and therefore on the
    /// io_context's own executor (no strand: make_connection_executor). Anything else is a bug.
    explicit strand_consumer(connection& c) : c_(c), ex_(io_executor_of(c)) {}
    strand_consumer(strand_consumer const&) = delete;
    strand_consumer& operator=(strand_consumer const&) = delete;

    /// The next message if one is waiting (never waits). When none is, what the callbacks sent
    /// so far is complete, and it goes out now; the caller then waits with async_receive().
    bool try_take(message& m) {
        if (!c_.take_inbound(m)) {
            c_.consumer_flushes_ = false;
            c_.consumer_idle();
            return false;
        }
        in_batch();
        return true;
    }

    /// Waits for the next message: c.async_receive() without its hop to the connection's executor
    /// (the caller runs there already). Then took(), or on an error the stream has ended.
    /// - By default a deferred operation, awaited in the caller's frame: the wait of an idle
    ///   connection (see wait_tuple). A handler (void(error_code, message)) works too.
    /// - It completes through the io_context's concrete executor, with its memory (the channel's
    ///   receive operation, then the posted completion) from a block of this consumer's own.
    ///   Through any_io_executor the completion was wrapped in a type-erased function whose memory
    ///   came from Asio's per-thread cache, which a burst of ready connections empties
    ///   (handler_memory.hpp); the concrete executor takes the handler's allocator instead.
    template <class CompletionToken = decltype(wait_tuple) const&>
    auto async_receive(CompletionToken&& token = wait_tuple) {
        // Boost 1.81's binders cannot wrap a deferred token (no return_type): bind the handler.
        auto bind_to_handler = [this](auto handler) {
            c_.in_.async_receive(asio::bind_executor(
                ex_, asio::bind_allocator(handler_allocator<void>{memory_}, std::move(handler))));
        };
        return asio::async_initiate<CompletionToken, connection::in_signature>(bind_to_handler, token);
    }

    /// `m` came from async_receive().
    void took(message const& m) {
        c_.took_inbound(m);
        in_batch();
    }

private:
    static asio::io_context::executor_type io_executor_of(connection const& c) {
        auto const* ex = c.get_executor().target<asio::io_context::executor_type>();
        if (!ex) throw std::logic_error("wscoro: a facade's connection must run on its io_context's executor");
        return *ex;
    }

    // The replies the callbacks send now are flushed by try_take() once the messages run out,
    // and the read loop may wait for that flush before it reads again (corked_stream::park_read).
    void in_batch() {
        c_.consumer_flushes_ = true;
        c_.prompt_consumer_ = true;
    }

    connection& c_;
    asio::io_context::executor_type ex_;
    handler_memory memory_;
};

}  // namespace wscoro::detail
