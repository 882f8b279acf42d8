#pragma once
// The generator's connections and the one event loop that drives them all: non-blocking sockets
// with TCP_NODELAY in one edge-triggered epoll set, the WebSocket upgrade, frame parsing, pongs
// and the closing handshake. What the messages mean is the scenario's business (`handler`).
//
// Per readiness, a connection is read once (again only if the read filled the buffer) into one
// read buffer shared by all connections (the loop is single-threaded); every complete frame in it
// is handed on, payloads in place, and what is left of an incomplete frame header or control
// frame (at most 139 bytes) waits in the connection's stash. Everything the scenario queues for a
// connection while its read is handled goes out in one writev right after; output queued for
// other connections (a publisher) goes out once at the end of the loop iteration.
#include "endpoint.hpp"
#include "frame.hpp"
#include "masked_pattern.hpp"
#include "options.hpp"
#include "out_queue.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace wscoro::bench::epoll {

using clock = std::chrono::steady_clock;

struct connection {
    enum class state : std::uint8_t { idle, connecting, upgrading, open, closing, ended };

    std::uint32_t index = 0;
    int fd = -1;
    state st = state::idle;
    bool flush_queued = false;  ///< in the fleet's list of connections to flush
    std::uint32_t random = 1;   ///< xorshift32 state: picks masking keys
    frame_state frames;
    /// Unparsed bytes of the last read: a partial frame (the response head, while upgrading).
    std::vector<char> stash;
    out_queue out;
    clock::time_point started;  ///< when its connect began (bounds the handshake)
    std::string accept;         ///< the Sec-WebSocket-Accept expected, while upgrading
};

/// What a scenario does with what arrives. Called from inside fleet::run_until().
class handler {
public:
    /// A text (1) or binary (2) message starts on `c`; data() brings its payload, end() its end.
    virtual void on_begin(connection& c, unsigned opcode) = 0;
    virtual void on_data(connection& c, char const* data, std::size_t size) = 0;
    virtual void on_end(connection& c) = 0;
    /// An open connection ended. `why` is empty when a closing handshake we started completed.
    virtual void on_ended(connection& c, std::string const& why) = 0;
    /// Once per loop iteration, after the events were handled.
    virtual void on_iteration(clock::time_point) {}
    /// When on_iteration() next wants to run even if nothing happens.
    virtual clock::time_point next_wakeup() const { return clock::time_point::max(); }

protected:
    ~handler() = default;
};

class fleet {
public:
    /// o.connections connections (not opened yet) to `ep`; message bodies come from `bodies`.
    fleet(options const& o, endpoint const& ep, masked_pattern const& bodies, handler& h);
    ~fleet();  // closes every socket still open
    fleet(fleet const&) = delete;
    fleet& operator=(fleet const&) = delete;

    std::size_t size() const noexcept { return connections_.size(); }
    connection& operator[](std::size_t i) noexcept { return connections_[i]; }
    std::size_t live() const noexcept { return live_; }  ///< open or closing

    /// Opens every connection, o.concurrency handshakes at a time, each within
    /// o.connect_timeout. Returns how many failed (the first few are described on stderr).
    std::size_t open_all();
    /// How long open_all() took, first connect to last handshake.
    clock::duration opening_time() const noexcept { return opening_time_; }

    /// Runs the loop until `done()` holds (checked after every iteration) or `deadline` passes.
    template <class Done> bool run_until(clock::time_point deadline, Done&& done) {
        for (;;) {
            if (done()) return true;
            if (clock::now() >= deadline) return false;
            run_once(deadline);
        }
    }

    /// Queues a final binary frame on an open connection: `head` (copied and masked here), then,
    /// if `with_body`, the pattern's body window for `body_key` (payload.hpp). Sent at the latest
    /// at the end of the current loop iteration.
    void send(connection& c, char const* head, std::size_t head_size, bool with_body,
              std::uint64_t body_key);

    /// Runs the loop until `end`, calling `tick` (if set) about once a second meanwhile.
    void pass_time(clock::time_point end, std::function<void()> const& tick);

    /// Starts the closing handshake (1000) on every open connection and runs the loop until each
    /// has ended or `timeout` passed. Returns how many did not close cleanly (described on stderr).
    std::size_t close_all(clock::duration timeout);

    /// When the bytes being parsed were read: the receive time of the message in hand.
    clock::time_point read_time() const noexcept { return read_time_; }

private:
    struct sink;

    void run_once(clock::time_point deadline);
    void start(connection& c);
    void connected(connection& c);
    void readable(connection& c);
    bool consume(connection& c, std::size_t size);
    bool control(connection& c, unsigned opcode, char const* data, std::size_t size);
    void send_control(connection& c, unsigned opcode, char const* data, std::size_t size);
    void schedule_flush(connection& c);
    void flush(connection& c);
    void flush_queued();
    void end(connection& c, std::string const& why);
    void expire_handshakes(clock::time_point now);
    std::uint32_t next_random(connection& c) noexcept;

    options const& o_;
    endpoint const& ep_;
    masked_pattern const& bodies_;
    handler& h_;
    int epoll_fd_ = -1;
    bool have_pwait2_ = true;              // epoll_pwait2 (nanosecond timeouts) works here
    std::vector<connection> connections_;  // never resized: epoll holds pointers to them
    std::vector<char> read_buffer_;
    std::vector<connection*> flush_list_;
    std::size_t live_ = 0;
    // Opening.
    bool opening_ = false;
    std::size_t next_to_start_ = 0;  // connections [0, next) have been started
    std::size_t first_pending_ = 0;  // no connection before it is still handshaking
    std::size_t handshaking_ = 0;    // started, neither open nor failed yet
    std::size_t failed_opening_ = 0;
    clock::duration opening_time_{};
    clock::time_point next_expiry_check_{};
    // Closing.
    std::size_t unclean_closes_ = 0;
    std::string close_outcome_;  // why a close frame ends its connection; empty = cleanly
    clock::time_point read_time_{};
    std::uint64_t key_seed_;  // Sec-WebSocket-Key generator
};

}  // namespace wscoro::bench::epoll
