#pragma once
// One open WebSocket connection (handshake done), on the server or the client side.
//
// Shape: run() (or spawn_run()) joins three loops on the connection's strand (read, write,
// keepalive); when one ends, the others are cancelled. Outbound messages go through a bounded queue
// drained by the single write loop (one writer, ordered; when it is idle, a reply goes straight to
// the transport's output instead); inbound messages go through a small bounded channel to exactly
// one consumer (the callback facade or the application's coroutine). The transport is a template
// parameter of the implementation (see lib/src/stream_connection.hpp); this class is what every
// user holds, through connection_ptr, and it stays valid after the peer left.
#include <wscoro/config.hpp>
#include <wscoro/detail/executor_ref.hpp>
#include <wscoro/detail/packed_headers.hpp>
#include <wscoro/detail/ring_queue.hpp>
#include <wscoro/detail/small_mutex.hpp>
#include <wscoro/error.hpp>
#include <wscoro/http.hpp>
#include <wscoro/message.hpp>
#include <wscoro/metrics.hpp>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/experimental/basic_channel.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/websocket/rfc6455.hpp>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

namespace wscoro {

namespace detail {
class strand_consumer;  // the callback facades' fast path (lib/src/strand_consumer.hpp)
class deferred_flush;    // broadcast output on a single-threaded io_context (lib/src/deferred_flush.hpp)
}

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = boost::beast::websocket;
using close_code = websocket::close_code;
using close_reason = websocket::close_reason;

/// Who a connection is talking to; filled in by the server (from the upgrade request) or the client.
struct connection_info {
    std::string id;              ///< unique within the process; not derived from anything the peer sent
    std::string remote_address;  ///< "ip:port" of the peer
    std::string target;          ///< request target ("/ws?room=1")
    http_headers headers;        ///< server: the upgrade request's headers; client: the response's
    std::chrono::system_clock::time_point connected_at = std::chrono::system_clock::now();
};

class connection : public std::enable_shared_from_this<connection> {
public:
    /// Serializes everything of this connection (its "strand"): on an io_context made for one
    /// thread (`io_context{1}`), that io_context's own executor; otherwise a strand of it.
    using executor_type = asio::any_io_executor;
    using receive_signature = void(error_code, message);
    using completion_signature = void(error_code);

    connection(connection const&) = delete;
    connection& operator=(connection const&) = delete;
    virtual ~connection();

    // --- identity (immutable, safe from any thread) ---
    std::string const& id() const noexcept { return id_; }
    std::string const& remote_address() const noexcept { return remote_address_; }
    std::string const& target() const noexcept { return target_; }
    /// Server: the upgrade request's headers; client: the response's. Kept packed and turned into
    /// http::fields by the first call (about 85 bytes per header from then on).
    http_headers const& headers() const { return headers_.fields(); }
    /// The User-Agent header's value, if any (read from the packed headers: no unpacking).
    std::string user_agent() const;
    std::chrono::system_clock::time_point connected_at() const noexcept { return connected_at_; }
    std::chrono::milliseconds uptime() const;
    executor_type const& get_executor() const noexcept { return strand_; }
    connection_options const& options() const noexcept { return *opts_; }

    // --- state (safe from any thread) ---
    /// True from the handshake until the connection starts closing.
    bool is_open() const noexcept { return state_.load(std::memory_order_acquire) == state::open; }
    /// Why the connection ended; empty for a clean closing handshake. Meaningful once it ended.
    error_code disconnect_reason() const;
    /// The close frame that ended the connection (received from the peer, else the one sent).
    close_reason last_close() const;
    /// Messages waiting in the outbound queue.
    std::size_t queued() const noexcept { return queued_.load(std::memory_order_relaxed); }
    /// Payload bytes of the messages waiting in the outbound queue.
    std::size_t queued_bytes() const noexcept { return queued_bytes_.load(std::memory_order_relaxed); }
    /// Round trip of the last answered ping (zero before the first pong).
    std::chrono::microseconds ping_rtt() const noexcept {
        return std::chrono::microseconds{last_rtt_us_.load(std::memory_order_relaxed)};
    }
    /// Counts this connection's traffic into `m` (shared with others). Call before run().
    void attach_metrics(std::shared_ptr<metrics> m) noexcept { metrics_ = std::move(m); }
    /// Keeps `context` (the io_context a callback facade owns) alive as long as this connection:
    /// its socket, strand and timers must not outlive their execution context, and an application
    /// may hold a connection_ptr longer than the facade. Call before the connection is shared.
    void keep_context_alive(std::shared_ptr<void const> context) noexcept {
        context_ = std::move(context);
    }

