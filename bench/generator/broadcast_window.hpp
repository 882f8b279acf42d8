#pragma once
// The bookkeeping of the broadcast scenario, the same in both generators (they differ only in how
// bytes move): which subscribers are live and have joined (received a probe, so the server relays
// to them), and which publishes every live subscriber has received. At most W publishes may be
// incomplete. A publish is complete when every live subscriber has it; completion is in sequence
// order (a subscriber receives n - 1 before n), which is what makes the W counters a ring.
#include "log.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <utility>
#include <vector>

namespace wscoro::bench {

class broadcast_window {
public:
    // The same timing in both generators, so that their runs compare.
    /// Between probes: a subscriber the server has not registered yet misses one, the next may
    /// reach it.
    static constexpr std::chrono::milliseconds probe_interval{50};
    /// After the window: for publishes still on their way.
    static constexpr std::chrono::seconds settle_timeout{10};

    /// A subscriber as the window sees it; scenarios derive their subscriber from it.
    struct member {
        std::uint64_t expected = 0;  ///< the next sequence number
        bool joined = false;         ///< has received a probe: the server relays to it
        bool live = false;           ///< counted in live()
    };

    /// What a received sequence number was, for the subscriber that received it.
    enum class arrival {
        in_order,   ///< the one it expected
        after_gap,  ///< later than expected: the publishes in between count as delivered to it
        stray,      ///< a duplicate or a number never published: ignore the message
    };

    /// `on_complete` runs whenever publishes complete: the window has room again.
    broadcast_window(std::size_t w, std::function<void()> on_complete)
        : delivered_(w, 0), on_complete_(std::move(on_complete)) {}

    std::size_t live() const noexcept { return live_; }
    bool everyone_joined() const noexcept { return joined_ >= live_; }
    /// Publishes handed to the publisher's connection; also the next sequence number.
    std::uint64_t published() const noexcept { return published_; }
    bool has_room() const noexcept { return published_ - completed_ < delivered_.size(); }
    /// Everything published is complete.
    bool settled() const noexcept { return completed_ >= published_; }

    void enter(member& m) noexcept {
        m.live = true;
        ++live_;
    }
    /// True if `m` had not joined before.
    bool join(member& m) noexcept {
        if (std::exchange(m.joined, true)) return false;
        ++joined_;
        return true;
    }
    void leave(member& m) {
        if (!std::exchange(m.live, false)) return;
        --live_;
        if (m.joined) --joined_;
        complete_in_order();  // publishes that were only waiting for this one are complete now
    }

    void publish() noexcept { ++published_; }
    /// The last publish was never sent, so never delivered (nothing was published after it).
    void unpublish() noexcept { --published_; }

    /// Subscriber `index` (`m`) received publish `seq`; out of order is complained about here and
    /// counted by the caller as a verify failure.
    arrival arrive(member& m, unsigned index, std::uint64_t seq) {
        if (seq == m.expected) {
            ++m.expected;
            return arrival::in_order;
        }
        complain(problem::verify, "subscriber %u: got seq %llu, expected %llu", index,
                 static_cast<unsigned long long>(seq), static_cast<unsigned long long>(m.expected));
        if (seq < m.expected || seq >= published_) return arrival::stray;
        // A gap: the missing publishes will not come; stop waiting for them here.
        while (m.expected < seq) delivered(m.expected++);
        ++m.expected;
        return arrival::after_gap;
    }
    /// A live subscriber has publish `seq` (verified or not: it arrived).
    void delivered(std::uint64_t seq) {
        if (seq < completed_ || seq >= published_) return;  // already complete (a subscriber left)
        ++delivered_[seq % delivered_.size()];
        complete_in_order();
    }

    /// After probing: complains about the live subscribers that never joined; returns how many.
    std::size_t count_unjoined() const {
        if (everyone_joined()) return 0;
        complain(problem::other, "%zu of %zu subscribers never received a relayed message",
                 live_ - joined_, live_);
        return live_ - joined_;
    }
    /// After the window and settle_timeout: complains about the publishes that had not reached
    /// everyone; returns whether there were none.
    bool check_settled() const {
        if (settled()) return true;
        complain(problem::other,
                 "%llu publishes had not reached every subscriber %lld s after the window",
                 static_cast<unsigned long long>(published_ - completed_),
                 static_cast<long long>(settle_timeout.count()));
        return false;
    }

private:
    void complete_in_order() {
        auto const before = completed_;
        while (completed_ < published_ && delivered_[completed_ % delivered_.size()] >= live_)
            delivered_[completed_++ % delivered_.size()] = 0;
        if (completed_ != before) on_complete_();
    }

    std::vector<std::size_t> delivered_;  // [seq % W]: subscribers that have seq (incomplete)
    std::function<void()> on_complete_;
    std::size_t live_ = 0;         // subscribers still connected
    std::size_t joined_ = 0;       // live subscribers that received a probe
    std::uint64_t published_ = 0;  // handed to the publisher's connection; also the next seq
    std::uint64_t completed_ = 0;  // publishes every live subscriber received
};

}  // namespace wscoro::bench
