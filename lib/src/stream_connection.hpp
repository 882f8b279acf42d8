#pragma once
// The connection's loops over one transport. NextLayer is the stream under the WebSocket layer:
// a TCP socket today, an SSL stream over one for wss:// later; both share this code.
#include "concrete_socket.hpp"
#include "corked_stream.hpp"
#include "frame_header.hpp"
#include "heap_tuple.hpp"
#include "deferred_flush.hpp"
#include "payload_cache.hpp"

#include <wscoro/connection.hpp>

#include <boost/asio/experimental/parallel_group.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/append.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/bind_allocator.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/beast/core/stream_traits.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/websocket/stream.hpp>

#include <cstring>
#include <variant>

namespace wscoro::detail {

inline constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);  // (ec, T...), no throw

/// (ec, T...) like use_tuple, for the one wait of each loop that lasts while the connection is
/// idle. use_awaitable starts a coroutine per operation (176 to 336 bytes, held while it waits); a
/// deferred operation is awaited in the waiting coroutine's own frame instead. But g++ 12 gives
/// every co_await of a frame its own slot for the operation, so the other waits keep use_tuple.
inline constexpr auto wait_tuple = asio::as_tuple(asio::deferred);


/// The WebSocket stream of a connection over NextLayer: writes are batched (corked_stream.hpp).
template <class NextLayer> using corked_websocket = websocket::stream<corked_stream<NextLayer>>;
/// The WebSocket stream over a connection's TCP socket, of whichever type with_concrete_socket
/// gave the socket. A plain socket, not Beast's tcp_stream: its timeouts (a timer per direction
/// and a rate timer, 544 bytes of heap per connection) would serve the handshake only, and the
/// handshake has the WebSocket stream's own timeout (set_handshake_timeout); the keepalive loop
/// watches after it. Its handshake runs in the caller's frame through std::visit: a coroutine per
/// type would free its frame after the handshake into Asio's per-thread cache, where the new
/// connection's long-lived frames would reuse the larger block (~150 bytes lost per connection).
using any_tcp_websocket = std::variant<corked_websocket<asio::ip::tcp::socket>,
                                       corked_websocket<tcp_socket_on<io_executor>>,
                                       corked_websocket<tcp_socket_on<io_strand>>>;
inline any_tcp_websocket make_tcp_websocket(asio::ip::tcp::socket socket) {
    return with_concrete_socket(std::move(socket), [](auto s) {
        return any_tcp_websocket{std::in_place_type<corked_websocket<decltype(s)>>, std::move(s)};
    });
}

/// One operation on the stream that `any_ws` holds, awaitable as one type whichever that is:
/// start(ws, handler) starts it with handler: void(error_code). Through use_heap_tuple().
template <class Start> auto async_on_websocket(any_tcp_websocket& any_ws, Start start) {
    auto token = use_heap_tuple();
    return asio::async_initiate<decltype(token), void(error_code)>(
        [&any_ws, start = std::move(start)](auto handler) mutable {
            std::visit([&](auto& ws) { start(ws, std::move(handler)); }, any_ws);
        },
        token);
}

/// The WebSocket stream's own timer bounds its upgrade: `budget` for the handshake, then (the
/// default, none) nothing, since Beast would also time closing handshakes, which are ours to time.
template <class Stream>
void set_handshake_timeout(Stream& ws, websocket::stream_base::duration budget = websocket::stream_base::none()) {
    ws.set_option(websocket::stream_base::timeout{budget, websocket::stream_base::none(), false});
}

/// LoopExecutor: what the loops' coroutines hold their executor as: the stream's executor type.
/// The type-erased one (connection::executor_type) is 56 bytes against 8 (a strand of an
/// io_context: 24), and each spawned loop holds four copies (its entry point's arguments, work
/// guards and promise): about 0.2 KB per loop of an idle connection. The listener and connect()
/// hand over sockets of the concrete types when they can (concrete_socket.hpp).
template <class NextLayer, class LoopExecutor = typename NextLayer::executor_type>
class stream_connection final : public connection {
public:
    using ws_stream = corked_websocket<NextLayer>;

