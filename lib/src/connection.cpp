#include <wscoro/connection.hpp>

#include "deferred_flush.hpp"
#include "net.hpp"

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/compose.hpp>
#include <boost/beast/websocket/error.hpp>

#include <cstring>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>

namespace wscoro {

using std::chrono::steady_clock;

namespace {
constexpr std::size_t max_close_reason = 123;  // a control frame's payload, less the 2-byte code

using io_strand = asio::strand<asio::io_context::executor_type>;  // see detail::make_connection_executor

asio::any_io_executor inner_executor(asio::any_io_executor const& strand) {
    if (auto const* s = strand.target<io_strand>()) return s->get_inner_executor();
    return strand;
}

detail::deferred_flush* flusher_for(asio::any_io_executor const& io) {
    if (!detail::single_threaded(io)) return nullptr;
    return &asio::use_service<detail::deferred_flush>(asio::query(io, asio::execution::context));
}
}  // namespace

connection::connection(executor_type strand, connection_info info, std::shared_ptr<connection_options const> opts)
    : strand_(std::move(strand)), id_(std::move(info.id)),
      remote_address_(std::move(info.remote_address)), target_(std::move(info.target)), headers_(info.headers),
      connected_at_(info.connected_at), opts_(std::move(opts)),
      // Data items hold one of send_queue_limit reservations; the three extra slots are for at most
      // one ping, one close and one flush request, so enqueue() never finds the channel full.
      out_(channel_executor{&strand_}, opts_->send_queue_limit + 3), in_(channel_executor{&strand_}, inbound_capacity),
      flusher_(flusher_for(inner_executor(strand_))) {}

connection::~connection() = default;

bool connection::on_strand() const noexcept {
    if (auto const* s = strand_.target<io_strand>()) return s->running_in_this_thread();
    // No strand: the thread of a single-threaded io_context, which every connection on it shares.
    // Ours is running when our consumer is in a batch (it runs callbacks without suspending in
    // between); any other code on this thread is another connection's (on_only_thread).
    if (auto const* io = strand_.target<asio::io_context::executor_type>())
        return io->running_in_this_thread() && consumer_flushes_;  // never read from elsewhere
    return false;
}

bool connection::on_only_thread() const noexcept {
    if (!flusher_) return false;
    if (auto const* s = strand_.target<io_strand>()) return s->get_inner_executor().running_in_this_thread();
    auto const* io = strand_.target<asio::io_context::executor_type>();
    return io && io->running_in_this_thread();
}

connection::executor_type connection::io_executor() const { return inner_executor(strand_); }

std::string connection::user_agent() const {
    return std::string{headers_.find("User-Agent")};
}

std::chrono::milliseconds connection::uptime() const {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now() -
                                                                 connected_at_);
}

error_code connection::disconnect_reason() const {
    std::lock_guard lock{end_mutex_};
    return reason_;
}

close_reason connection::last_close() const {
    std::lock_guard lock{end_mutex_};
    close_reason r{last_close_code_};
    r.reason = last_close_reason_;
    return r;
}

void connection::record_close(close_code code, std::string_view reason) {
    std::lock_guard lock{end_mutex_};
    last_close_code_ = code;
    last_close_reason_.assign(reason);
}

asio::steady_timer& connection::waiters(std::unique_ptr<asio::steady_timer>& timer) {
    if (!timer)
        timer = std::make_unique<asio::steady_timer>(strand_, steady_clock::time_point::max());
    return *timer;
}

bool connection::try_reserve(std::size_t bytes) noexcept {
    auto n = queued_.load(std::memory_order_relaxed);
    do {
        if (n >= opts_->send_queue_limit) return false;
    } while (!queued_.compare_exchange_weak(n, n + 1, std::memory_order_relaxed));
    // The bytes: one message larger than send_queue_bytes still fits into an empty queue (else it
    // could never be sent); otherwise the total stays within the bound.
    auto const before = queued_bytes_.fetch_add(bytes, std::memory_order_relaxed);
    if (before > 0 && before + bytes > opts_->send_queue_bytes) {
        queued_bytes_.fetch_sub(bytes, std::memory_order_relaxed);
        queued_.fetch_sub(1, std::memory_order_relaxed);
        return false;
    }
    return true;
}

void connection::enqueue(outbound item) {
    // The write loop waits with nothing queued: writing now keeps the order and saves waking it.
    if (item.what == outbound::kind::data && write_parked_ && try_write_now(item)) {
        dequeued(item);
        return;
    }
    write_parked_ = false;  // this item wakes it
    // Cannot fail for lack of room (see the constructor); fails only once the channel is closed,
    // and then the connection has ended and the message has nowhere to go.
    auto const bytes = item.msg.size();
    if (!out_.try_send(error_code{}, std::move(item)) && item.what == outbound::kind::data) {
        queued_.fetch_sub(1, std::memory_order_relaxed);
        queued_bytes_.fetch_sub(bytes, std::memory_order_relaxed);
    }
}

