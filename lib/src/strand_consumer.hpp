#pragma once
// The callback facades' way of taking messages: a coroutine on the connection's strand takes every
// message the read loop already handed off without an asynchronous operation each, and says when
// it ran out, so that the replies its callbacks sent leave in one write.
#include "handler_memory.hpp"
#include "stream_connection.hpp"  // wait_tuple

#include <wscoro/connection.hpp>

#include <boost/asio/bind_allocator.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/io_context.hpp>

namespace wscoro::detail {

struct strand_consumer {
    /// The next message if one is waiting (never waits). Call on c's strand only. The caller
    /// promises to call idle() before it waits for more (then its replies need no other flush).
    static bool try_take(connection& c, message& m) {
        if (!c.take_inbound(m)) return false;
        c.consumer_flushes_ = true;
        c.prompt_consumer_ = true;
        return true;
    }
    /// Waits for the next message: c.async_receive(use_awaitable) without its hop to the strand
    /// (the caller runs there already). Then took(), or on an error the stream has ended.
    /// The wait of an idle connection: a deferred operation, awaited in the caller's frame (see
    /// wait_tuple).
    static auto async_receive(connection& c) { return c.in_.async_receive(wait_tuple); }
    /// The same wait, for a connection that runs on `ex`, an io_context's own executor (no strand:
    /// see make_connection_executor). The receive and its posted completion take their memory
    /// from `memory`: through any_io_executor the completion was wrapped in a type-erased function
    /// whose memory always came from Asio's per-thread cache (see handler_memory.hpp), where the
    /// concrete executor takes the handler's allocator.
    static auto async_receive(connection& c, asio::io_context::executor_type const& ex,
                              handler_memory& memory) {
        // Boost 1.81's binders cannot wrap a deferred token (no return_type): bind the handler.
        auto bind_to_handler = [&c, ex, &memory](auto handler) {
            c.in_.async_receive(
                asio::bind_executor(ex, asio::bind_allocator(handler_allocator<void>{memory}, std::move(handler))));
        };
        return asio::async_initiate<decltype(wait_tuple) const, connection::in_signature>(bind_to_handler,
                                                                                         wait_tuple);
    }
    /// Any other executor: the plain wait.
    static auto async_receive(connection& c, asio::any_io_executor const&, handler_memory&) {
        return async_receive(c);
    }
    /// `m` came from async_receive: the same promise as try_take.
    static void took(connection& c, message const& m) {
        c.took_inbound(m);
        c.consumer_flushes_ = true;
        c.prompt_consumer_ = true;
    }
    /// Nothing more is waiting: what the callbacks sent is complete.
    static void idle(connection& c) {
        c.consumer_flushes_ = false;
        c.consumer_idle();
    }
};

}  // namespace wscoro::detail