    stream_connection(ws_stream ws, beast::role_type role, connection_info info,
                      std::shared_ptr<connection_options const> opts)
        : connection(ws.get_executor(), std::move(info), std::move(opts)), ws_(std::move(ws)),
          server_(role == beast::role_type::server) {
        ws_.next_layer().enable_corking(opts_->write_buffer_size);
        ws_.read_message_max(opts_->max_message_size);
        ws_.write_buffer_bytes(std::max<std::size_t>(opts_->write_buffer_size, 8));
        ws_.auto_fragment(false);  // one frame per message: no per-fragment overhead on big payloads
        // A client's control frames (pings, pongs, close) are masked by Beast. Its "secure" generator
        // repeats its output in Boost 1.81 (see masking_key_source); its other one, PCG seeded from
        // std::random_device, at least gives every frame a new key.
        if (!server_) ws_.secure_prng(false);
        // Any control frame proves the peer is alive; a close frame says why it leaves.
        ws_.control_callback([this](websocket::frame_type kind, beast::string_view payload) {
            heard_from_peer();
            if (kind == websocket::frame_type::pong) pong_received({payload.data(), payload.size()});
            if (kind == websocket::frame_type::close) {
                peer_sent_close_ = true;
                auto const& r = ws_.reason();
                record_close(static_cast<close_code>(r.code), {r.reason.data(), r.reason.size()});
                // Beast answers and tears down inside the pending read; as a client it then waits
                // for the server to close TCP. Bound that wait like our own closing handshake.
                if (close_deadline_ == no_deadline) close_deadline_ = std::chrono::steady_clock::now() + opts_->write_wait;
            }
        });
    }

private:
    template <class T> using loop = asio::awaitable<T, LoopExecutor>;
    // The loops' own tokens: their operations complete through LoopExecutor.
    static constexpr asio::use_awaitable_t<LoopExecutor> use_loop_awaitable{};
    static constexpr auto use_tuple = asio::as_tuple(use_loop_awaitable);

    // How the loops ended: why the first one did, and the exception of one that threw (a bug).
    struct loops_end {
        error_code why;
        std::exception_ptr thrown;
    };

    // The first loop to finish decides the outcome; the group cancels the others and waits for
    // them, so no loop outlives the group's completion (start_loops). A deferred operation: the
    // group's seven results fold into one loops_end for that completion.
    auto join_loops() {
        auto const ex = loop_executor();
        return asio::experimental::make_parallel_group(
                   asio::co_spawn(ex, read_loop(), asio::deferred),
                   asio::co_spawn(ex, write_loop(), asio::deferred),
                   asio::co_spawn(ex, keepalive_loop(), asio::deferred))
                   .async_wait(asio::experimental::wait_for_one(), asio::deferred) |
               asio::deferred([](std::array<std::size_t, 3> order, std::exception_ptr x0, error_code e0,
                                 std::exception_ptr x1, error_code e1, std::exception_ptr x2, error_code e2) {
                   auto thrown = x0 ? x0 : x1 ? x1 : x2;
                   return asio::deferred.values(loops_end{std::array{e0, e1, e2}[order[0]], std::move(thrown)});
               });
    }

    // run() for co_await code: the same start as spawn_run's, completing into the awaiting
    // coroutine (on its executor, which keeps work meanwhile). Cancelling the co_await cancels the
    // group, which cancels the loops: the connection ends with operation_aborted.
    asio::awaitable<error_code> run_loops() override {
        return asio::async_initiate<decltype(asio::use_awaitable) const, void(std::exception_ptr, error_code)>(
            [self = std::static_pointer_cast<stream_connection>(shared_from_this())](auto handler) {
                auto const slot = asio::get_associated_cancellation_slot(handler);
                auto work = asio::make_work_guard(asio::get_associated_executor(handler, self->get_executor()));
                auto on_end = [handler = std::move(handler), work = std::move(work)](std::exception_ptr e,
                                                                                    error_code why) mutable {
                    auto const ex = work.get_executor();
                    work.reset();
                    asio::dispatch(ex, asio::append(std::move(handler), std::move(e), why));
                };
                asio::dispatch(self->loop_executor(), [self, slot, on_end = std::move(on_end)]() mutable {
                    self->start_loops(asio::bind_cancellation_slot(slot, std::move(on_end)));
                });
            },
            asio::use_awaitable);
    }

