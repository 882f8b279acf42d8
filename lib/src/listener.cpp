#include <wscoro/listener.hpp>

#include "address_limiter.hpp"
#include "net.hpp"
#include "stream_connection.hpp"
#include "upgrade_decision.hpp"

#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/version.hpp>

#include <charconv>
#include <unordered_map>

namespace wscoro {

using asio::ip::tcp;
using detail::use_heap_tuple;
using detail::use_tuple;

namespace {

std::string what(std::exception_ptr e) {
    try {
        std::rethrow_exception(e);
    } catch (std::exception const& x) {
        return x.what();
    } catch (...) {
        return "an exception not derived from std::exception";
    }
}

using detail::make_refusal;
using detail::refusal;
using detail::request_kind;

// ":8080", "0.0.0.0:8080", "[::1]:0", "localhost:8080" -> endpoint.
error_code resolve_listen_address(std::string const& address, tcp::endpoint& out, diagnostics& diag) {
    auto bad = [&](std::string why) {
        diag.message = "server_config.address \"" + address + "\": " + std::move(why);
        return error_code{error::invalid_config};
    };
    std::string_view host, port;
    std::string_view a = address;
    if (!a.empty() && a.front() == '[') {
        auto close = a.find(']');
        if (close == a.npos || close + 1 >= a.size() || a[close + 1] != ':')
            return bad("expected [ipv6]:port");
        host = a.substr(1, close - 1);
        port = a.substr(close + 2);
    } else {
        auto colon = a.rfind(':');
        if (colon == a.npos) return bad("expected host:port or :port");
        host = a.substr(0, colon);
        port = a.substr(colon + 1);
        if (host.find(':') != host.npos) return bad("write IPv6 addresses in brackets: [::1]:8080");
    }
    unsigned p = 0;
    auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
    if (port.empty() || ec != std::errc{} || end != port.data() + port.size() || p > 65535)
        return bad("port must be 0-65535");
    if (host.empty()) {
        out = {asio::ip::address_v4::any(), static_cast<std::uint16_t>(p)};
        return {};
    }
    error_code parse_ec;
    auto ip = asio::ip::make_address(std::string{host}, parse_ec);
    if (!parse_ec) {
        out = {ip, static_cast<std::uint16_t>(p)};
        return {};
    }
    asio::io_context ioc;  // a name: resolve it once, synchronously, at start
    tcp::resolver resolver{ioc};
    error_code rec;
    auto results = resolver.resolve(host, port, tcp::resolver::passive, rec);
    if (rec || results.empty()) return bad("cannot resolve host: " + rec.message());
    out = results.begin()->endpoint();
    return {};
}

}  // namespace

// TCP connections still in their HTTP stage, so that stop() can drop them instead of waiting for
// handshake_timeout.
struct listener::pending_handshakes {
    struct entry {
        beast::tcp_stream stream;
        bool upgraded = false;  // the stream moved into a websocket::stream: not ours to close
    };
    std::mutex mutex;
    std::uint64_t next = 0;
    std::unordered_map<std::uint64_t, std::weak_ptr<entry>> streams;

    std::uint64_t add(std::shared_ptr<entry> const& s) {
        std::lock_guard lock{mutex};
        streams.emplace(++next, s);
        return next;
    }
    void remove(std::uint64_t key) {
        std::lock_guard lock{mutex};
        streams.erase(key);
    }
    void close_all() {
        std::lock_guard lock{mutex};
        for (auto const& [key, weak] : streams)
            if (auto s = weak.lock())  // the shared_ptr keeps the entry alive until this ran
                asio::post(s->stream.get_executor(), [s] {
                    if (!s->upgraded) s->stream.close();  // on the stream's strand: no race
                });
    }
};

listener::listener(asio::any_io_executor ex, server_config cfg)
    : cfg_(std::move(cfg)), ex_(ex), strand_(asio::make_strand(ex)), acceptor_(strand_),
      drained_(strand_), per_ip_(std::make_unique<detail::address_limiter>(cfg_.max_connections_per_ip)),
      pending_(std::make_unique<pending_handshakes>()),
      connection_options_(std::make_shared<connection_options const>(cfg_.connection())) {}

listener::~listener() = default;

error_code listener::listen(diagnostics& diag) {
    if (auto ec = validate(cfg_, diag)) return ec;
    tcp::endpoint ep;
    if (auto ec = resolve_listen_address(cfg_.address, ep, diag)) return ec;
    error_code ec;
    auto fail = [&](char const* what) {
        diag.message = std::string{what} + " " + detail::to_string(ep) + ": " + ec.message();
        error_code ignored;
        acceptor_.close(ignored);
        return ec;
    };
    acceptor_.open(ep.protocol(), ec);
    if (ec) return fail("open");
    acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
    if (ec) return fail("set SO_REUSEADDR on");
    acceptor_.bind(ep, ec);
    if (ec) return fail("listen on");
    acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) return fail("listen on");
    endpoint_ = acceptor_.local_endpoint(ec);
    if (ec) return fail("query");
    return {};
}

