// The broadcast scenario, against a server that relays every message it receives to every client
// (the sender included): the same protocol as wscoro-bench's (bench/generator/broadcast.cpp).
// C subscribers connect; once every one of them provably receives relayed messages (probes),
// connection 0 publishes sequence-numbered, time-stamped payloads as fast as the window allows:
// at most W publishes not yet received by every subscriber. Publishes made possible while one
// batch of events is handled leave together, in one write, at the end of the loop iteration.
// Every subscriber checks each payload as it arrives and that it sees 0, 1, 2, ... without gaps;
// latency is receive time minus the time in the payload.
#include "fleet.hpp"
#include "log.hpp"
#include "payload.hpp"
#include "scenarios.hpp"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <utility>

namespace wscoro::bench::epoll {

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

class broadcast_run final : public handler {
public:
    broadcast_run(options const& o, endpoint const& ep)
        : o_(o), pattern_(o.size - broadcast_payload::header_size),
          bodies_(pattern_, mix(o.size ^ 0xb)), subscribers_(o.connections),
          delivered_(o.window, 0), fleet_(o, ep, bodies_, *this) {
        if (o.rate > 0)
            period_ = std::chrono::duration_cast<clock::duration>(
                std::chrono::duration<double>(1.0 / o.rate));
    }

    json::object run();

private:
    static constexpr std::size_t head_size = broadcast_payload::header_size;

    struct subscriber {
        std::uint64_t expected = 0;  // the next sequence number
        bool joined = false;         // has received a probe: the server relays to it
        bool live = false;           // counted in live_
        // The message being received.
        std::uint64_t received = 0;
        bool binary = false;
        bool head_ok = false;  // header complete and its check holds
        bool body_ok = true;
        broadcast_payload::header h{};
        char head[head_size];
    };

    void on_begin(connection& c, unsigned opcode) override;
    void on_data(connection& c, char const* data, std::size_t size) override;
    void on_end(connection& c) override;
    void on_ended(connection& c, std::string const& why) override;
    void on_iteration(clock::time_point) override {
        if (period_ > clock::duration::zero()) publish_more();
    }
    clock::time_point next_wakeup() const override {
        bool const paced = period_ > clock::duration::zero() && publishing_ && !stopping_ &&
                           published_ - completed_ < o_.window;
        return paced ? due_ : clock::time_point::max();
    }

    bool wait_for_everyone();
    void publish_more();
    void join(subscriber& s) {
        if (!std::exchange(s.joined, true)) ++joined_;
    }
    void leave(subscriber& s) {
        if (!std::exchange(s.live, false)) return;
        --live_;
        if (s.joined) --joined_;
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
        if (completed_ != before) publish_more();
    }
    void print_progress(char const* phase);

