#include "fleet.hpp"

#include "log.hpp"

#include <wscoro/connect.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/this_coro.hpp>

#include <algorithm>
#include <cstdio>
#include <exception>

namespace wscoro::bench {

using namespace std::chrono_literals;

client_config client_settings(options const& o) {
    client_config cfg;
    cfg.url = o.url;
    cfg.auto_reconnect = false;
    cfg.ping_interval = 10min;
    cfg.pong_wait = 10min;
    cfg.write_wait = 60s;  // a 64 KiB message behind a deep queue must not look like a stalled peer
    cfg.handshake_timeout = std::chrono::duration_cast<duration>(o.connect_timeout);
    cfg.max_message_size = std::max<std::size_t>(cfg.max_message_size, o.size + 64);
    // Above what the scenarios keep unanswered (echo: depth; broadcast: window), so that a send
    // never finds the queue full.
    cfg.send_queue_limit = std::max({cfg.send_queue_limit, o.depth + 16, o.window + 16});
    // One read per frame for large payloads instead of growing the buffer in steps.
    cfg.read_buffer_size = std::clamp<std::size_t>(o.size + 64, 4096, std::size_t{1} << 20);
    return cfg;
}

namespace {

// Shared by the workers of one open_fleet(); lives in its frame.
struct opening {
    client_config const& config;
    opened_fleet& out;
    std::size_t next = 0;  // the next connection index to open
};

// Opens connections one after the other until none is left; several of these run at once.
asio::awaitable<void> open_worker(opening& job) {
    auto ex = co_await asio::this_coro::executor;
    while (job.next < job.out.connections.size()) {
        auto const i = job.next++;
        diagnostics diag;
        client_config cfg = job.config;
        auto [ec, conn] = co_await async_connect(ex, std::move(cfg), diag, use_tuple);
        if (ec) {
            ++job.out.failed;
            complain(problem::connect, "connection %zu: %s", i,
                     diag.message.empty() ? ec.message().c_str() : diag.message.c_str());
            continue;
        }
        job.out.connections[i] = std::move(conn);
    }
}

asio::awaitable<void> close_one(connection_ptr conn, std::size_t& unclean) {
    auto [ec] = co_await conn->async_close(close_code::normal, "", use_tuple);
    if (ec) {
        ++unclean;
        complain(problem::close, "closing %s: %s", conn->id().c_str(), ec.message().c_str());
    }
}

asio::awaitable<void> wait_closed(connection_ptr conn) {
    co_await conn->async_wait_closed(use_tuple);
}

// co_spawn's completion handler for tasks joined by a latch: a task that throws is a bug.
auto counted_by(latch& done) {
    return [&done](std::exception_ptr e) {
        if (e) std::rethrow_exception(e);
        done.count_down();
    };
}

}  // namespace

asio::awaitable<opened_fleet> open_fleet(options const& o) {
    auto ex = co_await asio::this_coro::executor;
    auto const config = client_settings(o);
    opened_fleet out;
    out.connections.resize(o.connections);
    opening job{config, out};

    auto const started = clock::now();
    auto const workers = std::min(o.concurrency, o.connections);
    latch done{ex, workers};
    for (std::size_t w = 0; w < workers; ++w)
        asio::co_spawn(ex, open_worker(job), counted_by(done));
    // Every handshake is bounded by handshake_timeout, so the workers finish; the deadline is
    // only the next progress line.
    for (;;) {
        auto const next_line = o.progress ? clock::now() + 1s : clock::time_point::max();
        if (co_await done.wait(next_line)) break;
        std::fprintf(stderr, "opening: %zu of %zu started, %zu failed\n", job.next, o.connections,
                     out.failed);
    }
    out.elapsed = clock::now() - started;
    co_return out;
}

asio::awaitable<std::size_t> close_fleet(std::vector<connection_ptr> const& connections,
                                         clock::duration timeout) {
    auto ex = co_await asio::this_coro::executor;
    std::size_t unclean = 0;
    latch done{ex, 0};
    for (auto const& c : connections) {
        if (!c || !c->is_open()) continue;  // lost earlier: its owner has counted that
        done.add();
        asio::co_spawn(ex, close_one(c, unclean), counted_by(done));
    }
    auto const deadline = clock::now() + timeout;
    if (!co_await done.wait(deadline)) {
        complain(problem::close,
                 "%zu connections did not finish their closing handshake in time: aborted",
                 done.remaining());
        for (auto const& c : connections)
            if (c) c->abort();
        co_await done.wait();  // abort ends each connection at once
    }
    co_return unclean;
}

std::string why_ended(connection const& c, error_code ec) {
    // The close frame says more than websocket::error::closed ("gracefully closed at both ends").
    if (auto const frame = c.last_close())
        return "closed with " + std::to_string(frame.code) + " \"" +
               std::string(frame.reason.data(), frame.reason.size()) + "\"";
    return ec.message();
}

asio::awaitable<void> abort_fleet(std::vector<connection_ptr> const& connections) {
    auto ex = co_await asio::this_coro::executor;
    latch done{ex, 0};
    for (auto const& c : connections) {
        if (!c) continue;
        done.add();
        c->abort();
        asio::co_spawn(ex, wait_closed(c), counted_by(done));
    }
    co_await done.wait();
}

}  // namespace wscoro::bench