    void spawn_loops(run_completion on_end) override {
        // Like co_spawn: the loops start on their executor, at once when called there.
        asio::dispatch(loop_executor(), [self = std::static_pointer_cast<stream_connection>(shared_from_this()),
                                         on_end = std::move(on_end)]() mutable {
            self->start_loops(std::move(on_end));
        });
    }

    // The loops, then the end of the connection: on_end(thrown, disconnect_reason()) after finish(). Not a
    // coroutine that awaits the group and then this: its frame and spawn (0.7 KB) would wait as
    // long as the connection lives, for nothing the group's completion handler cannot do. The
    // connection lives until on_end was called, whoever else lets go of it.
    template <class Handler> void start_loops(Handler on_end) {
        // Cancelling on_end (run()'s co_await) cancels the group, and with it the loops. A handler
        // without a slot of its own (spawn_run's) binds none: 16 bytes less in the group's state.
        auto const slot = asio::get_associated_cancellation_slot(on_end);  // before on_end moves
        auto ending = asio::bind_executor(
            loop_executor(), [self = std::static_pointer_cast<stream_connection>(shared_from_this()),
                              on_end = std::move(on_end)](loops_end end) mutable {
                self->loops_ended_ = true;
                if (end.thrown) return std::move(on_end)(std::move(end.thrown), error_code{});  // a bug
                error_code ignored;
                beast::get_lowest_layer(self->ws_).close(ignored);
                // The corked stream's background write refers to it: let it end (aborted) before
                // *this can go.
                auto& cork = self->cork();
                cork.async_wait_idle([self = std::move(self), why = end.why, on_end = std::move(on_end)](error_code) mutable {
                    // After an overflow the connection was closed because of it: whatever ended it
                    // next (the closing handshake, or the write that the slow peer never read timing
                    // out) follows from it.
                    if (self->close_error_) why = self->close_error_;
                    self->finish(why);
                    std::move(on_end)(std::exception_ptr{}, self->disconnect_reason());
                });
            });
        if constexpr (has_own_cancellation_slot<Handler>) {
            join_loops()(asio::bind_cancellation_slot(slot, std::move(ending)));
        } else {
            (void)slot;
            join_loops()(std::move(ending));
        }
    }
    template <class Handler>
    static constexpr bool has_own_cancellation_slot = !requires {
        typename asio::associated_cancellation_slot<Handler>::asio_associated_cancellation_slot_is_unspecialised;
    };

