#pragma once
// The header of an unfragmented, uncompressed data frame (RFC 6455 5.2): unmasked as a server
// writes it, or masked with a 32-bit key as a client must. The write loop frames messages itself,
// so that a message costs one append to the corked stream instead of a pass through Beast's write
// operation (see PERFORMANCE-NOTES.md).
#include <boost/asio/buffer.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>

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
