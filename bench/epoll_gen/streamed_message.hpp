#pragma once
// A message verified as its bytes arrive, frame by frame, as both scenarios receive theirs: its
// header is gathered (a read may split it anywhere), the rest compared in place with the body the
// header promises. Nothing is reassembled, so a 64 KiB reply costs no copy.
#include "frame.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace wscoro::bench::epoll {

template <std::size_t HeaderSize> struct streamed_message {
    std::uint64_t received = 0;  ///< payload bytes so far
    bool binary = false;
    bool head_ok = false;  ///< header complete and accepted by read_header
    bool body_ok = true;   ///< every body byte so far as promised
    char head[HeaderSize];

    void begin(unsigned opcode) noexcept {
        received = 0;
        binary = opcode == op::binary;
        head_ok = false;
        body_ok = true;
    }

    /// The next `size` payload bytes. `read_header(std::string_view)` judges the complete header
    /// (once); `body()` is the body it promises, asked for only after the header was accepted.
    template <class ReadHeader, class Body>
    void feed(char const* data, std::size_t size, ReadHeader&& read_header, Body&& body) {
        if (received < HeaderSize) {
            auto const n = std::min<std::size_t>(HeaderSize - received, size);
            std::memcpy(head + received, data, n);
            received += n;
            data += n;
            size -= n;
            if (received == HeaderSize) head_ok = read_header(std::string_view{head, HeaderSize});
        }
        if (size == 0) return;
        if (head_ok && body_ok) {
            std::string_view const expected = body();
            auto const at = received - HeaderSize;
            if (at < expected.size()) {
                auto const n = std::min<std::uint64_t>(size, expected.size() - at);
                body_ok = std::memcmp(data, expected.data() + at, n) == 0;
            }  // bytes beyond the body: the length check at the end fails
        }
        received += size;
    }
};

}  // namespace wscoro::bench::epoll