    // --- non-blocking sending, safe from any thread ---
    /// Queues `m` behind earlier messages. Fails with not_connected once closing, and with
    /// send_queue_full when send_queue_limit messages or send_queue_bytes bytes are waiting; with overflow_policy::close_connection
    /// the connection is then closed with 1008 (queued messages are dropped).
    error_code send(message m);
    error_code send_text(std::string text) { return send(message::text(std::move(text))); }
    error_code send_binary(std::string bytes) { return send(message::binary(std::move(bytes))); }
    error_code send_binary(std::span<std::byte const> bytes) { return send(message::binary(bytes)); }
    template <class T> error_code send_json(T const& value) { return send(message::json(value)); }

    /// Starts the closing handshake after the messages already queued. Idempotent.
    void close(close_code code = close_code::normal, std::string reason = {});
    /// Ends the connection now (no closing handshake): the socket is closed, queued messages dropped.
    void abort(error_code why = error::aborted);

    // --- the co_await API: universal asynchronous model, any completion token ---
    /// Handler: void(error_code). Queues `m`; waits while the queue is full (back-pressure).
    template <class CompletionToken> auto async_send(message m, CompletionToken&& token) {
        return asio::async_initiate<CompletionToken, completion_signature>(
            [self = shared_from_this()](auto handler, message m) {
                self->initiate_send(std::move(m), asio::any_completion_handler<completion_signature>(
                                                      std::move(handler)));
            },
            token, std::move(m));
    }
    /// Handler: void(error_code, message). The next message, in order. After the connection ended:
    /// websocket::error::closed for a clean close, else disconnect_reason().
    template <class CompletionToken> auto async_receive(CompletionToken&& token) {
        return asio::async_initiate<CompletionToken, receive_signature>(
            [self = shared_from_this()](auto handler) {
                self->initiate_receive(asio::any_completion_handler<receive_signature>(std::move(handler)));
            },
            token);
    }
    /// Handler: void(error_code). Closes like close() and completes once the connection has ended,
    /// with disconnect_reason() (empty for a clean close).
    template <class CompletionToken>
    auto async_close(close_code code, std::string reason, CompletionToken&& token) {
        return asio::async_initiate<CompletionToken, completion_signature>(
            [self = shared_from_this()](auto handler, close_code code, std::string reason) {
                self->close(code, std::move(reason));
                self->initiate_wait_closed(
                    asio::any_completion_handler<completion_signature>(std::move(handler)));
            },
            token, code, std::move(reason));
    }
    /// Handler: void(error_code). Completes once the connection has ended, with disconnect_reason().
    template <class CompletionToken> auto async_wait_closed(CompletionToken&& token) {
        return asio::async_initiate<CompletionToken, completion_signature>(
            [self = shared_from_this()](auto handler) {
                self->initiate_wait_closed(asio::any_completion_handler<completion_signature>(std::move(handler)));
            },
            token);
    }

    /// Runs the connection until it ends, on its strand; returns disconnect_reason(). Called once, by
    /// whoever made the connection (listener, connect); applications use the functions above.
    asio::awaitable<error_code> run();
    /// Handler of spawn_run(): void(std::exception_ptr, error_code), like co_spawn's for run().
    using run_completion = std::function<void(std::exception_ptr, error_code)>;
    /// Like co_spawn(get_executor(), run(), on_end): starts the loops (on the executor's concrete
    /// type when it has one, an io_context's own) and calls on_end once the connection has ended,
    /// with no coroutine of its own waiting meanwhile (0.7 KB less per idle connection). For
    /// whoever made the connection, like run(); the listener and connect() use it. The connection
    /// stays alive until on_end has been called.
    void spawn_run(run_completion on_end) { spawn_loops(std::move(on_end)); }
    /// Called on the strand when the connection has ended, before consumers learn about it.
    void on_finished(std::function<void(connection&)> hook) { finished_hook_ = std::move(hook); }

protected:
    connection(executor_type strand, connection_info info, std::shared_ptr<connection_options const> opts);

    /// The transport-specific loops, as an awaitable operation; returns the reason the first of
    /// them ended, after calling finish() with it.
    virtual asio::awaitable<error_code> run_loops() = 0;
    /// spawn_run(): the same loops, started with a completion handler.
    virtual void spawn_loops(run_completion on_end) = 0;

