#pragma once
// The header of an unmasked, unfragmented, uncompressed data frame (RFC 6455 5.2): what a server
// writes. The write loop frames server messages itself, so that a message costs one append to the
// corked stream instead of a pass through Beast's write operation (see PERFORMANCE-NOTES.md).
#include <boost/asio/buffer.hpp>

#include <array>
#include <cstddef>
#include <cstdint>

namespace wscoro::detail {

class frame_header {
public:
    frame_header(bool text, std::size_t payload_size) noexcept {
        bytes_[0] = static_cast<unsigned char>(0x80u | (text ? 0x1u : 0x2u));  // FIN + opcode
        if (payload_size < 126) {
            bytes_[1] = static_cast<unsigned char>(payload_size);
            size_ = 2;
        } else if (payload_size <= 0xffff) {
            bytes_[1] = 126;
            put_big_endian(payload_size, 2);
            size_ = 4;
        } else {
            bytes_[1] = 127;
            put_big_endian(static_cast<std::uint64_t>(payload_size), 8);
            size_ = 10;
        }
    }

    boost::asio::const_buffer buffer() const noexcept { return {bytes_.data(), size_}; }

private:
    void put_big_endian(std::uint64_t v, std::size_t n) noexcept {
        for (std::size_t i = 0; i < n; ++i) bytes_[2 + i] = static_cast<unsigned char>(v >> (8 * (n - 1 - i)));
    }

    std::array<unsigned char, 10> bytes_{};
    std::size_t size_ = 0;
};

}  // namespace wscoro::detail
