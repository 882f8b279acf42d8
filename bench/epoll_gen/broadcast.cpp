// The broadcast scenario, against a server that relays every message it receives to every client
// (the sender included): the same protocol as wscoro-bench's (bench/generator/broadcast.cpp).
// C subscribers connect; once every one of them provably receives relayed messages (probes),
// connection 0 publishes sequence-numbered, time-stamped payloads as fast as the window allows:
// at most W publishes not yet received by every subscriber. Publishes made possible while one
// batch of events is handled leave together, in one write, at the end of the loop iteration.
// Every subscriber checks each payload as it arrives and that it sees 0, 1, 2, ... without gaps;
// latency is receive time minus the time in the payload.
#include "broadcast_window.hpp"
#include "fleet.hpp"
#include "log.hpp"
#include "payload.hpp"
#include "progress.hpp"
#include "scenarios.hpp"
#include "streamed_message.hpp"

#include <algorithm>
#include <cstring>
#include <utility>

namespace wscoro::bench::epoll {

namespace {

using namespace std::chrono_literals;

constexpr auto close_timeout = 10s;

class broadcast_run final : public handler {
public:
    broadcast_run(options const& o, endpoint const& ep)
        : o_(o), pattern_(o.size - broadcast_payload::header_size),
          bodies_(pattern_, mix(o.size ^ 0xb)), subscribers_(o.connections),
          window_(o.window, [this] { publish_more(); }), fleet_(o, ep, bodies_, *this) {
        if (o.rate > 0)
            period_ = std::chrono::duration_cast<clock::duration>(
                std::chrono::duration<double>(1.0 / o.rate));
    }

    json::object run();

private:
    static constexpr std::size_t head_size = broadcast_payload::header_size;

    struct subscriber : broadcast_window::member {
        // The message being received. Its header is accepted if its check holds.
        streamed_message<head_size> in;
        broadcast_payload::header h{};
    };

    void on_begin(connection& c, unsigned opcode) override;
    void on_data(connection& c, char const* data, std::size_t size) override;
    void on_end(connection& c) override;
    void on_ended(connection& c, std::string const& why) override;
    void on_iteration(clock::time_point) override {
        if (period_ > clock::duration::zero()) publish_more();
    }
    clock::time_point next_wakeup() const override {
        bool const paced =
            period_ > clock::duration::zero() && publishing_ && !stopping_ && window_.has_room();
        return paced ? due_ : clock::time_point::max();
    }

    bool wait_for_everyone();
    void publish_more();
    void print_progress(char const* phase) {
        progress_.print(phase, window_.published(), deliveries_, window_.live(),
                        {errors_, verify_failures_});
    }