    // Cancellation: once the group has cancelled a loop (another loop ended first), any
    // further co_await in it throws operation_aborted (awaitables throw after cancellation by
    // default). The group may cancel between an operation's completion and the loop's resumption,
    // so before each co_await that follows a resumption the loops check, and end with a value
    // instead. All runs on the strand: no cancellation can come between a check and its co_await.
    // The state is taken once (it stays the loop's own): each co_await of it would keep a slot of
    // its own in the frame.
    loop<error_code> read_loop() {
        auto const cs = co_await asio::this_coro::cancellation_state;
        for (;;) {
            if (cancelled(cs))
                co_return asio::error::operation_aborted;
            // Back-pressure: while the consumer has not taken what was read, read no more (TCP then
            // slows the peer down) instead of growing memory.
            while (inbound_full()) {
                inbound_waiter_ = true;
                co_await waiters(inbound_taken_).async_wait(use_tuple);  // cancelled by took_inbound()
                inbound_waiter_ = false;
                if (cancelled(cs))
                    co_return asio::error::operation_aborted;
            }
            // Each message is read straight into the string that becomes its shared payload: no
            // copy, and the string comes from (and returns to) a per-thread cache (payload_cache.hpp).
            // The first read waits for the peer, maybe for minutes. It takes a string of at most
            // read_buffer_size bytes of capacity, so an idle connection holds no more receive
            // buffer than that, however large its earlier messages were. A string with a heap
            // block may grow to Beast's usual first read (a TCP frame, 1.5 KB; at most
            // read_buffer_size): asking for no more than the string's capacity cost a third of
            // the replies per write at 16 messages in flight. A new string asks for its inline
            // 15 bytes: a connection that has received nothing holds no receive buffer.
            auto payload = take_payload_string(opts_->read_buffer_size);
            auto const usual = std::min(opts_->read_buffer_size, beast_first_read);
            auto const first =
                payload->capacity() <= small_read ? small_read : std::max(payload->capacity(), usual);
            error_code ec;
            // Replies to what was read so far leave together: when the consumer has messages left
            // to take, or is answering one, it flushes once it runs dry (consumer_idle), not us.
            bool const answers_pending = inbound_count_ > 0 || consumer_flushes_;
            cork().flush_on_read(!answers_pending);
            // A consumer that answers at once (the callback facade's) flushes its answers in a
            // moment: read after that (see corked_stream::park_read). Not while closing: Beast's
            // close operation reads the peer's reply, and no flush follows that read.
            cork().read_after_flush(answers_pending && prompt_consumer_ && !close_sent_);
            // Into the string's bytes, not through a dynamic buffer: Beast's operation for those
            // wraps this one in another state (80 bytes more, held while the connection is idle).
            // Sizing the string costs what the dynamic buffer's prepare() did (it resizes too).
            payload->resize(first);
            std::size_t got = 0;
            std::tie(ec, got) = co_await ws_.async_read_some(asio::buffer(*payload), wait_tuple);
            cork().read_after_flush(false);  // Beast had a whole frame already: no read was made
            payload->resize(got);
            if (!ec && !ws_.is_message_done()) {
                if (cancelled(cs))
                    co_return asio::error::operation_aborted;
                ec = co_await read_rest(payload);
            }
            cork().read_finished();
            ++read_progress_;
            if (ec == asio::error::operation_aborted && close_sent_) {
                // Our close frame went out and Beast's close operation took over reading (this read
                // was not pending, or was suspended behind it). Its outcome, which the write loop
                // learns a moment later, is the outcome of the connection.
                // Not when the group cancelled us: another loop already decided the outcome.
                if (!close_result_ && !cancelled(cs)) break;  // to closing_outcome()
                co_return close_result_ ? *close_result_ : ec;
            }
            // A peer that sent its close frame and then dropped TCP without waiting for our answer
            // (browsers closing a tab do) left cleanly: Beast's reply or teardown failing says nothing.
            if (ec && peer_sent_close_) ec = websocket::error::closed;
            if (ec) co_return ec;  // websocket::error::closed after a closing handshake
            heard_from_peer();
            message m{ws_.got_text() ? message_kind::text : message_kind::binary, share_payload(std::move(payload))};
            if (m.is_text() && ends_inside_code_point(m.data())) {
                // Beast 1.81 skips its end-of-message UTF-8 check when the final fragment is empty
                // ("\xf0\x9f" then "" passes). Fail the connection with 1007 as Beast does for any
                // other invalid UTF-8 (RFC 6455 8.1): the close goes out at once, and the closing
                // handshake (Beast's) reads the rest. We read no further: a bad frame after this one
                // would make Beast send its own close (1002) ahead of ours.
                drop_queued_ = true;
                close_error_ = websocket::error::bad_frame_payload;
                close(close_code::bad_payload);
                break;  // to closing_outcome()
            }
            count(&metrics::messages_in);
            count(&metrics::bytes_in, m.size());
            // Room was made before the read (see the top of the loop): no waiting here.
            if (!hand_off(std::move(m))) co_return asio::error::operation_aborted;
            ++read_progress_;
        }
        // Our closing handshake decides. One co_await for both ways here: each co_await keeps a
        // slot of its own in the frame, which lasts as long as the connection.
        co_return co_await closing_outcome();
    }

    // The rest of a message whose first read did not bring all of it. A coroutine of its own, like
    // closing_outcome and send_slowly: what these waits keep lives in a frame made while they
    // run, not in the read loop's, which lasts as long as the connection.
    loop<error_code> read_rest(std::unique_ptr<std::string>& payload) {
        // A large message continues in a cached string with room for this frame's rest, if there
        // is one, rather than growing this one. A small one grows this one: taking the cached
        // string that the previous message just gave back would leave the next wait without one
        // (ping-pong traffic then read every message in two steps). Beast enforces
        // max_message_size (read_message_max), so the buffer itself is unbounded.
        auto const wanted = payload->size() + ws_.read_size_hint(1);
        if (wanted > opts_->read_buffer_size) {
            if (auto larger = take_payload_string_for(wanted)) {
                larger->assign(*payload);
                std::swap(payload, larger);
                give_back_payload_string(std::move(larger));
            }
        }
        auto rest = asio::dynamic_buffer(*payload);
        auto [ec, n] = co_await ws_.async_read(rest, use_tuple);
        payload->resize(rest.size());
        co_return ec;
    }

