#include <wscoro/client.hpp>
#include <wscoro/connect.hpp>
#include <wscoro/url.hpp>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>

#include "facade.hpp"
#include "strand_consumer.hpp"
#include "stream_connection.hpp"

#include <algorithm>
#include <future>
#include <mutex>
#include <random>

namespace wscoro {

namespace {
struct callbacks {
    client::connect_handler on_connect;
    client::disconnect_handler on_disconnect;
    client::message_handler on_message;
    error_handler on_error;
};

// The pause before the next attempt: reconnect_delay doubled for each failed attempt in a row, at
// most reconnect_delay_max; then up to a quarter of it is added at random (near reconnect_delay_max
// taken off instead), so that clients that lost the same server spread out within the bound.
duration reconnect_pause(client_config const& cfg, int failures_in_a_row, std::minstd_rand& rng) {
    auto const most = cfg.reconnect_delay_max;
    duration base = cfg.reconnect_delay;
    // Bounded: a positive base reaches `most` within 64 doublings; a zero base stays zero.
    for (int i = 0; i < failures_in_a_row && base > duration::zero() && base < most; ++i)
        base = base > most / 2 ? most : base * 2;
    base = std::min(base, most);
    auto const span = base / 4;
    auto const low = std::min(base, most - span);
    std::uniform_int_distribution<duration::rep> jitter{0, span.count()};
    return low + duration{jitter(rng)};
}
}  // namespace

struct client::impl : std::enable_shared_from_this<impl> {
    client_config cfg;
    mutable std::mutex mutex;  // guards the fields below
    callbacks next_callbacks;
    std::shared_ptr<detail::io_threads> io;
    connection_ptr current;
    bool stop_requested = false;  // disconnect(): no reconnect, close at once when connected
    std::shared_ptr<asio::steady_timer> backoff;  // the pause between attempts, on io's thread
    // Cancels the connection attempt under way (emitted on io's thread by disconnect()), so that
    // disconnect()/close() need not wait up to handshake_timeout for a peer that does not answer.
    std::shared_ptr<asio::cancellation_signal> attempt = std::make_shared<asio::cancellation_signal>();

    std::atomic<bool> connected{false};
    std::atomic<bool> supervising{false};
    std::atomic<std::size_t> reconnects{0};
    // Set when the client is destroyed from one of its own callbacks: the I/O thread finishes the
    // close by itself, and no callback may run once the client is gone.
    std::atomic<bool> orphaned{false};
    std::minstd_rand rng{std::random_device{}()};  // reconnect jitter; used on io's thread only

