#include <wscoro/server.hpp>

#include "facade.hpp"
#include "strand_consumer.hpp"
#include "stream_connection.hpp"

#include <atomic>
#include <mutex>

namespace wscoro {

namespace {

struct callbacks {
    server::connect_handler on_connect;
    server::disconnect_handler on_disconnect;
    server::message_handler on_message;
    error_handler on_error;
    // Set when the server is destroyed from one of its own callbacks: its threads drain by
    // themselves, and from then on no callback starts (the application may be gone too).
    std::shared_ptr<std::atomic<bool>> orphaned{};  // made by start()
};

// The facade's side of one connection: its message stream turned into callbacks. Completion
// handlers, not a coroutine: while the connection is idle, all this holds is the pending receive
// (in the consumer's own block) and this object, where a coroutine held three frames (~1 KB).
// Everything runs on the connection's thread, so callbacks never overlap.
class callback_session : public std::enable_shared_from_this<callback_session> {
public:
    callback_session(std::shared_ptr<callbacks const> cb, connection_ptr c, std::function<void()> done)
        : cb_(std::move(cb)), c_(std::move(c)), done_(std::move(done)), consumer_(*c_) {}

    void start() {
        // A callback that threw closes the connection with 1011; the stream is drained until it ends.
        healthy_ = orphaned() || detail::invoke_callback(cb_->on_connect, cb_->on_error, "on_connect", c_);
        if (!healthy_) c_->close(close_code::internal_error, "internal error");
        take_all();
    }

private:
    // Every message already read is taken without an asynchronous operation each; only when none is
    // left does it wait (and the replies sent meanwhile go out together). The wait completes through
    // a post, never inline, so this does not recurse.
    void take_all() {
        message m;
        while (consumer_.try_take(m))
            deliver(m);
        consumer_.async_receive([self = shared_from_this()](error_code ec, message next) {
            if (ec) return self->ended();  // finish() closed the channel: the stream ended
            self->consumer_.took(next);
            self->deliver(next);
            self->take_all();
        });
    }

    void deliver(message const& m) {
        if (orphaned()) return;  // drained until the close completes, delivered to no one
        if (healthy_ && !detail::invoke_callback(cb_->on_message, cb_->on_error, "on_message", c_, m)) {
            healthy_ = false;
            c_->close(close_code::internal_error, "internal error");
        }
    }

    void ended() {
        if (!orphaned()) {
            auto const why = c_->disconnect_reason();
            if (why == error::send_queue_full && cb_->on_error)
                cb_->on_error(why, "connection " + c_->id() + " (" + c_->remote_address() +
                                       ") closed with 1008: send queue overflow (slow consumer)");
            detail::invoke_callback(cb_->on_disconnect, cb_->on_error, "on_disconnect", c_, why);
        }
        std::exchange(done_, nullptr)();  // the listener may finish its run() now
    }

    bool orphaned() const { return cb_->orphaned->load(); }

