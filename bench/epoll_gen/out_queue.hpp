#pragma once
// A connection's pending output: bytes it owns (frame headers, small payloads) and references to
// long-lived bytes it does not (pre-masked bodies of large payloads), sent with one gathered
// sendmsg per flush. Storage grows to the connection's steady-state need and is then reused: no
// allocation per message.
#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <vector>

namespace wscoro::bench::epoll {

class out_queue {
public:
    /// `n` writable bytes at the end of the queue, valid until the next append.
    char* append(std::size_t n) {
        if (used_ + n > bytes_.size()) bytes_.resize(std::max(2 * bytes_.size(), used_ + n));
        if (!segments_.empty() && !segments_.back().external &&
            segments_.back().offset + segments_.back().size == used_)
            segments_.back().size += n;  // contiguous with the last owned bytes: one iovec
        else
            segments_.push_back({nullptr, used_, n, false});
        char* out = bytes_.data() + used_;
        used_ += n;
        return out;
    }

    /// Queues `n` bytes at `p` by reference; they must stay unchanged until written.
    void append_external(char const* p, std::size_t n) {
        if (n > 0) segments_.push_back({p, 0, n, true});
    }

    bool empty() const noexcept { return head_ == segments_.size(); }

    /// Writes until everything is sent or the socket is full. Returns 0 (check empty() for what
    /// is left) or the errno of a failed write.
    int flush(int fd) {
        while (!empty()) {
            iovec iov[max_iov];
            int count = 0;
            std::size_t wanted = 0;
            for (auto i = head_; i < segments_.size() && count < max_iov; ++i, ++count) {
                auto const& s = segments_[i];
                char const* base = s.external ? s.pointer : bytes_.data() + s.offset;
                std::size_t const skip = i == head_ ? head_done_ : 0;
                iov[count] = {const_cast<char*>(base + skip), s.size - skip};
                wanted += s.size - skip;
            }
            msghdr msg{};
            msg.msg_iov = iov;
            msg.msg_iovlen = static_cast<std::size_t>(count);
            // MSG_NOSIGNAL: a peer that is gone is an error value (EPIPE), not a SIGPIPE.
            ssize_t const n = ::sendmsg(fd, &msg, MSG_NOSIGNAL);
            if (n < 0) {
                if (errno == EINTR) continue;
                return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : errno;
            }
            consume(static_cast<std::size_t>(n));
            if (static_cast<std::size_t>(n) < wanted) return 0;  // full: wait for EPOLLOUT
        }
        return 0;
    }

private:
    static constexpr int max_iov = 64;

    struct segment {
        char const* pointer;  // external bytes
        std::size_t offset;   // owned bytes: offset in bytes_
        std::size_t size;
        bool external;
    };

    void consume(std::size_t n) {
        while (n > 0) {
            auto const left = segments_[head_].size - head_done_;
            if (n < left) {
                head_done_ += n;
                return;
            }
            n -= left;
            ++head_;
            head_done_ = 0;
        }
        if (empty()) {  // all sent: start over at the front, keeping the capacity
            segments_.clear();
            head_ = head_done_ = used_ = 0;
        }
    }

    std::vector<char> bytes_;
    std::size_t used_ = 0;
    std::vector<segment> segments_;
    std::size_t head_ = 0;       // first segment not completely written
    std::size_t head_done_ = 0;  // bytes of it already written
};

}  // namespace wscoro::bench::epoll