    // Our closing handshake decides how the connection ended: its outcome, once the write loop
    // learned it (close_done), or aborted when the group cancelled the wait.
    loop<error_code> closing_outcome() {
        if (!close_result_) co_await close_done().async_wait(use_tuple);
        co_return close_result_ ? *close_result_ : error_code{asio::error::operation_aborted};
    }

    // The only writer of queued items: data, pings and the close frame leave in the order they were
    // queued. While it waits with nothing queued, enqueue() may write data directly (try_write_now).
    loop<error_code> write_loop() {
        using std::chrono::steady_clock;
        auto const cs = co_await asio::this_coro::cancellation_state;
        bool last_from_elsewhere = false;  // the last data item was queued from another strand
        // Waiting for more of them: the yields of this streak, how many brought a message, whether
        // the last one did (see broadcast_yields_).
        unsigned yields = 0, fruitful = 0;
        bool just_yielded = false;
        for (;;) {
            if (cancelled(cs))  // see read_loop
                co_return asio::error::operation_aborted;
            // What is queued already is taken at once, without a posted completion each.
            outbound item;
            if (!out_.try_receive([&item](error_code, outbound next) { item = std::move(next); })) {
                // A write in flight: what is corked leaves as soon as it completes.
                if (cork().corked_bytes() > 0 && cork().writing()) cork().flush();
                if (cork().corked_bytes() > 0 && !cork().writing()) {
                    // Nothing more queued, and the reader is busy: between the frames of its last
                    // read (it flushes when it asks for more), or waiting for its consumer. Let it
                    // run; if it made no progress meanwhile, nothing is coming soon: write now.
                    bool const for_reader = !cork().reading();
                    // Messages from elsewhere (a broadcast) come in bursts: wait behind all the
                    // work that is ready to run (the publisher's next messages among it).
                    bool const for_burst = !for_reader && last_from_elsewhere && yields < broadcast_yields_;
                    if (for_reader || for_burst) {
                        auto const seen = read_progress_;
                        if (for_burst) {
                            ++yields;
                            just_yielded = true;
                        }
                        co_await yield_to(for_burst);  // one co_await for both: see yield_to
                        if (for_reader && read_progress_ == seen && !out_.ready()) cork().flush();
                        continue;
                    }
                    if (yields > 0) adapt_broadcast_yields(fruitful);
                    yields = fruitful = 0;
                    just_yielded = false;
                    cork().flush();  // the reader waits for the peer: nobody else will flush
                }
                write_parked_ = true;
                auto [ec] = co_await receive_into(item);
                write_parked_ = false;
                if (ec) co_return ec;
                if (cancelled(cs)) {
                    dequeued(item);
                    co_return asio::error::operation_aborted;
                }
            }
            fruitful += just_yielded;
            just_yielded = false;
            dequeued(item);
            if (close_sent_) continue;  // the read loop ends the connection; nothing else may go out
            error_code wrote;
            write_deadline_ = steady_clock::now() + opts_->write_wait;
            // Data goes into the corked output at once when it can; a flush request only wakes us
            // (for what enqueue() wrote directly: the top of the loop flushes). The rest takes
            // send_slowly, through one co_await for all kinds (see yield_to).
            bool const is_data = item.what == outbound::kind::data;
            bool const closing = item.what == outbound::kind::close;
            bool const dropped = is_data && drop_queued_;
            bool written = dropped || item.what == outbound::kind::flush;
            if (is_data && !dropped) {
                last_from_elsewhere = item.from_elsewhere;
                written = ws_.is_open() && try_write_data(item.msg);
            }
            if (closing) {
                record_close(item.code, item.reason);
                close_sent_ = true;
                cork().read_after_flush(false);  // see read_loop
                close_deadline_ = steady_clock::now() + opts_->write_wait;
            }
            if (!written) wrote = co_await send_slowly(item);
            if (is_data && !dropped && !wrote) {
                count(&metrics::messages_out);
                count(&metrics::bytes_out, item.msg.size());
            }
            if (closing) {
                // Success, or aborted because a pending read received the peer's close frame (that
                // read then ended the connection). The read loop reports the outcome, after
                // delivering what it already read.
                close_result_ = !wrote || wrote == asio::error::operation_aborted
                                    ? error_code{websocket::error::closed}
                                    : wrote;
                close_done().cancel();
                wrote = {};
            }
            write_deadline_ = no_deadline;
            if (wrote) co_return wrote;
        }
    }

