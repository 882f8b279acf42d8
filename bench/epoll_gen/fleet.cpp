#include "fleet.hpp"

#include "handshake.hpp"
#include "log.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <random>
#include <system_error>

namespace wscoro::bench::epoll {

namespace {

using namespace std::chrono_literals;

// Large enough for many small frames or a few 64 KiB ones per read.
constexpr std::size_t read_buffer_size = 256 * 1024;
constexpr int max_events = 1024;
// Pre-masked bodies up to this size are copied next to their header (one iovec per flush);
// larger ones go out by reference.
constexpr std::size_t inline_body_limit = 1024;
// The loop wakes at least this often, to notice handshake deadlines and phase ends.
constexpr auto max_wait = 100ms;
constexpr auto expiry_check_interval = 50ms;

std::string errno_text(int err) { return std::system_category().message(err); }

// RFC 6455 7.4: the codes a peer may send (1005, 1006 and 1015 are for reporting only).
bool valid_close_code(unsigned code) noexcept {
    return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
           (code >= 3000 && code <= 4999);
}

std::string printable(char const* data, std::size_t size) {
    std::string out;
    for (std::size_t i = 0; i < size && i < 60; ++i) {
        auto const c = static_cast<unsigned char>(data[i]);
        out += c >= 0x20 && c < 0x7f ? static_cast<char>(c) : '?';
    }
    return out;
}

}  // namespace

// What the frame parser calls: messages to the scenario, control frames to the fleet.
struct fleet::sink {
    fleet& f;
    connection& c;

