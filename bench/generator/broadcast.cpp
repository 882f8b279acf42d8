// The broadcast scenario, against a server that relays every message it receives to every client
// (the sender included). C subscribers connect; once every one of them provably receives relayed
// messages, connection 0 publishes sequence-numbered, time-stamped payloads, keeping at most W
// publishes that have not yet reached every subscriber. Every subscriber checks each payload and
// that it sees 0, 1, 2, ... without gaps; latency is receive time minus the time in the payload.
#include "broadcast_window.hpp"
#include "fleet.hpp"
#include "log.hpp"
#include "payload.hpp"
#include "progress.hpp"
#include "scenarios.hpp"

#include <wscoro/message.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/this_coro.hpp>

#include <algorithm>
#include <exception>

namespace wscoro::bench {

namespace {

using namespace std::chrono_literals;

constexpr auto close_timeout = 10s;

class broadcast_run {
public:
    broadcast_run(options const& o, asio::any_io_executor ex)
        : o_(o), pattern_(o.size - broadcast_payload::header_size),
          window_(o.window, [this] { completed(); }), publisher_wake_(ex), joined_wake_(ex),
          settled_wake_(ex), subscribers_done_(ex, 0), publisher_done_(ex, 0) {}

    asio::awaitable<json::object> run();

private:
    struct subscriber : broadcast_window::member {
        connection_ptr conn;
    };

    asio::awaitable<void> subscribe(std::uint32_t index);
    asio::awaitable<void> publish(connection_ptr conn);
    asio::awaitable<bool> wait_for_everyone(connection_ptr const& publisher);

    void join(subscriber& s) {
        if (window_.join(s) && window_.everyone_joined()) joined_wake_.notify();
    }
    void leave(subscriber& s) {
        joined_wake_.notify();  // the rest may be everyone now
        window_.leave(s);
    }
    void completed() {  // the window has room again, or everything published has settled
        if (publisher_waiting_) publisher_wake_.notify();
        if (stopping_ && window_.settled()) settled_wake_.notify();
    }
    void print_progress(char const* phase) {
        progress_.print(phase, window_.published(), deliveries_, window_.live(),
                        {errors_, verify_failures_});
    }

    options const& o_;
    pattern pattern_;
    std::vector<subscriber> subscribers_;
    broadcast_window window_;
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
    broadcast_progress progress_;
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
        auto const order = window_.arrive(s, index, h.seq);
        if (order != broadcast_window::arrival::in_order) ++verify_failures_;
        if (order == broadcast_window::arrival::stray) continue;
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
        window_.delivered(h.seq);
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
        if (!window_.has_room()) {
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
        auto const sent_ns = broadcast_payload::now_ns();
        auto next =
            message::binary(broadcast_payload::build(pattern_, window_.published(), sent_ns));
        window_.publish();  // before the send completes: a fast relay may deliver it first
        auto [ec] = co_await conn->async_send(std::move(next), use_tuple);
        if (ec) {
            window_.unpublish();
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
    while (!window_.everyone_joined() && clock::now() < give_up) {
        auto probe = message::binary(broadcast_payload::probe(broadcast_payload::now_ns()));
        auto [ec] = co_await publisher->async_send(std::move(probe), use_tuple);
        if (ec) break;
        auto const next_probe = clock::now() + broadcast_window::probe_interval;
        while (!window_.everyone_joined() && clock::now() < next_probe)
            co_await joined_wake_.wait(next_probe);
    }
    auto const unjoined = window_.count_unjoined();
    errors_ += unjoined;
    co_return unjoined == 0;
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
        window_.enter(subscribers_[i]);
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

        progress_ticks const ticks{o_.progress,
                                   [this](char const* phase) { print_progress(phase); }};
        co_await wait_until(clock::now() + std::chrono::duration_cast<clock::duration>(o_.warmup),
                            ticks.warmup);
        auto const cpu_begin = cpu_snapshot::take(o_.server_pid);
        auto const published_begin = window_.published(), deliveries_begin = deliveries_;
        measuring_ = true;
        co_await wait_until(cpu_begin.at + std::chrono::duration_cast<clock::duration>(o_.duration),
                            ticks.measuring);
        cpu = cpu_snapshot::take(o_.server_pid) - cpu_begin;
        published = window_.published() - published_begin;
        deliveries = deliveries_ - deliveries_begin;
        measuring_ = false;

        // Let what was published reach everyone (it is verified too) before closing.
        stopping_ = true;
        publisher_wake_.notify();
        auto const settle_deadline = clock::now() + broadcast_window::settle_timeout;
        co_await publisher_done_.wait(settle_deadline);
        while (!window_.settled() && clock::now() < settle_deadline)
            co_await settled_wake_.wait(settle_deadline);
        if (!window_.check_settled()) ++errors_;
    }
    closing_ = true;
    errors_ += co_await close_fleet(fleet.connections, close_timeout);
    co_await subscribers_done_.wait();  // prompt: every connection has ended
    co_await publisher_done_.wait();    // its send fails once its connection has ended

    auto report =
        broadcast_report(o_, cpu, published, deliveries, latency_, {errors_, verify_failures_});
    co_return report;
}

}  // namespace

asio::awaitable<json::object> run_broadcast(options const& o) {
    broadcast_run r{o, co_await asio::this_coro::executor};
    co_return co_await r.run();
}

}  // namespace wscoro::bench