std::string listener::address() const { return detail::to_string(endpoint_); }

void listener::report(error_code ec, std::string_view what) const {
    if (on_error_) on_error_(ec, what);
}

bool listener::reserve_slot() noexcept {
    if (cfg_.max_connections == 0) {
        slots_.fetch_add(1, std::memory_order_relaxed);
        return true;
    }
    auto n = slots_.load(std::memory_order_relaxed);
    do {
        if (n >= cfg_.max_connections) return false;
    } while (!slots_.compare_exchange_weak(n, n + 1, std::memory_order_relaxed));
    return true;
}

void listener::release_slot() noexcept { slots_.fetch_sub(1, std::memory_order_relaxed); }

void listener::side_ended(connection& c) {
    if (c.sides_left_.fetch_sub(1, std::memory_order_acq_rel) == 1) session_ended();
}

void listener::application_done(listener* owner, connection& c) {
    // From any thread; a second call is ignored rather than ending another session (and touches
    // nothing of the listener, which may be gone by then).
    if (!c.application_done_.exchange(true, std::memory_order_acq_rel)) owner->side_ended(c);
}

void listener::session_ended() {
    if (sessions_.fetch_sub(1, std::memory_order_acq_rel) == 1)
        asio::post(strand_, [this] { drained_.cancel(); });
}

asio::awaitable<void> listener::run(connection_handler handler) {
    // The application's coroutine runs beside the connection, as a session of its own.
    connection_starter start = [this, handler = std::move(handler)](connection_ptr c, std::function<void()> done) {
        auto ex = c->get_executor();
        asio::co_spawn(ex, run_handler(std::move(c), handler), [done = std::move(done)](std::exception_ptr e) {
            done();
            if (e) std::rethrow_exception(e);  // a bug in wscoro: let it surface
        });
    };
    co_await run(std::move(start));
}

asio::awaitable<void> listener::run(connection_starter start) {
    // Everything that touches the acceptor and the drain timer runs on strand_.
    co_await asio::co_spawn(strand_, serve_all(std::move(start)), asio::use_awaitable);
}

void listener::stop() {
    asio::dispatch(strand_, [this] {
        if (stopping_.exchange(true)) return;
        error_code ignored;
        acceptor_.close(ignored);  // the accept loop ends; serve_all then drains the sessions
        pending_->close_all();
        registry_.close_all(close_code::going_away, "server stopping");
    });
}

asio::awaitable<void> listener::serve_all(connection_starter start) {
    // Cancelling run() (e.g. `co_await (lst.run(h) || something)`) means stop(), and run() must
    // still drain: the sessions reference *this, which the caller may destroy once run() returns.
    // So on this thread a cancellation ends the accept loop (async_accept fails with
    // operation_aborted) and interrupts drain waits, but never throws out of a co_await.
    co_await asio::this_coro::throw_if_cancelled(false);
    co_await accept_loop(start);
    stop();  // no-op after stop(); after a cancellation: close every connection with 1001
    // Drain: clients got close 1001 from stop(); after shutdown_timeout the rest are aborted.
    drained_.expires_after(cfg_.shutdown_timeout);
    bool aborted = false;
    while (sessions_.load(std::memory_order_acquire) > 0) {
        auto [ec] = co_await drained_.async_wait(use_tuple);
        if (!ec && !aborted) {  // the deadline passed
            aborted = true;
            registry_.abort_all(error::server_stopping);
            pending_->close_all();
            drained_.expires_at(std::chrono::steady_clock::time_point::max());
        }
    }
}

asio::awaitable<void> listener::accept_loop(connection_starter const& start) {
    asio::steady_timer backoff{strand_};
    auto const cs = co_await asio::this_coro::cancellation_state;
    while (!stopping_.load() && cs.cancelled() == asio::cancellation_type::none) {
        // Each connection gets its own strand: its loops and callbacks never run concurrently.
        auto const& home = connection_executors_.empty()
                               ? ex_
                               : connection_executors_[next_executor_++ % connection_executors_.size()];
        auto [ec, socket] =
            co_await acceptor_.async_accept(detail::make_connection_executor(home), use_heap_tuple());
        if (stopping_.load() || ec == asio::error::operation_aborted) break;
        if (ec) {
            // Out of file descriptors and the like: say so, and pause instead of spinning.
            report(ec, "accept on " + address() + ": " + ec.message());
            backoff.expires_after(std::chrono::milliseconds{50});
            co_await backoff.async_wait(use_tuple);
            continue;
        }
        socket.set_option(tcp::no_delay(true), ec);
        sessions_.fetch_add(1, std::memory_order_acq_rel);
        auto ex = socket.get_executor();
        asio::co_spawn(ex, handle_socket(std::move(socket), start), [this](std::exception_ptr e) {
            session_ended();
            if (e) std::rethrow_exception(e);  // a bug in wscoro: let it surface
        });
    }
}

