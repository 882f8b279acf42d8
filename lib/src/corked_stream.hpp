#pragma once
// corked_stream<NextLayer>: the AsyncStream between Beast's websocket::stream and the socket that
// batches writes ("corking").
//
// Why: one send() system call per WebSocket frame is where a plain Beast server spends most of its
// time (see PERFORMANCE-NOTES.md). Small writes are appended to an output buffer and complete at
// once; the buffer goes to the kernel in one gathered write when somebody flushes, and only then:
// whoever knows that a batch is complete says so. Beast has no "end of batch" signal, but it asks
// for more bytes (async_read_some) only after it handled every frame of the last read, so a read
// flushes (unless the consumer of those frames has yet to answer them: flush_on_read). A write while
// a read waits for the peer flushes at once (nothing else is coming from the reader); the
// connection flushes when its consumer or its write loop runs dry (see stream_connection). A flush
// while a write is in flight takes effect when that write completes. A read may wait for the next
// flush (read_after_flush, park_read): in request/response traffic the next request only comes
// after the answer, and a read tried before it was written would fail.
//
// Large writes (at least large_write bytes) are not copied: they are queued by reference and
// complete only once written, as do small writes once `high_water` bytes wait (back-pressure).
// Beast's rule of one write operation at a time still holds; the background write is ours.
//
// Corking starts with enable_corking(): the upgrade (handshake) passes straight through, so a stream
// that fails during the handshake never has a background write to outlive it. Before the stream is
// destroyed after corking, its owner closes the socket and waits for async_wait_idle().
#include "frame_header.hpp"

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/append.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/asio/basic_stream_socket.hpp>
#include <boost/beast/core/stream_traits.hpp>
#include <boost/beast/websocket/rfc6455.hpp>
#include <boost/beast/websocket/teardown.hpp>
#include <boost/system/error_code.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace wscoro::detail {

namespace asio = boost::asio;
namespace beast = boost::beast;
using boost::system::error_code;

/// A socket of the operating system (plain TCP): it can be written without blocking at once
/// (write_now). Other layers (TLS) are written asynchronously.
template <class T> struct is_plain_socket : std::false_type {};
template <class Protocol, class Executor>
struct is_plain_socket<asio::basic_stream_socket<Protocol, Executor>> : std::true_type {};

