#pragma once
// The header of an unfragmented, uncompressed data frame (RFC 6455 5.2): unmasked as a server
// writes it, or masked with a 32-bit key as a client must. The write loop frames messages itself,
// so that a message costs one append to the corked stream instead of a pass through Beast's write
// operation (see PERFORMANCE-NOTES.md).
#include <boost/asio/buffer.hpp>

#include <sys/random.h>

#include <array>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <random>

namespace wscoro::detail {

/// The 4 bytes a client XORs its payload with, in the order they appear on the wire.
using masking_key = std::array<unsigned char, 4>;

class frame_header {
public:
    /// A server's frame: no mask.
    frame_header(bool text, std::size_t payload_size) noexcept { encode(text, payload_size, 0); }

    /// A client's frame: MASK bit set and the key after the length.
    frame_header(bool text, std::size_t payload_size, masking_key const& key) noexcept {
        encode(text, payload_size, 0x80u);
        for (unsigned char b : key) bytes_[size_++] = b;
    }

    boost::asio::const_buffer buffer() const noexcept { return {bytes_.data(), size_}; }

private:
    void encode(bool text, std::size_t payload_size, unsigned mask_bit) noexcept {
        bytes_[0] = static_cast<unsigned char>(0x80u | (text ? 0x1u : 0x2u));  // FIN + opcode
        if (payload_size < 126) {
            bytes_[1] = static_cast<unsigned char>(mask_bit | payload_size);
            size_ = 2;
        } else if (payload_size <= 0xffff) {
            bytes_[1] = static_cast<unsigned char>(mask_bit | 126u);
            put_big_endian(payload_size, 2);
            size_ = 4;
        } else {
            bytes_[1] = static_cast<unsigned char>(mask_bit | 127u);
            put_big_endian(static_cast<std::uint64_t>(payload_size), 8);
            size_ = 10;
        }
    }

    void put_big_endian(std::uint64_t v, std::size_t n) noexcept {
        for (std::size_t i = 0; i < n; ++i) bytes_[2 + i] = static_cast<unsigned char>(v >> (8 * (n - 1 - i)));
    }

    std::array<unsigned char, 14> bytes_{};
    std::size_t size_ = 0;
};

/// Fresh, unpredictable masking keys (RFC 6455 5.3, 10.3) from the kernel's CSPRNG, fetched 64 at
/// a time: one getrandom() per 64 client frames. One per thread (thread_local at the caller).
///
/// Not Beast's make_prng(true): in Boost 1.81 its ChaCha20 feeds the block counter with `ctr_ / 16`
/// while advancing ctr_ once per block, so every 16-word block comes out 16 times in a row and a
/// client's keys cycle through 16 values (32 distinct in 256 draws; test/protocol finds it).
class masking_key_source {
public:
    masking_key next() {
        if (used_ == pool_.size()) refill();
        return pool_[used_++];
    }

private:
    void refill() {
        static_assert(sizeof(pool_) == 4 * std::tuple_size_v<decltype(pool_)>);
        auto* const p = reinterpret_cast<unsigned char*>(pool_.data());
        std::size_t got = 0;
        while (got < sizeof(pool_)) {
            auto const n = ::getrandom(p + got, sizeof(pool_) - got, 0);
            if (n > 0) {
                got += static_cast<std::size_t>(n);
            } else if (errno != EINTR) {
                // No getrandom (seccomp, an old kernel): std::random_device reads the same source.
                std::random_device device;
                for (; got < sizeof(pool_); got += 4) {
                    auto const v = device();
                    std::memcpy(p + got, &v, 4);
                }
            }
        }
        used_ = 0;
    }

    std::array<masking_key, 64> pool_{};
    std::size_t used_ = pool_.size();
};

/// XORs `n` bytes at `p` with the key, the first byte with key[0] (RFC 6455 5.3). Eight bytes at a
/// time: a client masks every byte it sends.
inline void apply_mask(unsigned char* p, std::size_t n, masking_key const& key) noexcept {
    std::uint64_t wide = 0;
    for (std::size_t i = 0; i < 8; ++i) reinterpret_cast<unsigned char*>(&wide)[i] = key[i % 4];
    std::size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        std::uint64_t v;
        std::memcpy(&v, p + i, 8);
        v ^= wide;
        std::memcpy(p + i, &v, 8);
    }
    for (; i < n; ++i) p[i] ^= key[i % 4];
}

}  // namespace wscoro::detail