    // What the write loop takes from the queue. Kept small (64 bytes): it sits in the write loop's
    // frame for the connection's life, and in the queue once per waiting message. Beast's
    // close_reason alone is 128 bytes, so a close request keeps its parts.
    struct outbound {
        enum class kind : unsigned char { data, ping, close, flush } what = kind::data;
        bool from_elsewhere = false;  // queued from outside the strand (e.g. a broadcast): see write loop
        close_code code = close_code::normal;  // kind::close
        message msg;                           // kind::data
        std::string reason;                    // kind::close: at most 123 bytes (close())

        static outbound data(message m, bool from_elsewhere = false) {
            outbound o;
            o.from_elsewhere = from_elsewhere;
            o.msg = std::move(m);
            return o;
        }
        static outbound control(kind k) {
            outbound o;
            o.what = k;
            return o;
        }
        static outbound ping() { return control(kind::ping); }
        static outbound flush_request() { return control(kind::flush); }
        static outbound close_frame(close_code code, std::string reason) {
            auto o = control(kind::close);
            o.code = code;
            o.reason = std::move(reason);
            return o;
        }
    };
    using out_signature = void(error_code, outbound);
    using in_signature = void(error_code, message);
    // The channels refer to strand_ rather than holding a copy each (see detail::executor_ref).
    using channel_executor = detail::executor_ref<executor_type>;
    static_assert(asio::execution::is_executor<channel_executor>::value);
    using out_channel = asio::experimental::basic_channel<channel_executor, detail::ring_channel_traits<out_signature>,
                                                          out_signature>;
    using in_channel = asio::experimental::basic_channel<channel_executor, detail::ring_channel_traits<in_signature>,
                                                         in_signature>;

    // Shared with the loops; touched only on the strand unless atomic.
    void dequeued(outbound const& item);  // write loop: one data item left the queue
    /// Whether the read loop must wait before reading another message: the consumer has not yet
    /// taken inbound_capacity messages, or read_buffer_size bytes (always room for one message).
    bool inbound_full() const noexcept {
        return inbound_count_ >= inbound_capacity || (inbound_count_ > 0 && inbound_bytes_ >= opts_->read_buffer_size);
    }
    /// Read loop: passes `m` on to the consumer without waiting (inbound_full() was false).
    bool hand_off(message m);
    /// Writes a data item straight into the transport's output, bypassing the write loop, when
    /// that keeps the order (nothing queued ahead of it). False: queue it.
    virtual bool try_write_now(outbound& item) = 0;
    /// The consumer took everything there was: a batch of replies it sent is complete.
    virtual void consumer_idle() = 0;
    /// deferred_flush: the burst of deliveries that try_write_now() appended is over.
    virtual void flush_deferred() = 0;
    /// abort(): the keepalive loop looks at abort_reason_ now (and ends run() with it).
    virtual void wake_keepalive() = 0;
    /// On the io_context's thread, when that is the only one (see deferred_flush).
    bool on_only_thread() const noexcept;
    void request_ping();                  // keepalive loop: queue one ping unless one is waiting
    void request_flush();                 // wake the write loop to flush what was written directly
    void heard_from_peer() { last_seen_ = std::chrono::steady_clock::now(); }
    bool on_strand() const noexcept;  // the caller is this connection's own code, on its strand
    /// What the strand runs on: a post there waits behind all ready work. Derived, not stored: an
    /// executor is 56 bytes, and this is wanted once per broadcast burst.
    executor_type io_executor() const;
    void count(metrics::counter metrics::*which, std::uint64_t n = 1) noexcept {
        if (metrics_) bump((*metrics_).*which, n);
    }
    void pong_received(std::string_view payload);  // measures the round trip of our ping
    void record_close(close_code code, std::string_view reason);
    void finish(error_code why);  // on the strand, once, when the loops have ended
    // A timer on the strand that never expires by itself (waiters wake when it is cancelled), made
    // on first use: most connections never need one, and a timer is 120 bytes.
    asio::steady_timer& waiters(std::unique_ptr<asio::steady_timer>& timer);