template <class NextLayer> class corked_stream {
public:
    using next_layer_type = NextLayer;
    using executor_type = typename NextLayer::executor_type;
    using write_signature = void(error_code, std::size_t);

    static constexpr std::size_t large_write = 16 * 1024;   // queued by reference above this
    static constexpr std::size_t high_water = 256 * 1024;   // small writes wait beyond this

    template <class... Args>
    explicit corked_stream(Args&&... args) : next_(std::forward<Args>(args)...) {}
    corked_stream(corked_stream&&) = default;  // only before use: handlers capture `this`

    executor_type get_executor() noexcept { return next_.get_executor(); }
    NextLayer& next_layer() noexcept { return next_; }
    NextLayer const& next_layer() const noexcept { return next_; }

    /// From now on, writes are batched. Call once, on the stream's executor. Between writes the
    /// output buffers keep at most `keep_capacity` bytes each: a burst's larger buffer is freed
    /// after it was written, so an idle connection does not hold it.
    void enable_corking(std::size_t keep_capacity) noexcept {
        corking_ = true;
        keep_capacity_ = keep_capacity;
    }
    /// Bytes appended and not yet handed to the kernel.
    std::size_t corked_bytes() const noexcept { return pending_bytes_; }
    /// Bytes ever appended: unchanged between two looks means nothing was written meanwhile.
    std::uint64_t appended() const noexcept { return appended_; }
    /// Heap bytes the output buffers hold (their capacity): what release_buffers() gives back.
    std::size_t buffer_bytes() const noexcept {
        auto const heap = [](std::string const& s) {
            return s.capacity() > std::string{}.capacity() ? s.capacity() : 0;  // not inline storage
        };
        return heap(pending_storage_) + heap(writing_storage_) + pending_.capacity() * sizeof(segment) +
               buffers_.capacity() * sizeof(asio::const_buffer) + waiters_.capacity() * sizeof(waiter);
    }
    /// Frees the output buffers' capacity (up to keep_capacity each, and their bookkeeping) when
    /// nothing is corked or being written. For a connection that has gone quiet: steady traffic
    /// reuses them instead of allocating per write.
    void release_buffers() noexcept {
        if (writing_ || !pending_.empty() || !waiters_.empty()) return;
        std::string{}.swap(pending_storage_);
        std::string{}.swap(writing_storage_);
        std::vector<segment>{}.swap(pending_);
        std::vector<asio::const_buffer>{}.swap(buffers_);
        std::vector<waiter>{}.swap(waiters_);
        if (!parked_) park_.reset();  // made again by the next parked read
    }
    /// Whether a write is in flight: what is corked meanwhile goes out when it completes.
    bool writing() const noexcept { return writing_; }
    /// Whether a read is waiting for the peer (the reader has handled everything it got).
    bool reading() const noexcept { return reading_; }
    /// The reader got its message: it is busy until its next async_read_some.
    void read_finished() noexcept { reading_ = false; }
    /// Whether the next async_read_some flushes. Not when whoever answers the messages read so far
    /// has yet to answer some of them: it flushes when done (see stream_connection).
    void flush_on_read(bool yes) noexcept { flush_on_read_ = yes; }
    /// Whether the next async_read_some (only that one) reaches the socket after the next flush(),
    /// one pass behind the work ready then (see park_read). Only for a read that someone's flush
    /// is sure to follow: a parked read waits for it.
    void read_after_flush(bool yes) noexcept { read_after_flush_ = yes; }

    /// Starts writing what is corked; while a write is in flight, as soon as it completes. (Not
    /// before: what is appended meanwhile waits for its own flush, so that a batch still being
    /// built does not leave in pieces.)
    void flush() {
        if (writing_) flush_wanted_ = true;
        else if (!pending_.empty() && !error_) start_write();
        if (parked_) park_->cancel();  // the parked read goes behind the work ready now
    }

    /// Appends a small frame (head and body copied) if that needs no waiting; else returns false
    /// and the caller uses async_write_frame. Saves the posted completion of the common case.
    /// Unlike Beast's writes, this never flushes: the caller (the write loop) knows whether more
    /// is coming, and calls flush() when it runs dry.
    bool try_write_frame(asio::const_buffer head, asio::const_buffer body) {
        auto const n = head.size() + body.size();
        if (error_ || body.size() >= large_write || pending_bytes_ + n >= high_water) return false;
        append(head);
        append(body);
        return true;
    }

    /// A client's frame: `head` copied, `body` copied and masked with `key` in the output buffer (a
    /// client never sends its payload as it is). False, with nothing appended, when the buffer is
    /// at high_water or a write failed: the caller then awaits async_flush and tries again. A body
    /// larger than high_water is accepted into an empty buffer (its copy is the cost of masking).
    bool try_write_masked_frame(asio::const_buffer head, asio::const_buffer body, masking_key const& key) {
        if (error_ || (pending_bytes_ > 0 && pending_bytes_ + head.size() + body.size() >= high_water))
            return false;
        append(head);
        append(body, /*by_reference=*/false);
        apply_mask(reinterpret_cast<unsigned char*>(pending_storage_.data()) + pending_storage_.size() - body.size(),
                   body.size(), key);
        return true;  // like try_write_frame: the caller flushes
    }

    /// Appends a whole frame made of `head` (copied) and `body` (copied when small, else by
    /// reference: it must stay valid until `token` completes). Handler: void(error_code, size_t).
    /// Completes at once (posted) when everything was copied and the buffer is below high_water.
    template <class WriteToken>
    auto async_write_frame(asio::const_buffer head, asio::const_buffer body, WriteToken&& token) {
        return asio::async_initiate<WriteToken, write_signature>(
            [this](auto handler, asio::const_buffer head, asio::const_buffer body) {
                append(head);
                append(body);
                finish_append(head.size() + body.size(), std::move(handler));
            },
            token, head, body);
    }

    /// Handler: void(error_code). Completes once nothing is being written (immediately when idle).
    /// Used before destruction, after the socket was closed.
    template <class Token> auto async_wait_idle(Token&& token) {
        return asio::async_initiate<Token, void(error_code)>(
            [this](auto handler) {
                auto adapted = [h = std::move(handler)](error_code ec, std::size_t) mutable {
                    std::move(h)(ec);
                };
                if (!writing_) return post_completion(std::move(adapted), error_code{}, 0);
                waiters_.push_back({written_ + in_flight_, 0,
                                    asio::any_completion_handler<write_signature>(std::move(adapted))});
            },
            token);
    }

    /// Handler: void(error_code). Writes everything corked and completes once it is written.
    template <class Token> auto async_flush(Token&& token) {
        return asio::async_initiate<Token, void(error_code)>(
            [this](auto handler) {
                auto adapted = [h = std::move(handler)](error_code ec, std::size_t) mutable {
                    std::move(h)(ec);
                };
                if (error_) return post_completion(std::move(adapted), error_, 0);
                if (!writing_ && pending_.empty())
                    return post_completion(std::move(adapted), error_code{}, 0);
                waiters_.push_back({appended_, 0,
                                    asio::any_completion_handler<write_signature>(std::move(adapted))});
                flush();
            },
            token);
    }

    // --- AsyncReadStream / AsyncWriteStream, used by Beast ---

    template <class MutableBufferSequence, class ReadToken>
    auto async_read_some(MutableBufferSequence const& buffers, ReadToken&& token) {
        // Beast wants more bytes: it has handled every frame it had, so the batch is complete.
        reading_ = true;
        if (flush_on_read_) flush();
        // Straight to the socket, or parked until the answers to what was read are written.
        if (corking_ && std::exchange(read_after_flush_, false))
            // `self` as an argument, not a capture: clang cannot see the use of a capture inside a
            // generic lambda of a template, and warns (-Wunused-lambda-capture).
            return asio::async_initiate<ReadToken, void(error_code, std::size_t)>(
                [](auto handler, corked_stream* self, MutableBufferSequence const& buffers) {
                    self->park_read(std::move(handler), buffers);
                },
                token, this, buffers);
        return next_.async_read_some(buffers, std::forward<ReadToken>(token));
    }

    template <class ConstBufferSequence, class WriteToken>
    auto async_write_some(ConstBufferSequence const& buffers, WriteToken&& token) {
        return asio::async_initiate<WriteToken, write_signature>(
            [this](auto handler, ConstBufferSequence const& buffers) {
                if (!corking_) return next_.async_write_some(buffers, std::move(handler));
                std::size_t n = 0;
                for (auto it = asio::buffer_sequence_begin(buffers); it != asio::buffer_sequence_end(buffers); ++it) {
                    asio::const_buffer b{*it};
                    append(b);
                    n += b.size();
                }
                finish_append(n, std::move(handler));
            },
            token, buffers);
    }

private:
    // A piece of the output: bytes in pending_storage_ (owned) or a caller's buffer (by reference).
    struct segment {
        std::size_t offset;    // into the storage, when owned
        void const* external;  // else the caller's bytes
        std::size_t size;
    };
    // A write (or flush) that completes once the stream has written `end` bytes in total.
    struct waiter {
        std::uint64_t end;
        std::size_t bytes;
        asio::any_completion_handler<write_signature> handler;

        waiter(std::uint64_t end, std::size_t bytes, asio::any_completion_handler<write_signature> h) noexcept
            : end(end), bytes(bytes), handler(std::move(h)) {}
        waiter(waiter&&) noexcept = default;
        // Asio 1.81's any_completion_handler move assignment copies from an lvalue, which wraps
        // the handler in another any_completion_handler whose allocator lookup recurses until the
        // stack overflows. Erasing from the middle of waiters_ move-assigns, so move by swapping.
        waiter& operator=(waiter&& other) noexcept {
            end = other.end;
            bytes = other.bytes;
            asio::any_completion_handler<write_signature> taken{std::move(other.handler)};
            handler.swap(taken);
            return *this;
        }
    };

    // Asio tries a socket read at once, before it waits for readiness. In request/response traffic
    // a read started right after the request was handed over comes before the reply was written,
    // so that try fails: a wasted recvmsg per message. A raw Beast server reads after its write's
    // completion, which was posted behind the ready work: by then the next request is usually
    // there. A parked read does the same: it waits on a timer that never expires until flush()
    // cancels it, and the cancellation's completion is posted behind the work ready at that time.
    // The timer's operation holds the handler, so parking allocates nothing per message.
    template <class Handler, class MutableBufferSequence>
    void park_read(Handler handler, MutableBufferSequence const& buffers) {
        if (!park_)
            park_ = std::make_unique<asio::steady_timer>(next_.get_executor(), asio::steady_timer::time_point::max());
        parked_ = true;
        park_cancelled_ = false;
        // The reader's cancellation (the connection's loops ending) must not wait for a flush.
        auto slot = asio::get_associated_cancellation_slot(handler);
        if (slot.is_connected())
            slot.assign([this](asio::cancellation_type type) {
                if (type == asio::cancellation_type::none) return;
                park_cancelled_ = true;
                park_->cancel();
            });
        park_->async_wait([this, buffers, handler = std::move(handler)](error_code) mutable {
            parked_ = false;
            auto slot = asio::get_associated_cancellation_slot(handler);
            if (slot.is_connected()) slot.clear();
            if (park_cancelled_ || error_)
                return std::move(handler)(error_code{asio::error::operation_aborted}, std::size_t{0});
            next_.async_read_some(buffers, std::move(handler));
        });
    }

    void append(asio::const_buffer b, bool by_reference = true) {
        if (b.size() == 0) return;
        appended_ += b.size();
        pending_bytes_ += b.size();
        if (by_reference && b.size() >= large_write) {
            pending_.push_back({0, b.data(), b.size()});
            return;
        }
        auto const* p = static_cast<char const*>(b.data());
        if (!pending_.empty() && !pending_.back().external &&
            pending_.back().offset + pending_.back().size == pending_storage_.size())
            pending_.back().size += b.size();  // contiguous with the last owned piece
        else
            pending_.push_back({pending_storage_.size(), nullptr, b.size()});
        pending_storage_.append(p, b.size());
    }

    // Completes a write of `n` bytes now (all copied, below high_water) or once they are written.
    // Only a waiting handler is type-erased: erasing costs an allocation, and the common case
    // completes at once.
    template <class Handler> void finish_append(std::size_t n, Handler&& handler) {
        if (error_) return post_completion(std::forward<Handler>(handler), error_, 0);
        bool const referenced = !pending_.empty() && pending_.back().external;
        if (!referenced && pending_bytes_ < high_water) {
            appended_now();
            return post_completion(std::forward<Handler>(handler), error_code{}, n);
        }
        asio::any_completion_handler<write_signature> erased{std::forward<Handler>(handler)};
        watch_cancellation(erased);
        waiters_.push_back({appended_, n, std::move(erased)});
        flush();  // someone waits for these bytes: do not wait for a flush point
    }

    // A reader waiting for the peer has nothing more to hand over, so no flush point is coming
    // from that side: write now. (Beast's close frame, written while our read is pending, needs it.)
    void appended_now() {
        if (reading_) flush();
    }

    // A waiting write cannot be withdrawn from a gathered write in flight; cancelling it cancels the
    // socket's operations, which ends the connection (the only user of cancellation here).
    void watch_cancellation(asio::any_completion_handler<write_signature>& handler) {
        auto slot = asio::get_associated_cancellation_slot(handler);
        if (slot.is_connected())
            slot.assign([this](asio::cancellation_type type) {
                if (type != asio::cancellation_type::none) beast::get_lowest_layer(next_).cancel();
            });
    }

    void start_write() {
        writing_ = true;
        in_flight_ = pending_bytes_;
        std::swap(pending_storage_, writing_storage_);
        pending_storage_.clear();
        buffers_.clear();
        for (auto const& s : pending_)
            buffers_.emplace_back(s.external ? s.external : writing_storage_.data() + s.offset, s.size);
        pending_.clear();
        pending_bytes_ = 0;
        if constexpr (is_plain_socket<NextLayer>::value) {
            if (write_now()) return;
        }
        // A span: async_write copies its buffer sequence, and a vector copy would allocate.
        std::span<asio::const_buffer const> const buffers{buffers_};
        asio::async_write(next_, buffers, [this](error_code ec, std::size_t) { on_written(ec); });
    }

    // Plain TCP: one non-blocking sendmsg at once, and done without an asynchronous operation when
    // the kernel took everything, as it nearly always does. An asynchronous write costs a posted
    // completion, executor work tracking and a hop back to the strand, more than the system call
    // itself. True when the write is over (written, or failed); false with buffers_ holding what
    // is left, for the asynchronous write.
    bool write_now() {
        auto& socket = next_;
        error_code ec;
        // Synchronous socket calls must never block: they fail with would_block instead.
        if (!socket.non_blocking()) socket.non_blocking(true, ec);
        if (ec) return false;
        std::size_t written = socket.write_some(std::span<asio::const_buffer const>{buffers_}, ec);
        if (ec == asio::error::would_block || ec == asio::error::try_again) {
            ec = {};
            written = 0;
        }
        if (ec || written == in_flight_) {
            on_written(ec);
            return true;
        }
        // The kernel's buffer is full (a slow peer), or there were more pieces than one call takes.
        auto it = buffers_.begin();
        for (; it != buffers_.end() && written >= it->size(); ++it) written -= it->size();
        if (it != buffers_.end()) *it += written;
        buffers_.erase(buffers_.begin(), it);
        return false;
    }

    void on_written(error_code ec) {
        writing_ = false;
        if (ec) {
            error_ = ec;
            pending_.clear();
            pending_bytes_ = 0;
        } else {
            written_ += in_flight_;
        }
        in_flight_ = 0;
        writing_storage_.clear();
        if (writing_storage_.capacity() > keep_capacity_) std::string{}.swap(writing_storage_);
        for (auto it = waiters_.begin(); it != waiters_.end();) {
            if (!error_ && it->end > written_) {
                ++it;
                continue;
            }
            clear_cancellation(it->handler);
            post_completion(std::move(it->handler), error_, error_ ? 0 : it->bytes);
            it = waiters_.erase(it);
        }
        if (std::exchange(flush_wanted_, false)) flush();
    }

    static void clear_cancellation(asio::any_completion_handler<write_signature>& handler) {
        auto slot = asio::get_associated_cancellation_slot(handler);
        if (slot.is_connected()) slot.clear();
    }

    // 1.81 has no immediate completion, and calling back into Beast from inside its own initiation
    // would re-enter it: completions are always posted.
    template <class Handler> void post_completion(Handler&& handler, error_code ec, std::size_t n) {
        asio::post(next_.get_executor(), asio::append(std::forward<Handler>(handler), ec, n));
    }

    NextLayer next_;
    bool corking_ = false;
    std::size_t keep_capacity_ = 4096;
    bool writing_ = false;
    bool flush_wanted_ = false;        // flush() came while writing
    bool flush_on_read_ = true;
    bool reading_ = false;
    error_code error_;                 // the first write failure; every later write fails with it
    std::vector<segment> pending_;     // corked, in order
    std::string pending_storage_;      // owned bytes of pending_
    std::size_t pending_bytes_ = 0;    // owned and referenced
    std::string writing_storage_;      // owned bytes of the write in flight (swapped, so reused)
    std::vector<asio::const_buffer> buffers_;  // the write in flight
    std::size_t in_flight_ = 0;
    std::uint64_t appended_ = 0;       // bytes ever appended
    std::uint64_t written_ = 0;        // bytes ever written
    std::vector<waiter> waiters_;  // a vector: an empty deque allocates
    bool read_after_flush_ = false;    // the next async_read_some parks (park_read)
    bool parked_ = false;              // a read waits on park_ for the next flush
    bool park_cancelled_ = false;      // its reader was cancelled meanwhile
    std::unique_ptr<asio::steady_timer> park_;  // made by the first parked read
};

/// Closing the WebSocket: what is corked (the close frame, at least) goes out before the TCP
/// teardown. Found by Beast through argument-dependent lookup.
template <class NextLayer, class TeardownHandler>
void async_teardown(beast::role_type role, corked_stream<NextLayer>& stream, TeardownHandler&& handler) {
    stream.async_flush([&stream, role, handler = std::forward<TeardownHandler>(handler)](error_code) mutable {
        using beast::websocket::async_teardown;
        async_teardown(role, stream.next_layer(), std::move(handler));
    });
}

/// The synchronous teardown is part of Beast's contract; the library only closes asynchronously.
template <class NextLayer>
void teardown(beast::role_type role, corked_stream<NextLayer>& stream, error_code& ec) {
    using beast::websocket::teardown;
    teardown(role, stream.next_layer(), ec);
}

}  // namespace wscoro::detail