    // A data frame into the corked output, if it fits now. Our own framing (frame_header.hpp),
    // valid because no extension is negotiated (permessage-deflate is not offered), nothing is
    // fragmented, and Beast writes only whole control frames meanwhile. A server's payload goes out
    // as it is (large ones by reference); a client's is masked while it is copied.
    bool try_write_data(message const& msg) {
        if (server_) {
            frame_header const head{msg.is_text(), msg.size()};
            return cork().try_write_frame(head.buffer(), msg.buffer());
        }
        auto const key = next_masking_key();
        frame_header const head{msg.is_text(), msg.size(), key};
        return cork().try_write_masked_frame(head.buffer(), msg.buffer(), key);
    }

    // What the write loop cannot put into the output at once: a data frame that did not fit (or
    // one while closing), a ping, our close frame. A coroutine of its own: the temporaries of these
    // operations live in a frame made while they run, not in the write loop's, which lasts as long
    // as the connection (744 -> 448 bytes with the other measures).
    loop<error_code> send_slowly(outbound const& item) {
        if (item.what != outbound::kind::data) {
            auto [ec] = co_await send_control(item);
            co_return ec;
        }
        auto const& msg = item.msg;
        if (!ws_.is_open()) {  // closing: Beast reports why nothing can be written any more
            ws_.text(msg.is_text());
            auto [ec, n] = co_await ws_.async_write(msg.buffer(), use_tuple);
            co_return ec;
        }
        if (server_) {
            frame_header const head{msg.is_text(), msg.size()};
            auto [ec, n] = co_await cork().async_write_frame(head.buffer(), msg.buffer(), use_tuple);
            co_return ec;
        }
        // A client's frame is masked while it is copied in: once the output has room, again.
        auto const cs = co_await asio::this_coro::cancellation_state;
        for (;;) {
            auto [ec] = co_await cork().async_flush(use_tuple);
            if (ec) co_return ec;
            if (try_write_data(msg)) co_return error_code{};
            if (cancelled(cs))  // see read_loop
                co_return asio::error::operation_aborted;
        }
    }

    // The write loop's yield: one pass of the io_context behind the work ready to run
    // (behind_ready_work), or one pass of its own executor (the reader's turn). A function, not
    // posts in the loop itself: the loop's frame, which lasts as long as the connection, would
    // keep the executor argument (56 bytes), and g++ 12 keeps a slot for each co_await there.
    loop<void> yield_to(bool behind_ready_work) {
        return behind_ready_work ? asio::post(io_executor(), use_loop_awaitable)
                                 : asio::post(loop_executor(), use_loop_awaitable);
    }

    // The write loop's wait for an item: the item goes straight into `item`, not through a
    // (error_code, outbound) result and a copy of it in the loop's frame.
    auto receive_into(outbound& item) {
        return out_.async_receive(asio::deferred) | asio::deferred([&item](error_code ec, outbound next) {
                   item = std::move(next);
                   return asio::deferred.values(std::tuple{ec});  // a value: awaiting it never throws
               });
    }

    // enqueue(), on the strand, while the write loop waits with nothing queued: the frame goes into
    // the corked output at once, saving the write loop's wake-up. Small data frames of our own
    // connection only: a broadcast (from elsewhere) is better gathered by the write loop's waiting.
    bool try_write_now(outbound& item) override {
        if (item.from_elsewhere && !flusher_) return false;
        if (drop_queued_ || close_sent_ || !ws_.is_open()) return false;
        if (!try_write_data(item.msg)) return false;
        count(&metrics::messages_out);
        count(&metrics::bytes_out, item.msg.size());
        if (item.from_elsewhere) {  // part of a broadcast: written once the burst is over
            if (!std::exchange(flush_deferred_pending_, true)) flusher_->add(shared_from_this(), io_executor());
            return true;
        }
        // Who sends it to the kernel: a facade's consumer promised to say when its batch ends
        // (consumer_idle); else a reader waiting for the peer has nothing more coming, so now;
        // else (the reader is between frames, or a consumer may not ask again soon) the write loop.
        if (consumer_flushes_) return true;
        if (cork().reading()) cork().flush();
        else request_flush();
        return true;
    }