    options const& o_;
    pattern pattern_;
    masked_pattern bodies_;
    std::vector<subscriber> subscribers_;
    broadcast_window window_;  // published(): queued on the publisher's connection
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
    broadcast_progress progress_;
};

void broadcast_run::on_begin(connection& c, unsigned opcode) {
    subscribers_[c.index].in.begin(opcode);
}

void broadcast_run::on_data(connection& c, char const* data, std::size_t size) {
    auto& s = subscribers_[c.index];
    auto read_header = [&](std::string_view head) {
        return broadcast_payload::read_header(head, s.h);
    };
    auto body = [&] { return pattern_.body(s.h.seq); };
    s.in.feed(data, size, read_header, body);
}

void broadcast_run::on_end(connection& c) {
    auto& s = subscribers_[c.index];
    auto const index = c.index;
    if (!s.in.binary || !s.in.head_ok) {
        ++verify_failures_;
        complain(problem::verify, "subscriber %u: %llu-byte %s message without a valid header",
                 index, static_cast<unsigned long long>(s.in.received),
                 s.in.binary ? "binary" : "text");
        return;
    }
    auto const& h = s.h;
    if (h.seq == broadcast_payload::probe_seq && s.in.received == head_size) {
        window_.join(s);
        return;
    }
    auto const order = window_.arrive(s, index, h.seq);
    if (order != broadcast_window::arrival::in_order) ++verify_failures_;
    if (order == broadcast_window::arrival::stray) return;
    auto const d = s.in.received != o_.size ? defect::wrong_size
                   : !s.in.body_ok          ? defect::bad_body
                                            : defect::none;
    if (d != defect::none) {
        ++verify_failures_;
        complain(problem::verify, "subscriber %u: seq %llu: %s (%llu bytes)", index,
                 static_cast<unsigned long long>(h.seq), describe(d),
                 static_cast<unsigned long long>(s.in.received));
    }
    ++deliveries_;
    if (measuring_)
        latency_.record(std::chrono::nanoseconds{fleet_.read_time().time_since_epoch()} -
                        std::chrono::nanoseconds{h.sent_ns});
    window_.delivered(h.seq);
}

void broadcast_run::on_ended(connection& c, std::string const& why) {
    if (!closing_) {
        ++errors_;
        complain(problem::lost, "subscriber %u lost: %s", c.index, why.c_str());
    }
    window_.leave(subscribers_[c.index]);
}

// Publishes while the window has room (and, with --rate, on schedule). A publisher held back by a
// full window resumes the schedule from now instead of bursting to catch up: the rate is then
// what the server sustains, and the latencies are those of the requested spacing.
void broadcast_run::publish_more() {
    if (!publishing_ || stopping_ || publisher_->st != connection::state::open) return;
    while (window_.has_room()) {
        if (period_ > clock::duration::zero()) {
            auto const now = clock::now();
            if (now < due_) return;
            due_ = std::max(due_, now - period_) + period_;
        }
        // [seq u64][sent at u64][check u32], then the body window (payload.hpp).
        char head[head_size];
        std::uint64_t const seq = window_.published();
        std::int64_t const sent = broadcast_payload::now_ns();
        std::uint32_t const check = broadcast_payload::check(seq, sent);
        std::memcpy(head, &seq, 8);
        std::memcpy(head + 8, &sent, 8);
        std::memcpy(head + 16, &check, 4);
        fleet_.send(*publisher_, head, head_size, true, seq);
        window_.publish();
    }
}

// Probes until every live subscriber has received one: from then on the server relays to all of
// them, so each must see every publish. False if that did not happen within --connect-timeout.
bool broadcast_run::wait_for_everyone() {
    auto const give_up =
        clock::now() + std::chrono::duration_cast<clock::duration>(o_.connect_timeout);
    while (!window_.everyone_joined() && clock::now() < give_up &&
           publisher_->st == connection::state::open) {
        char head[head_size];
        std::uint64_t const seq = broadcast_payload::probe_seq;
        std::int64_t const sent = broadcast_payload::now_ns();
        std::uint32_t const check = broadcast_payload::check(seq, sent);
        std::memcpy(head, &seq, 8);
        std::memcpy(head + 8, &sent, 8);
        std::memcpy(head + 16, &check, 4);
        fleet_.send(*publisher_, head, head_size, false, 0);
        fleet_.run_until(std::min(give_up, clock::now() + broadcast_window::probe_interval),
                         [this] { return window_.everyone_joined(); });
    }
    auto const unjoined = window_.count_unjoined();
    errors_ += unjoined;
    return unjoined == 0 && window_.live() > 0;
}

json::object broadcast_run::run() {
    errors_ += fleet_.open_all();
    for (std::size_t i = 0; i < fleet_.size(); ++i) {
        if (fleet_[i].st != connection::state::open) continue;
        if (!publisher_) publisher_ = &fleet_[i];  // connection 0, or the first that opened
        window_.enter(subscribers_[i]);
    }

    cpu_usage cpu;
    run_queue_window waits{o_.server_pid};
    std::uint64_t published = 0, deliveries = 0;
    if (publisher_ && wait_for_everyone()) {
        publishing_ = true;
        due_ = clock::now();
        publish_more();

        progress_ticks const ticks{o_.progress,
                                   [this](char const* phase) { print_progress(phase); }};
        fleet_.pass_time(clock::now() + std::chrono::duration_cast<clock::duration>(o_.warmup),
                         ticks.warmup);
        auto const cpu_begin = cpu_snapshot::take(o_.server_pid);
        waits.begin();
        auto const published_begin = window_.published(), deliveries_begin = deliveries_;
        measuring_ = true;
        fleet_.pass_time(cpu_begin.at + std::chrono::duration_cast<clock::duration>(o_.duration),
                         ticks.measuring);
        cpu = cpu_snapshot::take(o_.server_pid) - cpu_begin;
        waits.end();
        published = window_.published() - published_begin;
        deliveries = deliveries_ - deliveries_begin;
        measuring_ = false;

        // Let what was published reach everyone (it is verified too) before closing.
        stopping_ = true;
        fleet_.run_until(clock::now() + broadcast_window::settle_timeout,
                         [this] { return window_.settled(); });
        if (!window_.check_settled()) ++errors_;
    }
    closing_ = true;
    errors_ += fleet_.close_all(close_timeout);

    auto report =
        broadcast_report(o_, cpu, published, deliveries, latency_, {errors_, verify_failures_});
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
