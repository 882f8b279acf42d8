// The broadcast scenario, against a server that relays every message it receives to every client
// (the sender included). C subscribers connect; once every one of them provably receives relayed
// messages, connection 0 publishes sequence-numbered, time-stamped payloads, keeping at most W
// publishes that have not yet reached every subscriber. Every subscriber checks each payload and
// that it sees 0, 1, 2, ... without gaps; latency is receive time minus the time in the payload.
#include "fleet.hpp"
#include "log.hpp"
#include "payload.hpp"
#include "scenarios.hpp"

#include <wscoro/message.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/this_coro.hpp>

#include <algorithm>
#include <cstdio>
#include <exception>

namespace wscoro::bench {

namespace {

using namespace std::chrono_literals;

// A subscriber the server has not registered yet misses the probe; the next one may reach it.
constexpr auto probe_interval = 50ms;
constexpr auto settle_timeout = 10s;  // after the window: for publishes still on their way
constexpr auto close_timeout = 10s;

std::int64_t now_ns() noexcept {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(clock::now().time_since_epoch())
        .count();
}

class broadcast_run {
public:
    broadcast_run(options const& o, asio::any_io_executor ex)
        : o_(o), pattern_(o.size - broadcast_payload::header_size), delivered_(o.window, 0),
          publisher_wake_(ex), joined_wake_(ex), settled_wake_(ex), subscribers_done_(ex, 0),
          publisher_done_(ex, 0) {}

    asio::awaitable<json::object> run();

private:
    struct subscriber {
        connection_ptr conn;
        std::uint64_t expected = 0;  // the next sequence number
        bool joined = false;         // has received a probe: the server relays to it
        bool live = false;           // counted in live_
    };

    asio::awaitable<void> subscribe(std::uint32_t index);
    asio::awaitable<void> publish(connection_ptr conn);
    asio::awaitable<bool> wait_for_everyone(connection_ptr const& publisher);

    void join(subscriber& s) {
        if (std::exchange(s.joined, true)) return;
        if (++joined_ == live_) joined_wake_.notify();
    }
    void leave(subscriber& s) {
        if (!std::exchange(s.live, false)) return;
        --live_;
        if (s.joined) --joined_;
        joined_wake_.notify();
        complete_in_order();  // publishes that were only waiting for this one are complete now
    }
    void delivered(std::uint64_t seq) {
        if (seq < completed_ || seq >= published_) return;  // already complete (a subscriber left)
        ++delivered_[seq % o_.window];
        complete_in_order();
    }
    // A publish is complete when every live subscriber has it; completion is in sequence order
    // (a subscriber receives n - 1 before n), which is what makes the W counters a ring.
    void complete_in_order() {
        auto const before = completed_;
        while (completed_ < published_ && delivered_[completed_ % o_.window] >= live_)
            delivered_[completed_++ % o_.window] = 0;
        if (completed_ == before) return;
        if (publisher_waiting_) publisher_wake_.notify();
        if (stopping_ && completed_ == published_) settled_wake_.notify();
    }
    void print_progress(char const* phase);