    // The consumer's batch is complete. When the reader still has frames of its last read to hand
    // over, it flushes when it asks for more bytes (so all the replies to one read leave together);
    // when it waits for the peer, nobody else will.
    void consumer_idle() override {
        if (cork().reading()) cork().flush();
    }

    void wake_keepalive() override { wake_keepalive_.cancel(); }

    void flush_deferred() override {
        flush_deferred_pending_ = false;
        if (!loops_ended_) cork().flush();  // afterwards the stream may go (see start_loops)
    }

    // Timers only, never I/O, so a peer that stopped reading cannot block it: sends pings through the
    // write queue, and ends the connection on pong_wait, write_wait, the close deadline or abort().
    loop<error_code> keepalive_loop() {
        using std::chrono::steady_clock;
        auto const cs = co_await asio::this_coro::cancellation_state;
        auto next_ping = steady_clock::now() + opts_->ping_interval;
        std::uint64_t appended_before = 0;
        for (;;) {
            auto const now = steady_clock::now();
            // Nothing written since the last wake-up (at most write_wait ago): the connection has
            // gone quiet, so its output buffers go back to the heap. (Its receive buffer is bounded
            // by read_buffer_size: see read_loop.)
            if (cork().appended() == appended_before) cork().release_buffers();
            appended_before = cork().appended();
            if (abort_reason_) co_return abort_reason_;
            if (cancelled(cs))  // see read_loop
                co_return asio::error::operation_aborted;
            if (now - last_seen_ >= opts_->pong_wait) co_return error::pong_timeout;
            if (now >= write_deadline_) co_return error::write_timeout;
            if (now >= close_deadline_)  // the peer never answered our close
                co_return close_error_ ? close_error_ : error_code{websocket::error::closed};
            if (now >= next_ping) {
                request_ping();
                next_ping = now + opts_->ping_interval;
            }
            // Wake for the next ping, the pong deadline, and at least every write_wait to look at
            // the write and close deadlines (set by the write loop without waking us).
            auto wake = std::min({next_ping, last_seen_ + opts_->pong_wait, now + opts_->write_wait});
            wake = std::min(wake, close_deadline_);
            wake_keepalive_.expires_at(wake);
            auto [ec] = co_await wake_keepalive_.async_wait(wait_tuple);
            if (ec && !abort_reason_) co_return ec;  // cancelled by the group
        }
    }

    // How long deliveries from other strands wait for company before they are written. A
    // publisher that reads a burst of messages broadcasts them one handler hop after another, and
    // each wait (one pass behind the ready work) lets it get about one hop further. So: when every
    // wait of a streak brought another message, wait twice as often next time; when none did, half
    // as often. A lone broadcast pays one pass; a stream of them goes out in gathered writes.
    void adapt_broadcast_yields(unsigned fruitful) noexcept {
        if (fruitful > 0) broadcast_yields_ = std::min(broadcast_yields_ * 2, max_broadcast_yields);
        else broadcast_yields_ = std::max(broadcast_yields_ / 2, min_broadcast_yields);
    }

    // RFC 6455 5.3: a fresh, unpredictable key per frame (frame_header.hpp says why not Beast's).
    static masking_key next_masking_key() {
        thread_local masking_key_source source;
        return source.next();
    }

    // Whether `s` ends inside a UTF-8 sequence. Only the tail is looked at: Beast checked every
    // byte as it arrived, all but the completeness of the last code point.
    static bool ends_inside_code_point(std::string_view s) noexcept {
        for (std::size_t back = 1; back <= 4 && back <= s.size(); ++back) {
            auto const b = static_cast<unsigned char>(s[s.size() - back]);
            if ((b & 0xC0) == 0x80) continue;  // a continuation byte: its lead is further back
            std::size_t const length = b < 0x80 ? 1 : b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : 2;
            return back < length;
        }
        return false;  // four continuation bytes: Beast refused those already
    }