    std::shared_ptr<callbacks const> cb_;
    connection_ptr c_;
    std::function<void()> done_;
    detail::strand_consumer consumer_;
    bool healthy_ = true;
};

}  // namespace

struct server::impl {
    server_config cfg;
    mutable std::mutex mutex;  // guards everything below
    callbacks next_callbacks;
    http_handler next_http;
    std::shared_ptr<detail::io_threads> io;
    std::shared_ptr<listener> lst;  // the running listener; its run() holds another reference
    std::shared_ptr<metrics> stats = std::make_shared<metrics>();
    std::shared_ptr<std::atomic<bool>> orphaned;  // of the callbacks of the last start()
};

server::server(server_config cfg) : impl_(std::make_unique<impl>()) { impl_->cfg = std::move(cfg); }

server::~server() {
    {
        std::lock_guard lock{impl_->mutex};
        // Destroyed from one of its own callbacks: no callback starts from now on. (With threads > 1,
        // callbacks already running on the other threads finish.)
        if (impl_->io && impl_->io->is_current() && impl_->orphaned) impl_->orphaned->store(true);
    }
    stop();
    // Destroyed from one of its own callbacks: stop() could not join the threads; join() detaches
    // them (they end once drained). Otherwise stop() joined them and this is a no-op.
    if (impl_->io) impl_->io->join();
}

void server::set_callbacks(connect_handler on_connect, disconnect_handler on_disconnect,
                           message_handler on_message, error_handler on_error) {
    std::lock_guard lock{impl_->mutex};
    impl_->next_callbacks = {std::move(on_connect), std::move(on_disconnect), std::move(on_message),
                             std::move(on_error)};
}

void server::set_http_handler(http_handler h) {
    std::lock_guard lock{impl_->mutex};
    impl_->next_http = std::move(h);
}

error_code server::start() {
    diagnostics ignored;
    return start(ignored);
}

error_code server::start(diagnostics& diag) {
    std::unique_lock lock{impl_->mutex};
    if (impl_->lst) return {};
    if (auto old = impl_->io) {
        // Threads of a stop() made from a callback, maybe still draining. Joined without the lock:
        // their callbacks may call into this server (join() detaches them if called from one).
        lock.unlock();
        old->join();
        lock.lock();
        if (impl_->io == old) impl_->io.reset();
        if (impl_->lst) return {};  // another start() got there first
    }
    if (auto ec = validate(impl_->cfg, diag)) return ec;

    auto io = std::make_shared<detail::io_threads>(impl_->cfg.threads);
    auto lst = std::make_shared<listener>(io->main().get_executor(), impl_->cfg);
    auto fresh = impl_->next_callbacks;
    fresh.orphaned = std::make_shared<std::atomic<bool>>(false);
    auto cb = std::make_shared<callbacks const>(std::move(fresh));
    lst->set_error_handler([cb](error_code ec, std::string_view what) {
        if (cb->on_error && !cb->orphaned->load()) cb->on_error(ec, what);
    });
    lst->set_http_handler(impl_->next_http);
    lst->set_metrics(impl_->stats);
    lst->spread_connections(io->executors());  // one thread each: see detail::io_threads
    if (auto ec = lst->listen(diag)) {
        if (cb->on_error) cb->on_error(ec, diag.message);
        return ec;
    }
    // Every connection keeps the io_context alive: the application may hold a connection_ptr after
    // stop() or after the server is gone, and its socket and timers must not outlive the context.
    // A raw pointer in the handler (which the listener, hence the io_context, holds): no cycle.
    listener::connection_starter start = [cb, ctx = io.get()](connection_ptr c, std::function<void()> done) {
        c->keep_context_alive(ctx->shared_from_this());
        std::make_shared<callback_session>(cb, std::move(c), std::move(done))->start();
    };
    asio::co_spawn(io->main(), lst->run(std::move(start)),
                   [lst](std::exception_ptr e) {  // keeps the listener alive until run() returns
                       if (e) std::rethrow_exception(e);
                   });
    io->start();
    impl_->io = std::move(io);
    impl_->lst = std::move(lst);
    impl_->orphaned = cb->orphaned;
    return {};
}

void server::stop() {
    // io first: locals die in reverse order, and the listener's I/O objects must go before the
    // io_context they belong to.
    std::shared_ptr<detail::io_threads> io;
    std::shared_ptr<listener> lst;
    {
        std::lock_guard lock{impl_->mutex};
        lst = std::move(impl_->lst);  // null when already stopped
        io = impl_->io;  // set while the threads run, or drain after a stop() from a callback
    }
    if (lst) lst->stop();
    if (!io) return;
    // From a callback the threads cannot join themselves: they end by themselves once the drain is
    // done (they own the io_context, run() owns the listener), and the next stop(), start() or the
    // destructor joins them, so that no callback runs after the server is gone.
    if (io->is_current()) return;
    io->join();  // run() returns once every session drained (bounded by shutdown_timeout)
    std::lock_guard lock{impl_->mutex};
    if (impl_->io == io) impl_->io.reset();
}

bool server::is_running() const {
    std::lock_guard lock{impl_->mutex};
    return impl_->lst != nullptr;
}

std::string server::address() const {
    std::lock_guard lock{impl_->mutex};
    return impl_->lst ? impl_->lst->address() : std::string{};
}

std::size_t server::client_count() const {
    std::lock_guard lock{impl_->mutex};
    return impl_->lst ? impl_->lst->connections().size() : 0;
}

std::vector<connection_ptr> server::clients() const {
    std::lock_guard lock{impl_->mutex};
    return impl_->lst ? impl_->lst->connections().snapshot() : std::vector<connection_ptr>{};
}

connection_ptr server::client(std::string_view id) const {
    std::lock_guard lock{impl_->mutex};
    return impl_->lst ? impl_->lst->connections().find(id) : nullptr;
}

std::size_t server::broadcast(message const& m) {
    std::lock_guard lock{impl_->mutex};
    return impl_->lst ? impl_->lst->connections().broadcast(m) : 0;
}

server_config const& server::config() const noexcept { return impl_->cfg; }

metrics const& server::get_metrics() const noexcept { return *impl_->stats; }

}  // namespace wscoro