    options const& o_;
    pattern pattern_;
    std::vector<subscriber> subscribers_;
    std::size_t live_ = 0;                // subscribers still connected
    std::size_t joined_ = 0;              // live subscribers that received a probe
    std::uint64_t published_ = 0;         // handed to the publisher's connection; also the next seq
    std::uint64_t completed_ = 0;         // publishes every live subscriber received
    std::vector<std::size_t> delivered_;  // [seq % W]: subscribers that have seq (incomplete)
    std::uint64_t deliveries_ = 0;
    std::uint64_t errors_ = 0;
    std::uint64_t verify_failures_ = 0;
    histogram latency_;
    bool measuring_ = false;
    bool stopping_ = false;           // the window is over: publish nothing new
    bool closing_ = false;            // connections ending now are not failures
    bool publisher_waiting_ = false;  // for window space (not for its pacing timer)
    wakeup publisher_wake_;
    wakeup joined_wake_;
    wakeup settled_wake_;
    latch subscribers_done_;
    latch publisher_done_;
    std::uint64_t deliveries_at_last_line_ = 0;
    std::uint64_t published_at_last_line_ = 0;
};

asio::awaitable<void> broadcast_run::subscribe(std::uint32_t index) {
    subscriber& s = subscribers_[index];
    for (;;) {
        auto [ec, m] = co_await s.conn->async_receive(use_tuple);
        if (ec) {
            if (!closing_) {
                ++errors_;
                complain(problem::lost, "subscriber %u lost: %s", index,
                         why_ended(*s.conn, ec).c_str());
            }
            leave(s);
            co_return;
        }
        auto const received = clock::now();
        broadcast_payload::header h{};
        if (!m.is_binary() || !broadcast_payload::read_header(m.data(), h)) {
            ++verify_failures_;
            complain(problem::verify, "subscriber %u: %zu-byte %s message without a valid header",
                     index, m.size(), m.is_binary() ? "binary" : "text");
            continue;
        }
        if (broadcast_payload::is_probe(m.data(), h)) {
            join(s);
            continue;
        }
        if (h.seq != s.expected) {
            ++verify_failures_;
            complain(problem::verify, "subscriber %u: got seq %llu, expected %llu", index,
                     static_cast<unsigned long long>(h.seq),
                     static_cast<unsigned long long>(s.expected));
            if (h.seq < s.expected || h.seq >= published_) continue;  // a duplicate, or not ours
            // A gap: the missing publishes will not come; stop waiting for them here.
            while (s.expected < h.seq) delivered(s.expected++);
        }
        ++s.expected;
        if (auto const d = broadcast_payload::verify_body(m.data(), pattern_, h);
            d != defect::none) {
            ++verify_failures_;
            complain(problem::verify, "subscriber %u: seq %llu: %s (%zu bytes)", index,
                     static_cast<unsigned long long>(h.seq), describe(d), m.size());
        }
        ++deliveries_;
        if (measuring_)
            latency_.record(std::chrono::nanoseconds{received.time_since_epoch()} -
                            std::chrono::nanoseconds{h.sent_ns});
        delivered(h.seq);
    }
}

// Publishes until stopping_, within the window and, with --rate, on schedule. A publisher held back
// by a full window resumes the schedule from now instead of bursting to catch up: the rate is then
// what the server sustains, and the latencies are those of the requested spacing.
asio::awaitable<void> broadcast_run::publish(connection_ptr conn) {
    auto const period = o_.rate > 0 ? std::chrono::duration_cast<clock::duration>(
                                          std::chrono::duration<double>(1.0 / o_.rate))
                                    : clock::duration::zero();
    auto due = clock::now();
    while (!stopping_) {
        if (published_ - completed_ >= o_.window) {
            publisher_waiting_ = true;
            co_await publisher_wake_.wait();
            publisher_waiting_ = false;
            continue;
        }
        if (o_.rate > 0) {
            auto const now = clock::now();
            if (now < due) {
                co_await publisher_wake_.wait(due);
                continue;
            }
            due = std::max(due, now - period) + period;
        }
        auto next = message::binary(broadcast_payload::build(pattern_, published_, now_ns()));
        ++published_;  // before the send completes: a fast relay may deliver it first
        auto [ec] = co_await conn->async_send(std::move(next), use_tuple);
        if (ec) {
            --published_;  // never sent, so never delivered; nothing was published after it
            // not_connected: the connection is ending, and its subscriber loop says why.
            if (!closing_ && ec != error::not_connected) {
                ++errors_;
                complain(problem::lost, "publisher: send failed: %s", ec.message().c_str());
            }
            co_return;
        }
    }
}

// Probes until every live subscriber has received one: from then on the server relays to all of
// them, so each must see every publish. False if that did not happen within --connect-timeout.
asio::awaitable<bool> broadcast_run::wait_for_everyone(connection_ptr const& publisher) {
    auto const give_up =
        clock::now() + std::chrono::duration_cast<clock::duration>(o_.connect_timeout);
    while (joined_ < live_ && clock::now() < give_up) {
        auto probe = message::binary(broadcast_payload::probe(now_ns()));
        auto [ec] = co_await publisher->async_send(std::move(probe), use_tuple);
        if (ec) break;
        auto const next_probe = clock::now() + probe_interval;
        while (joined_ < live_ && clock::now() < next_probe) co_await joined_wake_.wait(next_probe);
    }
    if (joined_ < live_) {
        errors_ += live_ - joined_;
        complain(problem::other, "%zu of %zu subscribers never received a relayed message",
                 live_ - joined_, live_);
        co_return false;
    }
    co_return true;
}

void broadcast_run::print_progress(char const* phase) {
    std::fprintf(stderr,
                 "broadcast %s: %llu publishes/s, %llu deliveries/s, %zu subscribers, %llu errors, "
                 "%llu verify failures\n",
                 phase, static_cast<unsigned long long>(published_ - published_at_last_line_),
                 static_cast<unsigned long long>(deliveries_ - deliveries_at_last_line_), live_,
                 static_cast<unsigned long long>(errors_),
                 static_cast<unsigned long long>(verify_failures_));
    published_at_last_line_ = published_;
    deliveries_at_last_line_ = deliveries_;
}

asio::awaitable<json::object> broadcast_run::run() {
    auto ex = co_await asio::this_coro::executor;
    auto fleet = co_await open_fleet(o_);
    errors_ += fleet.failed;

    // Never resized again: subscribe() holds references.
    subscribers_.resize(fleet.connections.size());
    connection_ptr publisher;  // connection 0, or the first that opened
    for (std::uint32_t i = 0; i < subscribers_.size(); ++i) {
        if (!fleet.connections[i]) continue;
        if (!publisher) publisher = fleet.connections[i];
        subscribers_[i].conn = fleet.connections[i];
        subscribers_[i].live = true;
        ++live_;
        subscribers_done_.add();
        asio::co_spawn(ex, subscribe(i), [this](std::exception_ptr e) {
            if (e) std::rethrow_exception(e);  // a bug in the generator
            subscribers_done_.count_down();
        });
    }

    cpu_usage cpu;
    std::uint64_t published = 0, deliveries = 0;
    if (publisher && co_await wait_for_everyone(publisher)) {
        publisher_done_.add();
        asio::co_spawn(ex, publish(publisher), [this](std::exception_ptr e) {
            if (e) std::rethrow_exception(e);
            publisher_done_.count_down();
        });

        std::function<void()> warmup_line, measure_line;
        if (o_.progress) {
            warmup_line = [this] { print_progress("warm-up"); };
            measure_line = [this] { print_progress("measuring"); };
        }
        co_await wait_until(clock::now() + std::chrono::duration_cast<clock::duration>(o_.warmup),
                            warmup_line);
        auto const cpu_begin = cpu_snapshot::take(o_.server_pid);
        auto const published_begin = published_, deliveries_begin = deliveries_;
        measuring_ = true;
        co_await wait_until(cpu_begin.at + std::chrono::duration_cast<clock::duration>(o_.duration),
                            measure_line);
        cpu = cpu_snapshot::take(o_.server_pid) - cpu_begin;
        published = published_ - published_begin;
        deliveries = deliveries_ - deliveries_begin;
        measuring_ = false;

        // Let what was published reach everyone (it is verified too) before closing.
        stopping_ = true;
        publisher_wake_.notify();
        auto const settle_deadline = clock::now() + settle_timeout;
        co_await publisher_done_.wait(settle_deadline);
        while (completed_ < published_ && clock::now() < settle_deadline)
            co_await settled_wake_.wait(settle_deadline);
        if (completed_ < published_) {
            ++errors_;
            complain(problem::other,
                     "%llu publishes had not reached every subscriber %lld s after the window",
                     static_cast<unsigned long long>(published_ - completed_),
                     static_cast<long long>(settle_timeout.count()));
        }
    }
    closing_ = true;
    errors_ += co_await close_fleet(fleet.connections, close_timeout);
    co_await subscribers_done_.wait();  // prompt: every connection has ended
    co_await publisher_done_.wait();    // its send fails once its connection has ended

    json::object report;
    report["scenario"] = "broadcast";
    report["connections"] = o_.connections;
    report["size"] = o_.size;
    report["duration_s"] = cpu.wall_s;
    report["published"] = published;
    report["deliveries"] = deliveries;
    report["deliveries_per_s"] =
        cpu.wall_s > 0 ? static_cast<double>(deliveries) / cpu.wall_s : 0.0;
    if (latency_.count() > 0)
        report["latency_us"] = percentiles(latency_, {{"p50", 0.50}, {"p99", 0.99}});
    else
        report["latency_us"] = nullptr;
    report["errors"] = errors_;
    report["verify_failures"] = verify_failures_;
    add_cpu(report, cpu, deliveries, "server_cpu_us_per_delivery");
    co_return report;
}

}  // namespace

asio::awaitable<json::object> run_broadcast(options const& o) {
    broadcast_run r{o, co_await asio::this_coro::executor};
    co_return co_await r.run();
}

}  // namespace wscoro::bench
