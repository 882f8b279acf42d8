// The echo scenario: C connections, each keeping D messages in flight (send D, then one more per
// reply). Every reply is verified as wscoro-bench verifies it (payload.hpp: length, header,
// sequence number, body), but as its bytes arrive, frame by frame: nothing is reassembled.
// With D = 1 each round trip is timed.
#include "fleet.hpp"
#include "log.hpp"
#include "payload.hpp"
#include "progress.hpp"
#include "scenarios.hpp"
#include "streamed_message.hpp"

#include <cstring>
#include <utility>

namespace wscoro::bench::epoll {

namespace {

using namespace std::chrono_literals;

constexpr auto drain_timeout = 10s;  // after the window: for the replies still in flight
constexpr auto close_timeout = 10s;  // for every closing handshake

class echo_run final : public handler {
public:
    echo_run(options const& o, endpoint const& ep)
        : o_(o), pattern_(o.size - echo_payload::header_size), bodies_(pattern_, mix(o.size)),
          peers_(o.connections), fleet_(o, ep, bodies_, *this) {}

    json::object run();

private:
    static constexpr std::size_t head_size = echo_payload::header_size;

    struct peer {
        std::uint64_t next_seq = 0;  // of the next message sent
        std::uint64_t expected = 0;  // sequence number of the next reply
        std::size_t in_flight = 0;
        clock::time_point sent_at;  // depth 1: when the message in flight was queued
        bool done = true;           // not (or no longer) counted in draining_
        // The reply being received: its header must name this connection and its check hold.
        streamed_message<head_size> in;
        std::uint64_t seen = 0;  // its sequence number, once its header is in
    };

    void on_begin(connection& c, unsigned opcode) override;
    void on_data(connection& c, char const* data, std::size_t size) override;
    void on_end(connection& c) override;
    void on_ended(connection& c, std::string const& why) override;

    void send_more(connection& c, peer& p);
    void retire(peer& p) {
        if (!std::exchange(p.done, true)) --draining_;
    }
    void print_progress(char const* phase) {
        progress_.print(phase, replies_, {errors_, verify_failures_});
    }

