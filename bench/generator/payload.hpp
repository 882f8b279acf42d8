#pragma once
// Payloads that can be verified cheaply. Each message is a small header (who sent it, its sequence
// number, a check over both) followed by a window of a pseudo-random byte pattern that is built
// once; the window's offset is derived from the header, so the body of every message differs from
// its neighbours' and verifying it is one memcmp, not a per-byte generator. Fields are copied in
// host byte order: both ends are this process.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace wscoro::bench {

/// SplitMix64's finalizer: a cheap bijective scramble, good enough to make neighbours unrelated.
constexpr std::uint64_t mix(std::uint64_t x) noexcept {
    x += 0x9e3779b97f4a7c15u;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9u;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebu;
    return x ^ (x >> 31);
}

/// A pseudo-random byte string; body(key) is a window of it starting at one of `rotations` offsets.
class pattern {
public:
    static constexpr std::size_t rotations = 4096;

    explicit pattern(std::size_t body_size, std::uint64_t seed = 0x5eed)
        : bytes_(body_size + rotations), body_size_(body_size) {
        for (std::size_t i = 0; i < bytes_.size(); i += 8) {
            auto const word = mix(seed + i);
            std::memcpy(bytes_.data() + i, &word, std::min<std::size_t>(8, bytes_.size() - i));
        }
    }

    std::size_t body_size() const noexcept { return body_size_; }
    std::string_view body(std::uint64_t key) const noexcept {
        return {bytes_.data() + key % rotations, body_size_};
    }

private:
    std::vector<char> bytes_;
    std::size_t body_size_;
};

/// What verification found wrong with a message; `none` when it is exactly what was sent.
enum class defect { none, wrong_type, wrong_size, bad_header, out_of_order, bad_body };

inline char const* describe(defect d) noexcept {
    switch (d) {
    case defect::none:
        return "ok";
    case defect::wrong_type:
        return "text message where binary was sent";
    case defect::wrong_size:
        return "wrong length";
    case defect::bad_header:
        return "corrupt header";
    case defect::out_of_order:
        return "sequence number out of order";
    case defect::bad_body:
        return "corrupt payload";
    }
    return "?";
}

namespace detail {
template <class T> void put(std::string& out, T v) {
    out.append(reinterpret_cast<char const*>(&v), sizeof v);
}
template <class T> T get(std::string_view in, std::size_t at) noexcept {
    T v;
    std::memcpy(&v, in.data() + at, sizeof v);
    return v;
}
}  // namespace detail

/// Echo: [connection u32][seq u64][check u32][pattern window]. The window depends on the
/// connection and advances with seq, so a reply routed to the wrong connection fails as well.
struct echo_payload {
    static constexpr std::size_t header_size = 16;

    static std::uint32_t check(std::uint32_t conn, std::uint64_t seq) noexcept {
        return static_cast<std::uint32_t>(mix((std::uint64_t{conn} << 40) ^ seq) >> 32);
    }
    static std::uint64_t key(std::uint32_t conn, std::uint64_t seq) noexcept {
        return mix(conn) + seq;
    }

    /// `p.body_size()` + header_size bytes, in one allocation.
    static std::string build(pattern const& p, std::uint32_t conn, std::uint64_t seq) {
        std::string out;
        out.reserve(header_size + p.body_size());
        detail::put(out, conn);
        detail::put(out, seq);
        detail::put(out, check(conn, seq));
        out.append(p.body(key(conn, seq)));
        return out;
    }

    /// Checks `in` against what connection `conn` sent as `expected`; on success or out_of_order,
    /// `seen` is the sequence number the message carries.
    static defect verify(std::string_view in, pattern const& p, std::uint32_t conn,
                         std::uint64_t expected, std::uint64_t& seen) noexcept {
        if (in.size() != header_size + p.body_size()) return defect::wrong_size;
        seen = detail::get<std::uint64_t>(in, 4);
        if (detail::get<std::uint32_t>(in, 0) != conn ||
            detail::get<std::uint32_t>(in, 12) != check(conn, seen))
            return defect::bad_header;
        if (seen != expected) return defect::out_of_order;
        auto const body = p.body(key(conn, seen));
        if (std::memcmp(in.data() + header_size, body.data(), body.size()) != 0)
            return defect::bad_body;
        return defect::none;
    }
};

/// Broadcast: [seq u64][sent at, steady_clock ns u64][check u32][pattern window]. A probe (sent
/// until every subscriber has joined, see broadcast.cpp) is a bare header with seq = probe_seq.
struct broadcast_payload {
    static constexpr std::size_t header_size = 20;
    static constexpr std::uint64_t probe_seq = ~std::uint64_t{0};

    struct header {
        std::uint64_t seq;
        std::int64_t sent_ns;
    };

    static std::uint32_t check(std::uint64_t seq, std::int64_t sent_ns) noexcept {
        auto const h = mix(seq ^ mix(static_cast<std::uint64_t>(sent_ns)));
        return static_cast<std::uint32_t>(h >> 32);
    }

    static std::string build(pattern const& p, std::uint64_t seq, std::int64_t sent_ns) {
        std::string out;
        out.reserve(header_size + p.body_size());
        detail::put(out, seq);
        detail::put(out, sent_ns);
        detail::put(out, check(seq, sent_ns));
        out.append(p.body(seq));
        return out;
    }
    /// The steady clock now, as a header's "sent at".
    static std::int64_t now_ns() noexcept {
        auto const now = std::chrono::steady_clock::now().time_since_epoch();
        return std::chrono::duration_cast<std::chrono::nanoseconds>(now).count();
    }
    static std::string probe(std::int64_t sent_ns) {
        std::string out;
        out.reserve(header_size);
        detail::put(out, probe_seq);
        detail::put(out, sent_ns);
        detail::put(out, check(probe_seq, sent_ns));
        return out;
    }

    /// The header, if `in` has one whose check holds.
    static bool read_header(std::string_view in, header& h) noexcept {
        if (in.size() < header_size) return false;
        h = {detail::get<std::uint64_t>(in, 0), detail::get<std::int64_t>(in, 8)};
        return detail::get<std::uint32_t>(in, 16) == check(h.seq, h.sent_ns);
    }
    static bool is_probe(std::string_view in, header const& h) noexcept {
        return h.seq == probe_seq && in.size() == header_size;
    }
    /// Length and body of a data message whose header read_header() accepted.
    static defect verify_body(std::string_view in, pattern const& p, header const& h) noexcept {
        if (in.size() != header_size + p.body_size()) return defect::wrong_size;
        auto const body = p.body(h.seq);
        if (std::memcmp(in.data() + header_size, body.data(), body.size()) != 0)
            return defect::bad_body;
        return defect::none;
    }
};

}  // namespace wscoro::bench
