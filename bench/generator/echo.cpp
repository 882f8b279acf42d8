// The echo scenario: C connections, each keeping D messages in flight (send D, then one more per
// reply). Every reply is verified: length, content, and that its sequence number is the next one
// that connection expects. With D = 1 each round trip is timed.
#include "fleet.hpp"
#include "log.hpp"
#include "payload.hpp"
#include "progress.hpp"
#include "scenarios.hpp"

#include <wscoro/message.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/this_coro.hpp>

#include <exception>

namespace wscoro::bench {

namespace {

using namespace std::chrono_literals;

constexpr auto drain_timeout = 10s;  // after the window: for the replies still in flight
constexpr auto close_timeout = 10s;  // for every closing handshake

class echo_run {
public:
    echo_run(options const& o, asio::any_io_executor ex)
        : o_(o), pattern_(o.size - echo_payload::header_size), drained_(ex, 0), finished_(ex, 0) {}

    asio::awaitable<json::object> run();

private:
    struct peer {
        connection_ptr conn;
        std::uint64_t next_seq = 0;  // of the next message sent
        std::uint64_t expected = 0;  // sequence number of the next reply
        std::size_t in_flight = 0;
        clock::time_point sent_at;  // depth 1: when the message in flight left
        bool done = false;          // has counted down drained_: nothing in flight, or lost
    };

    asio::awaitable<void> drive(std::uint32_t index);
    void check(peer& p, std::uint32_t index, message const& reply);
    void retire(peer& p) {
        if (!std::exchange(p.done, true)) drained_.count_down();
    }
    void print_progress(char const* phase) {
        progress_.print(phase, replies_, {errors_, verify_failures_});
    }

    options const& o_;
    pattern pattern_;
    std::vector<peer> peers_;
    histogram rtt_;
    std::uint64_t replies_ = 0;
    std::uint64_t errors_ = 0;
    std::uint64_t verify_failures_ = 0;
    bool measuring_ = false;  // replies now count towards the round-trip histogram
    bool stopping_ = false;   // the window is over: send nothing new
    bool closing_ = false;    // connections ending now are not failures
    latch drained_;           // peers that still have replies in flight after stopping_
    latch finished_;          // drive() coroutines still running
    echo_progress progress_;
};

// One connection's loop. The reply is checked before the next message is built; both happen on
// this thread, so the hot path is: receive, memcmp, one string for the next payload, send.
asio::awaitable<void> echo_run::drive(std::uint32_t index) {
    peer& p = peers_[index];
    for (;;) {
        // Send: up to the depth at the start, then one per reply. With send(), not async_send():
        // the queue cannot fill (at most `depth` messages are unanswered, and client_settings()
        // puts the limit above that), and skipping the asynchronous operation saves about 7% of
        // the generator's instructions per message (callgrind, 10 connections, depth 16).
        while (!stopping_ && p.in_flight < o_.depth) {
            auto next = message::binary(echo_payload::build(pattern_, index, p.next_seq++));
            if (o_.depth == 1) p.sent_at = clock::now();
            if (auto const refused = p.conn->send(std::move(next))) {
                --p.next_seq;
                if (refused == error::not_connected) break;  // ending: the receive below says why
                ++errors_;  // send_queue_full: client_settings() is wrong
                complain(problem::lost, "connection %u: send failed: %s", index,
                         refused.message().c_str());
                retire(p);
                co_return;
            }
            ++p.in_flight;
        }
        if (stopping_ && p.in_flight == 0) retire(p);  // then receive until the closing handshake
        auto [ec, reply] = co_await p.conn->async_receive(use_tuple);
        if (ec) {
            if (!closing_) {  // lost before we closed it
                ++errors_;
                complain(problem::lost, "connection %u lost: %s", index,
                         why_ended(*p.conn, ec).c_str());
            }
            retire(p);
            co_return;  // after closing_: the closing handshake ended the stream
        }
        if (o_.depth == 1 && measuring_) rtt_.record(clock::now() - p.sent_at);
        ++replies_;
        check(p, index, reply);
        if (p.in_flight > 0) --p.in_flight;  // a surplus reply was a verify failure already
    }
}

void echo_run::check(peer& p, std::uint32_t index, message const& reply) {
    std::uint64_t seen = p.expected;
    auto const d = reply.is_binary()
                       ? echo_payload::verify(reply.data(), pattern_, index, p.expected, seen)
                       : defect::wrong_type;
    if (d == defect::none) {
        ++p.expected;
        return;
    }
    ++verify_failures_;
    complain(problem::verify, "connection %u: reply %llu: %s (got %zu bytes, seq %llu)", index,
             static_cast<unsigned long long>(p.expected), describe(d), reply.size(),
             static_cast<unsigned long long>(seen));
    // Resynchronise on a readable sequence number, so one lost reply counts once, not forever.
    p.expected = d == defect::out_of_order ? seen + 1 : p.expected + 1;
}

asio::awaitable<json::object> echo_run::run() {
    auto ex = co_await asio::this_coro::executor;
    auto fleet = co_await open_fleet(o_);
    errors_ += fleet.failed;

    peers_.resize(fleet.connections.size());  // never resized again: drive() holds references
    for (std::uint32_t i = 0; i < peers_.size(); ++i) {
        if (!fleet.connections[i]) continue;
        peers_[i].conn = fleet.connections[i];
        drained_.add();
        finished_.add();
        asio::co_spawn(ex, drive(i), [this](std::exception_ptr e) {
            if (e) std::rethrow_exception(e);  // a bug in the generator
            finished_.count_down();
        });
    }

    // Warm-up, then the measured window: counters are read at its edges, not reset.
    cpu_usage cpu;
    std::uint64_t replies = 0;
    if (finished_.remaining() > 0) {
        progress_ticks const ticks{o_.progress,
                                   [this](char const* phase) { print_progress(phase); }};
        co_await wait_until(clock::now() + std::chrono::duration_cast<clock::duration>(o_.warmup),
                            ticks.warmup);
        auto const cpu_begin = cpu_snapshot::take(o_.server_pid);
        auto const replies_begin = replies_;
        measuring_ = true;
        co_await wait_until(cpu_begin.at + std::chrono::duration_cast<clock::duration>(o_.duration),
                            ticks.measuring);
        cpu = cpu_snapshot::take(o_.server_pid) - cpu_begin;
        replies = replies_ - replies_begin;
        measuring_ = false;
    }

    // Collect the replies still in flight (they are verified too), then close every connection
    // while its drive() keeps receiving, so that the server's close frame is read.
    stopping_ = true;
    auto const drain_deadline = clock::now() + drain_timeout;
    if (!co_await drained_.wait(drain_deadline)) {
        errors_ += drained_.remaining();
        complain(problem::other,
                 "%zu connections still had replies missing %lld s after the window",
                 drained_.remaining(), static_cast<long long>(drain_timeout.count()));
    }
    closing_ = true;
    errors_ += co_await close_fleet(fleet.connections, close_timeout);
    co_await finished_.wait();  // prompt: every connection has ended

    auto report = echo_report(o_, cpu, replies, rtt_, {errors_, verify_failures_});
    co_return report;
}

}  // namespace

asio::awaitable<json::object> run_echo(options const& o) {
    echo_run r{o, co_await asio::this_coro::executor};
    co_return co_await r.run();
}

}  // namespace wscoro::bench