    options const& o_;
    pattern pattern_;
    masked_pattern bodies_;
    std::vector<peer> peers_;
    fleet fleet_;
    histogram rtt_;
    std::uint64_t replies_ = 0;
    std::uint64_t errors_ = 0;
    std::uint64_t verify_failures_ = 0;
    std::size_t draining_ = 0;  // open connections that may still get replies
    bool measuring_ = false;    // replies now count towards the round-trip histogram
    bool stopping_ = false;     // the window is over: send nothing new
    bool closing_ = false;      // connections ending now are not failures
    echo_progress progress_;
};

void echo_run::send_more(connection& c, peer& p) {
    while (p.in_flight < o_.depth) {
        // [connection u32][seq u64][check u32], then the body window (payload.hpp's echo_payload).
        char head[head_size];
        std::uint32_t const conn = c.index;
        std::uint64_t const seq = p.next_seq;
        std::uint32_t const check = echo_payload::check(conn, seq);
        std::memcpy(head, &conn, 4);
        std::memcpy(head + 4, &seq, 8);
        std::memcpy(head + 12, &check, 4);
        if (o_.depth == 1) p.sent_at = clock::now();
        fleet_.send(c, head, head_size, true, echo_payload::key(conn, seq));
        ++p.next_seq;
        ++p.in_flight;
    }
}

void echo_run::on_begin(connection& c, unsigned opcode) {
    auto& p = peers_[c.index];
    p.in.begin(opcode);
    p.seen = p.expected;
}

void echo_run::on_data(connection& c, char const* data, std::size_t size) {
    auto& p = peers_[c.index];
    auto read_header = [&](std::string_view head) {
        std::uint32_t conn, check;
        std::uint64_t seq;
        std::memcpy(&conn, head.data(), 4);
        std::memcpy(&seq, head.data() + 4, 8);
        std::memcpy(&check, head.data() + 12, 4);
        if (conn != c.index || check != echo_payload::check(conn, seq)) return false;
        p.seen = seq;
        return true;
    };
    // The body that message `seen` carried.
    auto body = [&] { return pattern_.body(echo_payload::key(c.index, p.seen)); };
    p.in.feed(data, size, read_header, body);
}

void echo_run::on_end(connection& c) {
    auto& p = peers_[c.index];
    // The same order of checks as echo_payload::verify().
    auto const d = !p.in.binary               ? defect::wrong_type
                   : p.in.received != o_.size ? defect::wrong_size
                   : !p.in.head_ok            ? defect::bad_header
                   : p.seen != p.expected     ? defect::out_of_order
                   : !p.in.body_ok            ? defect::bad_body
                                              : defect::none;
    if (o_.depth == 1 && measuring_) rtt_.record(fleet_.read_time() - p.sent_at);
    ++replies_;
    if (d == defect::none) {
        ++p.expected;
    } else {
        ++verify_failures_;
        complain(problem::verify, "connection %u: reply %llu: %s (got %llu bytes, seq %llu)",
                 c.index, static_cast<unsigned long long>(p.expected), describe(d),
                 static_cast<unsigned long long>(p.in.received),
                 static_cast<unsigned long long>(p.seen));
        // Resynchronise on a readable sequence number, so one lost reply counts once, not forever.
        p.expected = d == defect::out_of_order ? p.seen + 1 : p.expected + 1;
    }
    if (p.in_flight > 0) --p.in_flight;  // a surplus reply was a verify failure already
    if (!stopping_)
        send_more(c, p);
    else if (p.in_flight == 0)
        retire(p);
}

void echo_run::on_ended(connection& c, std::string const& why) {
    if (!closing_) {  // lost before we closed it
        ++errors_;
        complain(problem::lost, "connection %u lost: %s", c.index, why.c_str());
    }
    retire(peers_[c.index]);
}

json::object echo_run::run() {
    errors_ += fleet_.open_all();
    for (std::size_t i = 0; i < fleet_.size(); ++i) {
        if (fleet_[i].st != connection::state::open) continue;
        peers_[i].done = false;
        ++draining_;
        send_more(fleet_[i], peers_[i]);
    }

    // Warm-up, then the measured window: counters are read at its edges, not reset.
    cpu_usage cpu;
    run_queue_window waits{o_.server_pid};
    std::uint64_t replies = 0;
    if (draining_ > 0) {
        progress_ticks const ticks{o_.progress,
                                   [this](char const* phase) { print_progress(phase); }};
        fleet_.pass_time(clock::now() + std::chrono::duration_cast<clock::duration>(o_.warmup),
                         ticks.warmup);
        auto const cpu_begin = cpu_snapshot::take(o_.server_pid);
        waits.begin();
        auto const replies_begin = replies_;
        measuring_ = true;
        fleet_.pass_time(cpu_begin.at + std::chrono::duration_cast<clock::duration>(o_.duration),
                         ticks.measuring);
        cpu = cpu_snapshot::take(o_.server_pid) - cpu_begin;
        waits.end();
        replies = replies_ - replies_begin;
        measuring_ = false;
    }

    // Collect the replies still in flight (they are verified too), then close every connection.
    stopping_ = true;
    for (auto& p : peers_)
        if (p.in_flight == 0) retire(p);
    if (!fleet_.run_until(clock::now() + drain_timeout, [this] { return draining_ == 0; })) {
        errors_ += draining_;
        complain(problem::other,
                 "%zu connections still had replies missing %lld s after the window", draining_,
                 static_cast<long long>(drain_timeout.count()));
    }
    closing_ = true;
    errors_ += fleet_.close_all(close_timeout);

    auto report = echo_report(o_, cpu, replies, rtt_, {errors_, verify_failures_});
    add_generator_fields(report, cpu, waits, replies, "generator_cpu_us_per_msg", o_.server_pid);
    return report;
}

}  // namespace

json::object run_echo(options const& o, endpoint const& ep) {
    echo_run r{o, ep};
    return r.run();
}

}  // namespace wscoro::bench::epoll