asio::awaitable<void> listener::handle_socket(tcp::socket socket, connection_starter const& start) {
    error_code ec;
    auto const remote = socket.remote_endpoint(ec);
    std::string const peer = ec ? std::string{"unknown peer"} : detail::to_string(remote);
    // Braces, not make_shared's parentheses: clang 14 lacks C++20's parenthesized aggregate init.
    auto pending = std::make_shared<pending_handshakes::entry>(pending_handshakes::entry{beast::tcp_stream{std::move(socket)}});
    auto* const stream = &pending->stream;
    auto const key = pending_->add(pending);
    struct unregister {
        pending_handshakes& p;
        std::uint64_t key;
        ~unregister() { p.remove(key); }
    } guard{*pending_, key};

    beast::flat_buffer buffer;
    for (;;) {  // plain HTTP requests (keep-alive), until one is an upgrade
        if (stopping_.load()) co_return;
        stream->expires_after(cfg_.handshake_timeout);
        detail::request_parser parser;
        detail::limit_request(parser);
        auto [rec, n] = co_await http::async_read(*stream, buffer, parser, use_heap_tuple());
        if (rec == http::error::end_of_stream || rec == asio::error::operation_aborted) co_return;
        if (rec) {
            if (rec == beast::error::timeout) bump(metrics_->handshake_timeouts);
            // Timeouts (slow loris) and garbage: tell the operator, answer 400 if it was garbage.
            report(rec, "HTTP request from " + peer + ": " + rec.message());
            if (rec != beast::error::timeout && rec != asio::error::connection_reset) {
                auto res = make_refusal(http_request{}, refusal::bad_request);
                co_await http::async_write(*stream, res, use_heap_tuple());
            }
            co_return;
        }
        http_request req = parser.release();
        auto const kind = detail::classify_request(req, cfg_);
        if (kind == request_kind::plain || kind == request_kind::plain_on_endpoint ||
            kind == request_kind::upgrade_elsewhere) {
            std::optional<http_response> handled;
            if (detail::asks_http_handler(kind) && on_http_) handled = on_http_(req);
            if (kind == request_kind::upgrade_elsewhere) bump(metrics_->refused_not_found);
            else if (kind == request_kind::plain_on_endpoint) bump(metrics_->refused_bad_request);
            auto res = detail::answer_plain(req, kind, std::move(handled));
            bool const keep = detail::keeps_open(req, res);
            auto [wec, wn] = co_await http::async_write(*stream, res, use_heap_tuple());
            if (wec || !keep) break;
            continue;
        }
        // An upgrade to our path: the policy checks, then the handshake.
        if (!detail::valid_websocket_key(req[http::field::sec_websocket_key])) {
            // Beast only checks the key's length; RFC 6455 4.2.1 wants 16 bytes in base64.
            bump(metrics_->refused_bad_request);
            report(error::upgrade_rejected, "WebSocket upgrade from " + peer + ": bad Sec-WebSocket-Key");
            auto res = make_refusal(req, refusal::bad_request);
            co_await http::async_write(*stream, res, use_heap_tuple());
            break;
        }
        if (kind == request_kind::origin_refused) {
            bump(metrics_->refused_origin);
            report(error::upgrade_rejected, "refused origin \"" +
                                                std::string{req[http::field::origin]} + "\" from " + peer);
            auto res = make_refusal(req, refusal::origin_refused);
            co_await http::async_write(*stream, res, use_heap_tuple());
            break;
        }
        if (stopping_.load() || !reserve_slot()) {
            bump(stopping_.load() ? metrics_->refused_stopping : metrics_->refused_max_connections);
            if (!stopping_.load())
                report(error::upgrade_rejected, "refused " + peer + ": max_connections (" +
                                                    std::to_string(cfg_.max_connections) + ") reached");
            auto res = make_refusal(req, stopping_.load() ? refusal::server_stopping : refusal::max_connections);
            co_await http::async_write(*stream, res, use_heap_tuple());
            break;
        }
        if (!per_ip_->try_acquire(remote.address())) {
            release_slot();
            bump(metrics_->refused_per_ip);
            report(error::upgrade_rejected, "refused " + peer + ": max_connections_per_ip (" +
                                                std::to_string(cfg_.max_connections_per_ip) + ") reached");
            auto res = make_refusal(req, refusal::max_connections_per_ip);
            co_await http::async_write(*stream, res, use_heap_tuple());
            break;
        }
        pending->upgraded = true;
        // The socket alone goes on: Beast's tcp_stream served the HTTP stage's timeouts; the
        // WebSocket stream's own timer bounds the answer to the upgrade.
        auto any_ws = detail::make_tcp_websocket(stream->release_socket());
        auto [aec] = co_await detail::async_on_websocket(any_ws, [&](auto& ws, auto handler) {
            detail::set_handshake_timeout(ws, cfg_.handshake_timeout);
            ws.set_option(websocket::stream_base::decorator(
                [](websocket::response_type& res) { res.set(http::field::server, detail::server_name); }));
            // Beast validates the request (version 13, key, ...) and answers 400/426 itself on failure.
            ws.async_accept(req, std::move(handler));
        });
        if (aec) {
            release_slot();
            per_ip_->release(remote.address());
            bump(metrics_->refused_bad_request);
            report(aec, "WebSocket upgrade from " + peer + ": " + aec.message());
            break;
        }
        // The request's headers move into the connection (no second copy per connection).
        std::string target{req.target()};
        connection_info info{detail::make_connection_id(), peer, std::move(target),
                             std::move(static_cast<http::fields&>(req)), std::chrono::system_clock::now()};
        auto conn = detail::make_connection(std::move(any_ws), beast::role_type::server, std::move(info),
                                            connection_options_);
        conn->attach_metrics(metrics_);
        auto const left = [this](connection& c) {
            registry_.remove(c.id());
            release_slot();
            metrics_->connections_current.fetch_sub(1, std::memory_order_relaxed);
        };
        // The peer's address only when connections are counted per address: with it the hook
        // no longer fits std::function's inline storage (a heap block per connection).
        if (cfg_.max_connections_per_ip == 0) conn->on_finished(left);
        else conn->on_finished([this, left, address = remote.address()](connection& c) {
            left(c);
            per_ip_->release(address);
        });
        registry_.add(conn);
        bump(metrics_->connections_accepted);
        bump(metrics_->connections_current);
        if (stopping_.load()) conn->close(close_code::going_away, "server stopping");
        // This frame (parser, request, buffers: ~2 KB) ends here; the connection lives on in
        // coroutines of its own, counted as a session until both have ended.
        start_connection(std::move(conn), start);
        co_return;
    }
    stream->close();
}