error_code connection::send(message m) {
    if (!is_open()) return error::not_connected;
    if (!try_reserve(m.size())) {
        if (opts_->on_overflow == overflow_policy::close_connection) overflowed();
        return error::send_queue_full;
    }
    // On the strand already (a callback replying): enqueue at once. (dispatch would run inline
    // too, but only after type-erasing the function for the strand: an allocation per message.)
    if (on_strand()) {
        enqueue(outbound::data(std::move(m)));
        return {};
    }
    // Another connection's callback (a broadcast) on the only thread: no hop needed either.
    if (on_only_thread()) {
        enqueue(outbound::data(std::move(m), /*from_elsewhere=*/true));
        return {};
    }
    asio::post(strand_, [self = shared_from_this(), m = std::move(m)]() mutable {
        self->enqueue(outbound::data(std::move(m), /*from_elsewhere=*/true));
    });
    return {};
}

void connection::overflowed() {
    asio::dispatch(strand_, [self = shared_from_this()] {
        if (self->state_.load() != state::open) return;
        // The peer cannot keep up: what is queued will not reach it in time, so drop it and say why.
        self->drop_queued_ = true;
        self->count(&metrics::send_queue_overflows);
        self->close_error_ = error::send_queue_full;  // reported once the close is done
        self->close(close_code::policy_error, "send queue overflow");
    });
}

void connection::close(close_code code, std::string reason) {
    asio::dispatch(strand_, [self = shared_from_this(), code, reason = std::move(reason)]() mutable {
        if (self->close_queued_ || self->state_.load() == state::closed) return;
        self->close_queued_ = true;
        self->state_.store(state::closing, std::memory_order_release);
        // A close frame has room for 123 bytes of reason (RFC 6455 5.5): cut a longer one between
        // UTF-8 characters rather than fail.
        if (reason.size() > max_close_reason) {
            auto end = max_close_reason;
            while (end > 0 && (static_cast<unsigned char>(reason[end]) & 0xC0) == 0x80) --end;
            reason.resize(end);
        }
        self->enqueue(outbound::close_frame(code, std::move(reason)));
        // Waiting senders fail with not_connected.
        if (self->space_available_) self->space_available_->cancel();
    });
}

void connection::abort(error_code why) {
    asio::dispatch(strand_, [self = shared_from_this(), why] {
        if (self->state_.load() == state::closed) return;
        self->state_.store(state::closing, std::memory_order_release);
        self->abort_reason_ = why;
        self->drop_queued_ = true;
        self->wake_keepalive();  // the keepalive loop returns abort_reason_, ending run()
    });
}

void connection::request_ping() {
    if (ping_queued_ || state_.load() != state::open) return;
    ping_queued_ = true;
    enqueue(outbound::ping());
}

void connection::request_flush() {
    if (flush_queued_) return;
    flush_queued_ = true;
    enqueue(outbound::flush_request());
}

bool connection::hand_off(message m) {
    auto const bytes = m.size();
    if (!in_.try_send(error_code{}, std::move(m))) return false;  // closed: the connection ended
    ++inbound_count_;
    inbound_bytes_ += bytes;
    return true;
}

bool connection::take_inbound(message& m) {
    bool const got = in_.try_receive([&m](error_code, message taken) { m = std::move(taken); });
    if (got) took_inbound(m);
    return got;
}

void connection::took_inbound(message const& m) {
    --inbound_count_;
    inbound_bytes_ -= m.size();
    if (inbound_waiter_) inbound_taken_->cancel();  // the waiter made it
    // The connection ended while the consumer still had messages to take: now it has them all.
    if (inbound_ended_ && inbound_count_ == 0) in_.close();
}

void connection::pong_received(std::string_view payload) {
    // Our pings carry the steady_clock time they were queued at (see stream_connection).
    std::int64_t sent = 0;
    if (payload.size() != sizeof sent) return;
    std::memcpy(&sent, payload.data(), sizeof sent);
    auto const now = std::chrono::duration_cast<std::chrono::microseconds>(
                         steady_clock::now().time_since_epoch()).count();
    if (sent <= 0 || sent > now) return;
    last_rtt_us_.store(now - sent, std::memory_order_relaxed);
    if (metrics_) metrics_->add_ping_rtt(std::chrono::microseconds{now - sent});
}

void connection::dequeued(outbound const& item) {
    if (item.what == outbound::kind::ping) ping_queued_ = false;
    if (item.what == outbound::kind::flush) flush_queued_ = false;
    if (item.what != outbound::kind::data) return;
    queued_.fetch_sub(1, std::memory_order_relaxed);
    queued_bytes_.fetch_sub(item.msg.size(), std::memory_order_relaxed);
    if (space_waiters_ > 0) space_available_->cancel_one();
}

asio::awaitable<error_code> connection::run() { return run_loops(); }

void connection::finish(error_code why) {
    if (why == websocket::error::closed) why = {};  // a completed closing handshake is a clean end
    {
        std::lock_guard lock{end_mutex_};
        reason_ = why;
    }
    state_.store(state::closed, std::memory_order_release);
    if (finished_hook_) finished_hook_(*this);  // e.g. leave the server's registry
    out_.close();
    // The consumer's pending receive fails: the end of the message stream. Messages handed off and
    // not yet taken are taken first (took_inbound closes it then).
    inbound_ended_ = true;
    if (inbound_count_ == 0) in_.close();
    if (space_available_) space_available_->cancel();
    if (closed_) closed_->cancel();
}