    asio::awaitable<void> supervise(std::shared_ptr<callbacks const> cb,
                                    std::shared_ptr<std::promise<std::pair<error_code, std::string>>> first);
    asio::awaitable<void> deliver(callbacks const& cb, connection_ptr c);
    bool stopping() {
        std::lock_guard lock{mutex};
        return stop_requested;
    }
};

// One connection's message stream turned into callbacks, on the client's thread, which is the
// connection's: as in the server facade, ready messages are taken without waiting, and the
// replies that callbacks send meanwhile leave together.
asio::awaitable<void> client::impl::deliver(callbacks const& cb, connection_ptr c) {
    using detail::invoke_callback;
    // A callback that threw closes the connection with 1011; the stream is drained until it ends.
    bool healthy = orphaned || invoke_callback(cb.on_connect, cb.on_error, "on_connect");
    if (!healthy) c->close(close_code::internal_error, "internal error");
    detail::strand_consumer consumer{*c};
    for (;;) {
        message m;
        if (!consumer.try_take(m)) {
            auto [ec, next] = co_await consumer.async_receive();
            if (ec) break;
            m = std::move(next);
            consumer.took(m);
        }
        if (orphaned) continue;  // drained until the close completes, delivered to no one
        if (healthy && !invoke_callback(cb.on_message, cb.on_error, "on_message", m)) {
            healthy = false;
            c->close(close_code::internal_error, "internal error");
        }
    }
}

// Connect, deliver, and reconnect while the policy says so.
asio::awaitable<void> client::impl::supervise(
    std::shared_ptr<callbacks const> cb,
    std::shared_ptr<std::promise<std::pair<error_code, std::string>>> first) {
    auto ex = co_await asio::this_coro::executor;
    int failures_in_a_row = 0;
    for (;;) {
        diagnostics diag;
        auto [ec, c] = co_await async_connect(
            ex, cfg, diag, asio::bind_cancellation_slot(attempt->slot(), detail::use_tuple));
        if (!ec) {
            std::lock_guard lock{mutex};
            // The application may hold the connection (current()) longer than the client: its
            // socket and timers must not outlive the io_context they belong to.
            c->keep_context_alive(io);
            current = c;  // before connect() returns: sending right after it must work
            connected = true;
            if (stop_requested) c->close();  // disconnect() raced with this attempt
        }
        if (first) {  // connect() is waiting for this attempt, and reports its failure itself
            first->set_value({ec, diag.message});
            first.reset();
            if (ec) break;
        } else if (ec && cb->on_error && !stopping() && !orphaned) {  // not one disconnect() aborted
            cb->on_error(ec, diag.message);
        }
        if (!ec) {
            failures_in_a_row = 0;
            co_await deliver(*cb, c);
            auto const why = c->disconnect_reason();
            {
                std::lock_guard lock{mutex};
                current.reset();
            }
            connected = false;
            if (!orphaned) detail::invoke_callback(cb->on_disconnect, cb->on_error, "on_disconnect", why);
        } else {
            ++failures_in_a_row;
        }
        if (!cfg.auto_reconnect || stopping()) break;
        if (ec == error::invalid_url || ec == error::invalid_config) break;
        if (cfg.max_reconnects > 0 && failures_in_a_row >= cfg.max_reconnects) {
            if (cb->on_error)
                cb->on_error(ec, "giving up after " + std::to_string(failures_in_a_row) +
                                     " failed reconnect attempts to " + cfg.url);
            break;
        }
        auto timer = std::make_shared<asio::steady_timer>(ex, reconnect_pause(cfg, failures_in_a_row, rng));
        {
            std::lock_guard lock{mutex};
            if (stop_requested) break;
            backoff = timer;  // disconnect() cancels it
        }
        co_await timer->async_wait(detail::use_tuple);
        {
            std::lock_guard lock{mutex};
            backoff.reset();
            if (stop_requested) break;
        }
        ++reconnects;
    }
    supervising = false;
}

client::client(client_config cfg) : impl_(std::make_shared<impl>()) { impl_->cfg = std::move(cfg); }

client::~client() {
    auto& st = *impl_;
    std::shared_ptr<detail::io_threads> io;
    {
        std::lock_guard lock{st.mutex};
        if (st.io && st.io->is_current()) io = st.io;
    }
    if (io) st.orphaned = true;  // destroyed from one of our callbacks: they are over
    close();
    // close() could not join the thread that runs this very code: detach it instead. It ends by
    // itself once the connection is closed; impl_ and the io_context live until then.
    if (io) io->join();
}

void client::set_callbacks(connect_handler on_connect, disconnect_handler on_disconnect,
                           message_handler on_message, error_handler on_error) {
    std::lock_guard lock{impl_->mutex};
    impl_->next_callbacks = {std::move(on_connect), std::move(on_disconnect), std::move(on_message),
                             std::move(on_error)};
}

error_code client::connect() {
    diagnostics ignored;
    return connect(ignored);
}

error_code client::connect(diagnostics& diag) {
    auto& st = *impl_;
    if (auto ec = validate(st.cfg, diag)) return ec;
    ws_url url;
    if (auto ec = parse_url(st.cfg.url, url, diag)) return ec;
    std::shared_ptr<detail::io_threads> old;
    {
        std::lock_guard lock{st.mutex};
        if (st.io && st.io->is_current()) {
            diag.message = "connect() called from a callback of the same client";
            return asio::error::operation_not_supported;
        }
        if (st.supervising) return {};
        old = std::move(st.io);
    }
    if (old) old->join();  // the previous session's thread has finished its work

    auto io = std::make_shared<detail::io_threads>(1);
    auto first = std::make_shared<std::promise<std::pair<error_code, std::string>>>();
    auto result = first->get_future();
    auto cb = [&] {
        std::lock_guard lock{st.mutex};
        st.stop_requested = false;
        st.io = io;
        return std::make_shared<callbacks const>(st.next_callbacks);
    }();
    st.supervising = true;
    asio::co_spawn(io->main(), st.supervise(cb, first), [self = impl_](std::exception_ptr e) {
        if (e) std::rethrow_exception(e);  // a bug in wscoro: let it surface
    });
    io->start();
    auto [ec, what] = result.get();  // bounded: resolve, then handshake_timeout
    diag.message = std::move(what);
    return ec;
}

void client::disconnect() {
    auto& st = *impl_;
    std::shared_ptr<detail::io_threads> io;
    {
        std::lock_guard lock{st.mutex};
        st.stop_requested = true;
        if (st.current) st.current->close();
        if (st.backoff)
            asio::post(st.backoff->get_executor(), [t = st.backoff] { t->cancel(); });
        if (st.io)  // a reconnect attempt under way ends now (no-op when there is none)
            asio::post(st.io->main(), [a = st.attempt] { a->emit(asio::cancellation_type::terminal); });
        io = st.io;
    }
    if (io && !io->is_current()) io->join();  // the thread ends once on_disconnect has run
}

void client::close() { disconnect(); }

bool client::is_connected() const { return impl_->connected.load(); }

std::size_t client::reconnect_count() const { return impl_->reconnects.load(); }

connection_ptr client::current() const {
    std::lock_guard lock{impl_->mutex};
    return impl_->current;
}

error_code client::send(message m) {
    auto c = current();
    return c ? c->send(std::move(m)) : error_code{error::not_connected};
}

client_config const& client::config() const noexcept { return impl_->cfg; }

}  // namespace wscoro