    std::shared_ptr<void const> context_;  // first, so destroyed after every I/O object below
    executor_type strand_;
    // connection_info, taken apart: the headers are kept packed (see detail::packed_headers).
    std::string id_;
    std::string remote_address_;
    std::string target_;
    detail::packed_headers headers_;
    std::chrono::system_clock::time_point connected_at_;
    std::shared_ptr<connection_options const> opts_;  // shared by a listener's connections: 16 bytes, not 72
    out_channel out_;  // bounded write queue: send_queue_limit data items + one ping + one close
    // Read loop -> the single consumer. Buffered, so that the frames of one read reach the consumer
    // without a hand-off each, but bounded (inbound_full()): a slow consumer stops the reading.
    in_channel in_;
    static constexpr std::size_t inbound_capacity = 64;
    std::size_t inbound_count_ = 0;  // messages handed off and not yet taken
    std::size_t inbound_bytes_ = 0;  // and their payload bytes
    // The read loop waits on it while inbound_full(). Made by its first wait (waiters()): most
    // consumers keep up, and a timer is 120 bytes.
    std::unique_ptr<asio::steady_timer> inbound_taken_;
    detail::deferred_flush* const flusher_;  // when one thread runs the io_context, else null
    std::chrono::steady_clock::time_point last_seen_ = std::chrono::steady_clock::now();
    // Deadlines, no_deadline when there is none (not std::optional: 8 bytes each instead of 16).
    static constexpr auto no_deadline = std::chrono::steady_clock::time_point::max();
    std::chrono::steady_clock::time_point write_deadline_ = no_deadline;  // while a write is in flight
    std::chrono::steady_clock::time_point close_deadline_ = no_deadline;  // after our close frame went out
    error_code abort_reason_;   // set by abort(): the keepalive loop ends run() with it
    error_code close_error_;    // reported instead of a clean close (e.g. send_queue_full)
    std::shared_ptr<metrics> metrics_;
    std::atomic<std::int64_t> last_rtt_us_{0};
    // The flags sit together: scattered between 8-byte fields, each took 8 bytes.
    bool inbound_waiter_ = false;    // the read loop waits on inbound_taken_
    bool write_parked_ = false;  // the write loop waits for an item: try_write_now() keeps the order
    bool consumer_flushes_ = false;  // a facade consumer is in a batch and calls consumer_idle() after it
    bool prompt_consumer_ = false;   // the consumer is a facade's: it answers without suspending
    bool flush_deferred_pending_ = false;  // added to flusher_, flush_deferred() not yet run
    bool drop_queued_ = false;  // overflow or abort: skip queued data
    bool ping_queued_ = false;

private:
    enum class state : unsigned char { open, closing, closed };

    void initiate_send(message m, asio::any_completion_handler<completion_signature> handler);
    void initiate_receive(asio::any_completion_handler<receive_signature> handler);
    void initiate_wait_closed(asio::any_completion_handler<completion_signature> handler);
    bool try_reserve(std::size_t bytes) noexcept;  // claims a slot and the bytes, or nothing
    void enqueue(outbound item);  // on the strand, with a reserved slot (or a control item)
    void overflowed();
    bool take_inbound(message& m);  // a message the read loop handed off, if there is one
    void took_inbound(message const& m);  // the consumer has `m`: room for the read loop
    friend class detail::strand_consumer;
    friend class detail::deferred_flush;
    friend class listener;  // its session count (below)

    std::atomic<std::size_t> queued_{0};
    std::atomic<std::size_t> queued_bytes_{0};
    // Made by their first waiter (on the strand): most connections never have one, and a timer is
    // 120 bytes.
    std::unique_ptr<asio::steady_timer> space_available_;  // async_send waiters; cancelled when a
                                                           // slot frees up
    std::size_t space_waiters_ = 0;
    std::unique_ptr<asio::steady_timer> closed_;  // async_wait_closed waiters; finish() cancels
    std::function<void(connection&)> finished_hook_;
    error_code reason_;              // guarded by end_mutex_
    std::string last_close_reason_;  // guarded by end_mutex_; last_close(), in parts (see outbound)
    // The small fields together (see the flags above).
    std::atomic<state> state_{state::open};
    bool inbound_ended_ = false;  // finish() ran: close in_ once the consumer has taken what it holds
    bool close_queued_ = false;
    bool flush_queued_ = false;
    mutable detail::small_mutex end_mutex_;  // guards reason_ and last_close_*, read from any thread
    close_code last_close_code_ = close_code::none;  // guarded by end_mutex_
    // The listener's session of this connection ends with its two sides: the loops, and the
    // application saying `done` (a second `done` is ignored). Kept here, in the padding of the
    // fields above, rather than in a shared block of the listener's per connection.
    std::atomic<unsigned char> sides_left_{2};
    std::atomic<bool> application_done_{false};


    struct send_op;
    struct receive_op;
    struct wait_closed_op;
};

using connection_ptr = std::shared_ptr<connection>;

}  // namespace wscoro