    void begin(unsigned opcode) { f.h_.on_begin(c, opcode); }
    void data(char const* p, std::size_t n) { f.h_.on_data(c, p, n); }
    void end() { f.h_.on_end(c); }
    bool control(unsigned opcode, char const* p, std::size_t n) {
        return f.control(c, opcode, p, n);
    }
};

fleet::fleet(options const& o, endpoint const& ep, masked_pattern const& bodies, handler& h)
    : o_(o), ep_(ep), bodies_(bodies), h_(h), connections_(o.connections),
      read_buffer_(read_buffer_size) {
    epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
    if (epoll_fd_ < 0) throw std::system_error(errno, std::system_category(), "epoll_create1");
    std::random_device rd;
    key_seed_ = (std::uint64_t{rd()} << 32) | rd();
    for (std::size_t i = 0; i < connections_.size(); ++i) {
        connections_[i].index = static_cast<std::uint32_t>(i);
        connections_[i].random = static_cast<std::uint32_t>(mix(key_seed_ ^ (i << 1))) | 1;
    }
    flush_list_.reserve(connections_.size());
}

fleet::~fleet() {
    for (auto& c : connections_)
        if (c.fd >= 0) ::close(c.fd);
    ::close(epoll_fd_);
}

std::uint32_t fleet::next_random(connection& c) noexcept {
    auto x = c.random;  // xorshift32: cheap, and never 0 once seeded non-zero
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return c.random = x;
}

void fleet::pass_time(clock::time_point end, std::function<void()> const& tick) {
    auto next_tick = clock::now() + 1s;
    while (clock::now() < end) {
        run_until(tick ? std::min(end, next_tick) : end, [] { return false; });
        if (tick && clock::now() >= next_tick && clock::now() < end) {
            tick();
            next_tick += 1s;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The loop

void fleet::run_once(clock::time_point deadline) {
    flush_queued();  // what was queued outside the loop (first messages, probes)
    auto now = clock::now();
    auto const until = std::min({deadline, h_.next_wakeup(), now + max_wait});
    auto const wait = std::chrono::duration_cast<std::chrono::nanoseconds>(
        std::max(until - now, clock::duration::zero()));
    timespec const timeout{static_cast<time_t>(wait.count() / 1'000'000'000),
                           static_cast<long>(wait.count() % 1'000'000'000)};
    epoll_event events[max_events];
    int n = -1;
    if (have_pwait2_) {
        n = ::epoll_pwait2(epoll_fd_, events, max_events, &timeout, nullptr);
        have_pwait2_ = n >= 0 || errno != ENOSYS;
    }
    if (!have_pwait2_) {  // before Linux 5.11, or under valgrind: milliseconds, rounded up
        auto const ms = std::chrono::ceil<std::chrono::milliseconds>(wait).count();
        n = ::epoll_wait(epoll_fd_, events, max_events, static_cast<int>(ms));
    }
    if (n < 0) {
        if (errno == EINTR) return;
        throw std::system_error(errno, std::system_category(), "epoll_wait");
    }
    for (int i = 0; i < n; ++i) {
        auto& c = *static_cast<connection*>(events[i].data.ptr);
        auto const ev = events[i].events;
        switch (c.st) {
        case connection::state::connecting:
            if (ev & (EPOLLOUT | EPOLLERR | EPOLLHUP)) connected(c);
            break;
        case connection::state::upgrading:
        case connection::state::open:
        case connection::state::closing:
            if (ev & (EPOLLIN | EPOLLERR | EPOLLHUP | EPOLLRDHUP))
                readable(c);  // flushes too
            else if ((ev & EPOLLOUT) && !c.out.empty())
                flush(c);  // room again after a full socket
            break;
        default:  // ended earlier in this batch
            break;
        }
    }
    now = clock::now();
    h_.on_iteration(now);
    flush_queued();
    if (opening_) expire_handshakes(now);
}

void fleet::readable(connection& c) {
    for (;;) {
        auto const have = c.stash.size();
        if (have > 0) std::memcpy(read_buffer_.data(), c.stash.data(), have);
        auto const room = read_buffer_.size() - have;
        ssize_t const r = ::read(c.fd, read_buffer_.data() + have, room);
        if (r < 0) {
            if (errno == EINTR) continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK) end(c, "read: " + errno_text(errno));
            break;
        }
        read_time_ = clock::now();
        if (r == 0) {
            end(c, c.st == connection::state::upgrading
                       ? "the server closed the connection during the upgrade"
                       : "the server closed the TCP connection without a closing handshake");
            return;
        }
        c.stash.clear();
        if (!consume(c, have + static_cast<std::size_t>(r))) return;
        // A short read emptied the socket; edge-triggered epoll reports the next bytes.
        if (static_cast<std::size_t>(r) < room) break;
    }
    if (c.st != connection::state::ended && !c.out.empty()) flush(c);  // replies, pongs: one write
}

bool fleet::consume(connection& c, std::size_t size) {
    char const* data = read_buffer_.data();
    if (c.st == connection::state::upgrading) {
        auto const check = check_upgrade_response({data, size}, c.accept);
        if (check.result == upgrade_check::incomplete) {
            c.stash.assign(data, data + size);  // bounded: max_response_head
            return true;
        }
        if (check.result == upgrade_check::rejected) {
            end(c, "upgrade: " + check.why);
            return false;
        }
        c.st = connection::state::open;
        std::string{}.swap(c.accept);
        --handshaking_;
        ++live_;
        data += check.head_size;  // frames may follow the head in the same read
        size -= check.head_size;
    }
    close_outcome_.clear();
    sink s{*this, c};
    auto const r = parse_frames(c.frames, data, size, s);
    if (r.error != frame_error::none) {
        end(c, std::string{"protocol error: "} + describe(r.error));
        return false;
    }
    if (r.stopped) {  // a close frame
        if (r.consumed < size && close_outcome_.empty())
            close_outcome_ = "protocol error: bytes after the close frame";
        end(c, close_outcome_);
        return false;
    }
    c.stash.assign(data + r.consumed, data + size);  // < 14 + 125 bytes
    return true;
}

bool fleet::control(connection& c, unsigned opcode, char const* data, std::size_t size) {
    if (opcode == op::ping) {
        send_control(c, op::pong, data, size);
        return true;
    }
    if (opcode == op::pong) return true;  // we send no pings
    // A close frame: its payload is empty or a status code and a reason (RFC 6455 5.5.1).
    if (size == 1) {
        close_outcome_ = "protocol error: close frame with a 1-byte payload";
        return false;
    }
    unsigned const code =
        size >= 2 ? (static_cast<unsigned char>(data[0]) << 8) | static_cast<unsigned char>(data[1])
                  : 1005;
    if (size >= 2 && !valid_close_code(code)) {
        close_outcome_ = "protocol error: close code " + std::to_string(code);
        return false;
    }
    if (c.st == connection::state::closing) return false;  // the answer to ours: a clean end
    // The server began closing: answer with its status code, as the RFC asks, then end.
    send_control(c, op::close, data, std::min<std::size_t>(size, 2));
    flush(c);
    close_outcome_ =
        "the server closed the connection (" +
        (size >= 2 ? std::to_string(code) + " \"" + printable(data + 2, size - 2) + "\""
                   : std::string{"no status code"}) +
        ")";
    return false;
}

// ---------------------------------------------------------------------------------------------
// Output

void fleet::send(connection& c, char const* head, std::size_t head_size, bool with_body,
                 std::uint64_t body_key) {
    if (c.st != connection::state::open) return;
    std::size_t const body = with_body ? bodies_.body_size() : 0;
    std::uint64_t const length = head_size + body;
    std::uint8_t mask[4];
    char const* masked_body = nullptr;
    if (with_body) {
        masked_body = bodies_.body(body_key, next_random(c), head_size, mask);
    } else {
        auto const r = next_random(c);
        std::memcpy(mask, &r, sizeof mask);
    }
    bool const body_inline = body <= inline_body_limit;
    std::size_t const header = length < 126 ? 6 : length <= 0xffff ? 8 : 14;
    char* out = c.out.append(header + head_size + (body_inline ? body : 0));
    write_client_header(reinterpret_cast<unsigned char*>(out), op::binary, length, mask);
    mask_copy(out + header, head, head_size, mask);
    if (!body_inline)
        c.out.append_external(masked_body, body);
    else if (body > 0)
        std::memcpy(out + header + head_size, masked_body, body);
    schedule_flush(c);
}

void fleet::send_control(connection& c, unsigned opcode, char const* data, std::size_t size) {
    std::uint8_t mask[4];
    auto const r = next_random(c);
    std::memcpy(mask, &r, sizeof mask);
    char* out = c.out.append(6 + size);  // size <= 125
    write_client_header(reinterpret_cast<unsigned char*>(out), opcode, size, mask);
    mask_copy(out + 6, data, size, mask);
    schedule_flush(c);
}

void fleet::schedule_flush(connection& c) {
    if (c.flush_queued) return;
    c.flush_queued = true;
    flush_list_.push_back(&c);
}

void fleet::flush(connection& c) {
    if (int const err = c.out.flush(c.fd)) end(c, "write: " + errno_text(err));
}

void fleet::flush_queued() {
    // By index: ending a connection may make the scenario queue output on another one.
    for (std::size_t i = 0; i < flush_list_.size(); ++i) {
        auto& c = *flush_list_[i];
        c.flush_queued = false;
        if (c.st != connection::state::ended && !c.out.empty()) flush(c);
    }
    flush_list_.clear();
}

// ---------------------------------------------------------------------------------------------
// Opening, closing, ending

std::size_t fleet::open_all() {
    opening_ = true;
    auto const begin = clock::now();
    auto const concurrency = std::max<std::size_t>(o_.concurrency, 1);
    auto start_more = [&] {
        while (next_to_start_ < connections_.size() && handshaking_ < concurrency)
            start(connections_[next_to_start_++]);
    };
    auto next_line = begin + 1s;
    run_until(clock::time_point::max(), [&] {
        start_more();
        if (o_.progress && clock::now() >= next_line) {
            std::fprintf(stderr, "opening: %zu open, %zu failed, %zu to go\n", live_,
                         failed_opening_, connections_.size() - live_ - failed_opening_);
            next_line += 1s;
        }
        return next_to_start_ == connections_.size() && handshaking_ == 0;
    });
    opening_time_ = clock::now() - begin;
    opening_ = false;
    return failed_opening_;
}

void fleet::start(connection& c) {
    c.st = connection::state::connecting;
    c.started = clock::now();
    ++handshaking_;
    int const fd =
        ::socket(ep_.address.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
    if (fd < 0) return end(c, "socket: " + errno_text(errno));
    c.fd = fd;
    int const one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    // Edge-triggered, both directions, registered once: no epoll_ctl per message.
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
    ev.data.ptr = &c;
    if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) != 0)
        return end(c, "epoll_ctl: " + errno_text(errno));
    if (::connect(fd, reinterpret_cast<sockaddr const*>(&ep_.address), ep_.address_size) == 0)
        connected(c);
    else if (errno != EINPROGRESS)
        end(c, "connect: " + errno_text(errno));
}

void fleet::connected(connection& c) {
    int err = 0;
    socklen_t len = sizeof err;
    if (::getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
    if (err != 0) return end(c, "connect: " + errno_text(err));
    c.st = connection::state::upgrading;
    auto const key = make_key(mix(key_seed_ + 2 * std::uint64_t{c.index} + 1),
                              mix(key_seed_ + 2 * std::uint64_t{c.index} + 2));
    c.accept = accept_for(key);
    auto const request = upgrade_request(ep_.url.host_header, ep_.url.target, key);
    std::memcpy(c.out.append(request.size()), request.data(), request.size());
    flush(c);
}

void fleet::expire_handshakes(clock::time_point now) {
    if (now < next_expiry_check_) return;
    next_expiry_check_ = now + expiry_check_interval;
    auto const limit = std::chrono::duration_cast<clock::duration>(o_.connect_timeout);
    auto handshaking = [](connection const& c) {
        return c.st == connection::state::connecting || c.st == connection::state::upgrading;
    };
    for (auto i = first_pending_; i < next_to_start_; ++i) {
        auto& c = connections_[i];
        if (handshaking(c) && now - c.started > limit)
            end(c, "no handshake within " + std::to_string(o_.connect_timeout.count()) + " s");
    }
    while (first_pending_ < next_to_start_ && !handshaking(connections_[first_pending_]))
        ++first_pending_;
}

std::size_t fleet::close_all(clock::duration timeout) {
    unclean_closes_ = 0;
    std::uint8_t const normal[2] = {1000 >> 8, 1000 & 0xff};
    for (auto& c : connections_) {
        if (c.st != connection::state::open) continue;
        send_control(c, op::close, reinterpret_cast<char const*>(normal), sizeof normal);
        c.st = connection::state::closing;
    }
    run_until(clock::now() + timeout, [&] { return live_ == 0; });
    for (auto& c : connections_)
        if (c.st == connection::state::closing)
            end(c, "no closing handshake within " +
                       std::to_string(
                           std::chrono::duration_cast<std::chrono::seconds>(timeout).count()) +
                       " s");
    return unclean_closes_;
}

void fleet::end(connection& c, std::string const& why) {
    auto const was = c.st;
    if (was == connection::state::ended || was == connection::state::idle) return;
    if (c.fd >= 0) ::close(c.fd);  // also leaves the epoll set
    c.fd = -1;
    c.st = connection::state::ended;
    if (was == connection::state::connecting || was == connection::state::upgrading) {
        --handshaking_;
        ++failed_opening_;
        complain(problem::connect, "connection %u: %s", c.index, why.c_str());
        return;
    }
    --live_;
    if (was == connection::state::closing && !why.empty()) {
        ++unclean_closes_;
        complain(problem::close, "connection %u: closing: %s", c.index, why.c_str());
    }
    h_.on_ended(c, why);
}

}  // namespace wscoro::bench::epoll