// The asynchronous operations below run their bodies on the strand: each hop there is
// dispatch(bind_executor(strand_, self)), and waits on the strand's timers are bound to the strand.
// Completions reach the caller through its own executor (async_compose's `complete`).

// async_send: reserve a slot (waiting while there is none) and enqueue.
struct connection::send_op {
    connection_ptr self;
    message msg;
    enum { start, on_strand, woke } step = start;

    template <class Self> void operator()(Self& s, error_code = {}) {
        switch (step) {
        case start:
            step = on_strand;
            return asio::dispatch(asio::bind_executor(self->strand_, std::move(s)));
        case woke:
            --self->space_waiters_;
            // Cancelled by the caller (e.g. `async_send(...) || timer`): a freed slot (cancel_one)
            // and a cancellation both wake us with operation_aborted, so ask the cancellation state.
            // Without this the op waited again, swallowing the cancellation: the caller hung until
            // the peer read, and the message it gave up on was sent anyway.
            if (s.cancelled() != asio::cancellation_type::none) {
                // A slot freed for us at the same moment goes to the next waiter instead.
                if (self->space_waiters_ > 0)
                    self->space_available_->cancel_one();
                return s.complete(asio::error::operation_aborted);  // nothing was queued
            }
            [[fallthrough]];
        case on_strand:
            if (!self->is_open()) return s.complete(error::not_connected);
            if (self->try_reserve(msg.size())) {
                self->enqueue(outbound::data(std::move(msg)));
                return s.complete(error_code{});
            }
            step = woke;
            ++self->space_waiters_;
            // Completes when dequeued() frees a slot, or close()/finish() cancel every waiter.
            return self->waiters(self->space_available_)
                .async_wait(asio::bind_executor(self->strand_, std::move(s)));
        }
    }
};

void connection::initiate_send(message m, asio::any_completion_handler<completion_signature> handler) {
    asio::async_compose<asio::any_completion_handler<completion_signature>, completion_signature>(
        send_op{shared_from_this(), std::move(m)}, handler, strand_);
}

// async_receive: take the next message from the read loop; at the end, say how the stream ended.
struct connection::receive_op {
    connection_ptr self;
    enum { start, on_strand, received } step = start;

    error_code end_of_stream() const {
        auto why = self->disconnect_reason();
        return why ? why : error_code{websocket::error::closed};
    }

    template <class Self> void operator()(Self& s, error_code ec = {}, message m = {}) {
        switch (step) {
        case start:
            step = on_strand;
            return asio::dispatch(asio::bind_executor(self->strand_, std::move(s)));
        case on_strand: {
            message ready;
            if (self->take_inbound(ready)) return s.complete(error_code{}, std::move(ready));
            if (self->state_.load() == state::closed) return s.complete(end_of_stream(), message{});
            self->consumer_idle();  // it asks for more than there is: its replies are complete
            step = received;
            // Bound to the strand: 1.81 channels cannot complete on any_completion_executor.
            return self->in_.async_receive(asio::bind_executor(self->strand_, std::move(s)));
        }
        case received:
            if (!ec) self->took_inbound(m);
            // Cancelled by the caller: the channel says channel_cancelled (not operation_aborted);
            // report it like any Asio operation, not as the end of the stream (the connection is
            // still open). Channel closed by finish(): the stream ended.
            if (ec == asio::experimental::error::channel_cancelled) ec = asio::error::operation_aborted;
            else if (ec && ec != asio::error::operation_aborted) ec = end_of_stream();
            return s.complete(ec, std::move(m));
        }
    }
};

void connection::initiate_receive(asio::any_completion_handler<receive_signature> handler) {
    asio::async_compose<asio::any_completion_handler<receive_signature>, receive_signature>(
        receive_op{shared_from_this()}, handler, strand_);
}

// async_wait_closed: wait for finish() to cancel closed_, then report the reason.
struct connection::wait_closed_op {
    connection_ptr self;
    enum { start, on_strand, woke } step = start;

    template <class Self> void operator()(Self& s, error_code = {}) {
        switch (step) {
        case start:
            step = on_strand;
            return asio::dispatch(asio::bind_executor(self->strand_, std::move(s)));
        case on_strand:
            if (self->state_.load() != state::closed) {
                step = woke;
                return self->waiters(self->closed_)
                    .async_wait(asio::bind_executor(self->strand_, std::move(s)));
            }
            return s.complete(self->disconnect_reason());
        case woke:  // by finish(), or by the caller's cancellation
            if (self->state_.load() != state::closed) return s.complete(asio::error::operation_aborted);
            return s.complete(self->disconnect_reason());
        }
    }
};

void connection::initiate_wait_closed(asio::any_completion_handler<completion_signature> handler) {
    asio::async_compose<asio::any_completion_handler<completion_signature>, completion_signature>(
        wait_closed_op{shared_from_this()}, handler, strand_);
}

}  // namespace wscoro