    static constexpr std::size_t small_read = 15;  // std::string's inline capacity (libstdc++)
    static constexpr std::size_t beast_first_read = 1536;  // Beast's tcp_frame_size (private)
    static constexpr unsigned min_broadcast_yields = 4;
    static constexpr unsigned max_broadcast_yields = 16;

    static bool cancelled(asio::cancellation_state const& cs) {
        return cs.cancelled() != asio::cancellation_type::none;
    }

    // The send time, echoed back in the pong, gives the round trip without per-ping state.
    static websocket::ping_data ping_payload() {
        auto const now = std::chrono::duration_cast<std::chrono::microseconds>(
                             std::chrono::steady_clock::now().time_since_epoch()).count();
        std::int64_t v = now;
        char bytes[sizeof v];
        std::memcpy(bytes, &v, sizeof v);
        return websocket::ping_data{bytes, sizeof bytes};
    }

    corked_stream<NextLayer>& cork() noexcept { return ws_.next_layer(); }

    LoopExecutor loop_executor() const noexcept {
        if constexpr (std::is_same_v<LoopExecutor, executor_type>) return get_executor();
        else return *get_executor().template target<LoopExecutor>();  // the stream's own
    }

    // A ping or our close frame, through Beast. Not a coroutine: the 128-byte close_reason and
    // ping_data live in their operation's state while it runs, in no frame.
    loop<std::tuple<error_code>> send_control(outbound const& item) {
        if (item.what == outbound::kind::ping) return ws_.async_ping(ping_payload(), use_tuple);
        websocket::close_reason const r{item.code, item.reason};
        return ws_.async_close(r, use_tuple);
    }

    ws_stream ws_;
    std::uint64_t read_progress_ = 0;        // the read loop moved on (see write_loop)
    unsigned broadcast_yields_ = min_broadcast_yields;  // see adapt_broadcast_yields
    bool const server_;                      // the server role: frames are unmasked
    bool close_sent_ = false;                // our close frame is queued in Beast or gone
    bool peer_sent_close_ = false;           // the peer's close frame arrived
    bool loops_ended_ = false;               // nothing may start a write any more
    std::optional<error_code> close_result_;  // how our closing handshake ended
    std::unique_ptr<asio::steady_timer> close_done_;  // see close_done()
    // The keepalive loop's timer; abort() cancels it. Of the loops' executor type: a timer and its
    // pending wait each hold a copy of the executor, 8 bytes rather than 56 when it is concrete.
    asio::basic_waitable_timer<std::chrono::steady_clock, asio::wait_traits<std::chrono::steady_clock>, LoopExecutor>
        wake_keepalive_{loop_executor()};

    // Cancelled when close_result_ is set. Made by its first user (a connection that closes): a
    // timer is 120 bytes that an idle connection need not hold.
    asio::steady_timer& close_done() { return waiters(close_done_); }
};

/// Wraps an upgraded stream; the caller then co_spawns run() on the connection's executor. The
/// loops hold the stream's executor type (see concrete_socket.hpp).
template <class NextLayer>
connection_ptr make_connection(corked_websocket<NextLayer> ws, beast::role_type role, connection_info info,
                               std::shared_ptr<connection_options const> opts) {
    return std::make_shared<stream_connection<NextLayer>>(std::move(ws), role, std::move(info), std::move(opts));
}
template <class NextLayer>
connection_ptr make_connection(corked_websocket<NextLayer> ws, beast::role_type role, connection_info info,
                               connection_options const& opts) {
    return make_connection(std::move(ws), role, std::move(info), std::make_shared<connection_options const>(opts));
}

/// The same, for a stream of any_tcp_websocket, once its handshake succeeded: the handshake's
/// timeout goes off (from here on the keepalive loop watches).
inline connection_ptr make_connection(any_tcp_websocket ws, beast::role_type role, connection_info info,
                                      std::shared_ptr<connection_options const> opts) {
    return std::visit(
        [&](auto& upgraded) {
            set_handshake_timeout(upgraded);
            return make_connection(std::move(upgraded), role, std::move(info), opts);
        },
        ws);
}

extern template class stream_connection<asio::ip::tcp::socket>;
extern template class stream_connection<tcp_socket_on<io_executor>>;
extern template class stream_connection<tcp_socket_on<io_strand>>;

}  // namespace wscoro::detail
