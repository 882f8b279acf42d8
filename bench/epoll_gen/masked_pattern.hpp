#pragma once
// Message bodies masked ahead of time. A client must mask every frame (RFC 6455 5.3); masking a
// 64 KiB body per message would cost the generator a pass over it, and copying it into the output
// buffer another. Instead the generator keeps a few copies of the whole pattern (payload.hpp),
// each XORed with a masking key of its own: any window of a copy is the window of the pattern,
// masked with that key rotated by the window's offset. A frame then carries that rotated key,
// masks its small header itself, and the body goes out by reference.
//
// So a frame's masking key is one of (copies x 4 rotations), picked by the connection's xorshift
// generator: not the unpredictable key RFC 6455 asks for (which protects proxies from crafted
// payloads), but every byte the server receives is masked, so it does the full unmasking work.
#include "payload.hpp"

#include <algorithm>
#include <array>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace wscoro::bench::epoll {

class masked_pattern {
public:
    /// Copies of `p`, at most `budget` bytes in all (at least one copy, at most 16). The default
    /// keeps them in the CPU's L2 cache next to the pattern for 64 KiB payloads.
    masked_pattern(pattern const& p, std::uint64_t seed, std::size_t budget = 256u << 10)
        : body_size_(p.body_size()) {
        char const* const base = p.body(0).data();
        std::size_t const size = p.body_size() + pattern::rotations;
        assert(p.body(pattern::rotations - 1).data() == base + pattern::rotations - 1);
        std::size_t const copies = std::clamp<std::size_t>(budget / size, 1, 16);
        copies_.resize(copies);
        keys_.resize(copies);
        for (std::size_t c = 0; c < copies; ++c) {
            auto const word = mix(seed + c);
            for (unsigned i = 0; i < 4; ++i)
                keys_[c][i] = static_cast<std::uint8_t>(word >> (8 * i));
            copies_[c].resize(size);
            for (std::size_t i = 0; i < size; ++i)
                copies_[c][i] = static_cast<char>(base[i] ^ static_cast<char>(keys_[c][i & 3]));
        }
    }

    std::size_t body_size() const noexcept { return body_size_; }

    /// The body window of the pattern at `key` (as pattern::body(key)) masked, from the copy
    /// `random` picks, and in `mask` the masking key of a frame whose body starts at byte
    /// `offset` of its payload.
    char const* body(std::uint64_t key, std::uint32_t random, std::size_t offset,
                     std::uint8_t (&mask)[4]) const noexcept {
        auto const c = random % copies_.size();
        auto const start = key % pattern::rotations;
        // Body byte t is payload byte offset + t, masked with mask[(offset + t) % 4]; the copy
        // masked it with keys_[c][(start + t) % 4].
        for (std::size_t j = 0; j < 4; ++j) mask[j] = keys_[c][(start + j + 4 - offset % 4) & 3];
        return copies_[c].data() + start;
    }

private:
    std::size_t body_size_;
    std::vector<std::vector<char>> copies_;
    std::vector<std::array<std::uint8_t, 4>> keys_;
};

}  // namespace wscoro::bench::epoll