void listener::start_connection(connection_ptr c, connection_starter const& start) {
    // Not `co_await (c->run() && run_handler(c))`: the operator's frames and shared state cost
    // ~1.2 KB per idle connection. The connection's coroutine and the application's side, on the
    // connection's strand, and a count of two (kept in the connection: sides_left_).
    sessions_.fetch_add(1, std::memory_order_acq_rel);
    // A plain pointer: the connection calls this before it lets go of itself. Two pointers fit
    // in std::function's own storage (a shared_ptr would not: a heap block per connection).
    c->spawn_run([this, conn = c.get()](std::exception_ptr e, error_code) {
        side_ended(*conn);
        if (e) std::rethrow_exception(e);  // a bug in wscoro: let it surface
    });
    try {
        // The connection itself, not a plain pointer: a late second `done` must still find it.
        start(c, [this, c] { application_done(this, *c); });
    } catch (...) {
        // The application's bug, not the server's: like a handler coroutine that threw, the
        // connection closes with 1011 and is drained here, and the session still ends.
        report(error::callback_failed, "connection starter for " + c->id() + " threw: " + what(std::current_exception()));
        c->close(close_code::internal_error, "internal error");
        asio::co_spawn(c->get_executor(), drain(c), [this, c](std::exception_ptr) { application_done(this, *c); });
    }
}

asio::awaitable<void> listener::run_handler(connection_ptr c, connection_handler const& handler) {
    try {
        co_await handler(c);
    } catch (std::exception const& e) {
        report(error::callback_failed,
               "handler for connection " + c->id() + " threw: " + e.what());
        c->close(close_code::internal_error, "internal error");
    }
    co_await drain(c);
}

asio::awaitable<void> listener::drain(connection_ptr c) {
    c->close();  // the application is done with it (idempotent if already closing)
    // Keep consuming so that the read loop can finish the closing handshake promptly.
    for (;;) {
        auto [ec, m] = co_await c->async_receive(use_tuple);
        if (ec) break;
    }
}

}  // namespace wscoro