    options const& o_;
    pattern pattern_;
    masked_pattern bodies_;
    std::vector<subscriber> subscribers_;
    std::size_t live_ = 0;                // subscribers still connected
    std::size_t joined_ = 0;              // live subscribers that received a probe
    std::uint64_t published_ = 0;         // queued on the publisher's connection; the next seq
    std::uint64_t completed_ = 0;         // publishes every live subscriber received
    std::vector<std::size_t> delivered_;  // [seq % W]: subscribers that have seq (incomplete)
    std::uint64_t deliveries_ = 0;
    std::uint64_t errors_ = 0;
    std::uint64_t verify_failures_ = 0;
    histogram latency_;
    connection* publisher_ = nullptr;
    clock::duration period_{};  // --rate: between publishes; zero = as fast as the window allows
    clock::time_point due_{};   // --rate: of the next publish
    bool publishing_ = false;   // every subscriber has joined
    bool measuring_ = false;
    bool stopping_ = false;  // the window is over: publish nothing new
    bool closing_ = false;   // connections ending now are not failures
    fleet fleet_;
    std::uint64_t deliveries_at_last_line_ = 0;
    std::uint64_t published_at_last_line_ = 0;
};

void broadcast_run::on_begin(connection& c, unsigned opcode) {
    auto& s = subscribers_[c.index];
    s.received = 0;
    s.binary = opcode == op::binary;
    s.head_ok = false;
    s.body_ok = true;
}

void broadcast_run::on_data(connection& c, char const* data, std::size_t size) {
    auto& s = subscribers_[c.index];
    if (s.received < head_size) {
        auto const n = std::min<std::size_t>(head_size - s.received, size);
        std::memcpy(s.head + s.received, data, n);
        s.received += n;
        data += n;
        size -= n;
        if (s.received == head_size)
            s.head_ok = broadcast_payload::read_header({s.head, head_size}, s.h);
    }
    if (size == 0) return;
    if (s.head_ok && s.body_ok) {
        auto const body = pattern_.body(s.h.seq);
        auto const at = s.received - head_size;
        if (at < body.size()) {
            auto const n = std::min<std::uint64_t>(size, body.size() - at);
            s.body_ok = std::memcmp(data, body.data() + at, n) == 0;
        }  // bytes beyond the body: the length check at the end fails
    }
    s.received += size;
}

void broadcast_run::on_end(connection& c) {
    auto& s = subscribers_[c.index];
    auto const index = c.index;
    if (!s.binary || !s.head_ok) {
        ++verify_failures_;
        complain(problem::verify, "subscriber %u: %llu-byte %s message without a valid header",
                 index, static_cast<unsigned long long>(s.received), s.binary ? "binary" : "text");
        return;
    }
    auto const& h = s.h;
    if (h.seq == broadcast_payload::probe_seq && s.received == head_size) {
        join(s);
        return;
    }
    if (h.seq != s.expected) {
        ++verify_failures_;
        complain(problem::verify, "subscriber %u: got seq %llu, expected %llu", index,
                 static_cast<unsigned long long>(h.seq),
                 static_cast<unsigned long long>(s.expected));
        if (h.seq < s.expected || h.seq >= published_) return;  // a duplicate, or not ours
        // A gap: the missing publishes will not come; stop waiting for them here.
        while (s.expected < h.seq) delivered(s.expected++);
    }
    ++s.expected;
    auto const d = s.received != o_.size ? defect::wrong_size
                   : !s.body_ok          ? defect::bad_body
                                         : defect::none;
    if (d != defect::none) {
        ++verify_failures_;
        complain(problem::verify, "subscriber %u: seq %llu: %s (%llu bytes)", index,
                 static_cast<unsigned long long>(h.seq), describe(d),
                 static_cast<unsigned long long>(s.received));
    }
    ++deliveries_;
    if (measuring_)
        latency_.record(std::chrono::nanoseconds{fleet_.read_time().time_since_epoch()} -
                        std::chrono::nanoseconds{h.sent_ns});
    delivered(h.seq);
}

void broadcast_run::on_ended(connection& c, std::string const& why) {
    if (!closing_) {
        ++errors_;
        complain(problem::lost, "subscriber %u lost: %s", c.index, why.c_str());
    }
    leave(subscribers_[c.index]);
}

// Publishes while the window has room (and, with --rate, on schedule). A publisher held back by a
// full window resumes the schedule from now instead of bursting to catch up: the rate is then
// what the server sustains, and the latencies are those of the requested spacing.
void broadcast_run::publish_more() {
    if (!publishing_ || stopping_ || publisher_->st != connection::state::open) return;
    while (published_ - completed_ < o_.window) {
        if (period_ > clock::duration::zero()) {
            auto const now = clock::now();
            if (now < due_) return;
            due_ = std::max(due_, now - period_) + period_;
        }
        // [seq u64][sent at u64][check u32], then the body window (payload.hpp).
        char head[head_size];
        std::uint64_t const seq = published_;
        std::int64_t const sent = now_ns();
        std::uint32_t const check = broadcast_payload::check(seq, sent);
        std::memcpy(head, &seq, 8);
        std::memcpy(head + 8, &sent, 8);
        std::memcpy(head + 16, &check, 4);
        fleet_.send(*publisher_, head, head_size, true, seq);
        ++published_;
    }
}

// Probes until every live subscriber has received one: from then on the server relays to all of
// them, so each must see every publish. False if that did not happen within --connect-timeout.
bool broadcast_run::wait_for_everyone() {
    auto const give_up =
        clock::now() + std::chrono::duration_cast<clock::duration>(o_.connect_timeout);
    while (joined_ < live_ && clock::now() < give_up && publisher_->st == connection::state::open) {
        char head[head_size];
        std::uint64_t const seq = broadcast_payload::probe_seq;
        std::int64_t const sent = now_ns();
        std::uint32_t const check = broadcast_payload::check(seq, sent);
        std::memcpy(head, &seq, 8);
        std::memcpy(head + 8, &sent, 8);
        std::memcpy(head + 16, &check, 4);
        fleet_.send(*publisher_, head, head_size, false, 0);
        fleet_.run_until(std::min(give_up, clock::now() + probe_interval),
                         [this] { return joined_ >= live_; });
    }
    if (joined_ < live_) {
        errors_ += live_ - joined_;
        complain(problem::other, "%zu of %zu subscribers never received a relayed message",
                 live_ - joined_, live_);
        return false;
    }
    return live_ > 0;
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

json::object broadcast_run::run() {
    errors_ += fleet_.open_all();
    for (std::size_t i = 0; i < fleet_.size(); ++i) {
        if (fleet_[i].st != connection::state::open) continue;
        if (!publisher_) publisher_ = &fleet_[i];  // connection 0, or the first that opened
        subscribers_[i].live = true;
        ++live_;
    }

    cpu_usage cpu;
    run_queue_window waits{o_.server_pid};
    std::uint64_t published = 0, deliveries = 0;
    if (publisher_ && wait_for_everyone()) {
        publishing_ = true;
        due_ = clock::now();
        publish_more();

        std::function<void()> warmup_line, measure_line;
        if (o_.progress) {
            warmup_line = [this] { print_progress("warm-up"); };
            measure_line = [this] { print_progress("measuring"); };
        }
        fleet_.pass_time(clock::now() + std::chrono::duration_cast<clock::duration>(o_.warmup),
                         warmup_line);
        auto const cpu_begin = cpu_snapshot::take(o_.server_pid);
        waits.begin();
        auto const published_begin = published_, deliveries_begin = deliveries_;
        measuring_ = true;
        fleet_.pass_time(cpu_begin.at + std::chrono::duration_cast<clock::duration>(o_.duration),
                         measure_line);
        cpu = cpu_snapshot::take(o_.server_pid) - cpu_begin;
        waits.end();
        published = published_ - published_begin;
        deliveries = deliveries_ - deliveries_begin;
        measuring_ = false;

        // Let what was published reach everyone (it is verified too) before closing.
        stopping_ = true;
        if (!fleet_.run_until(clock::now() + settle_timeout,
                              [this] { return completed_ >= published_; })) {
            ++errors_;
            complain(problem::other,
                     "%llu publishes had not reached every subscriber %lld s after the window",
                     static_cast<unsigned long long>(published_ - completed_),
                     static_cast<long long>(settle_timeout.count()));
        }
    }
    closing_ = true;
    errors_ += fleet_.close_all(close_timeout);

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
    add_generator_fields(report, cpu, waits, deliveries, "generator_cpu_us_per_delivery",
                         o_.server_pid);
    return report;
}

}  // namespace

json::object run_broadcast(options const& o, endpoint const& ep) {
    broadcast_run r{o, ep};
    return r.run();
}

}  // namespace wscoro::bench::epoll
