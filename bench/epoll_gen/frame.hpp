#pragma once
// RFC 6455 framing for the client side of wscoro-bench-epoll: parsing the frames a server sends,
// and writing the header of a masked client frame. No allocation and no copy: data payloads are
// handed to the sink piece by piece as they arrive (a 64 KiB message need never be whole in
// memory), control frames whole (they are at most 125 bytes).
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace wscoro::bench::epoll {

/// Frame opcodes (RFC 6455 5.2).
namespace op {
inline constexpr unsigned continuation = 0, text = 1, binary = 2, close = 8, ping = 9, pong = 10;
}

/// What makes a server's frame unacceptable (RFC 6455 5.2-5.5): the connection must fail.
enum class frame_error {
    none,
    reserved_bits,            // RSV1-3 set: no extension was negotiated
    masked,                   // a server must not mask its frames
    bad_opcode,               // 3-7 or 11-15
    fragmented_control,       // a control frame without FIN
    control_too_long,         // a control frame longer than 125 bytes
    non_minimal_length,       // a 16- or 64-bit length that fits in fewer bits
    length_too_large,         // a 64-bit length with its top bit set
    unexpected_continuation,  // a continuation frame outside a fragmented message
    expected_continuation,    // a new data frame inside a fragmented message
};

inline char const* describe(frame_error e) noexcept {
    switch (e) {
    case frame_error::none:
        return "ok";
    case frame_error::reserved_bits:
        return "reserved bits set";
    case frame_error::masked:
        return "masked frame from the server";
    case frame_error::bad_opcode:
        return "unknown opcode";
    case frame_error::fragmented_control:
        return "fragmented control frame";
    case frame_error::control_too_long:
        return "control frame longer than 125 bytes";
    case frame_error::non_minimal_length:
        return "payload length not minimally encoded";
    case frame_error::length_too_large:
        return "64-bit payload length with the top bit set";
    case frame_error::unexpected_continuation:
        return "continuation frame without a message to continue";
    case frame_error::expected_continuation:
        return "new data frame inside a fragmented message";
    }
    return "?";
}

/// Where a connection is in the stream of frames, between two reads.
struct frame_state {
    std::uint64_t left = 0;   ///< payload bytes of the current data frame still to come
    bool fin = false;         ///< the current data frame ends its message
    bool in_message = false;  ///< a data message has begun and not yet ended
};

struct parse_result {
    std::size_t consumed = 0;  ///< bytes used; the rest is an incomplete header or control frame
    frame_error error = frame_error::none;
    bool stopped = false;  ///< the sink's control() returned false (a close frame): stop reading
};

namespace detail {
inline std::uint64_t big_endian(unsigned char const* p, unsigned bytes) noexcept {
    std::uint64_t v = 0;
    for (unsigned i = 0; i < bytes; ++i) v = (v << 8) | p[i];
    return v;
}
}  // namespace detail

/// Parses the server frames in [data, data + size), continuing from `st`. The sink gets:
///   begin(unsigned opcode)                     a text or binary message starts
///   data(char const*, std::size_t)             payload bytes of that message, in order
///   end()                                      the message is complete
///   bool control(unsigned opcode, char const*, std::size_t)   a whole ping, pong or close;
///                                              false stops parsing (after a close frame)
/// Bytes not consumed must be offered again, with more after them, on the next call.
template <class Sink>
parse_result parse_frames(frame_state& st, char const* data, std::size_t size, Sink& sink) {
    auto const* p = reinterpret_cast<unsigned char const*>(data);
    auto const* const begin = p;
    auto const* const end = p + size;
    auto fail = [&](frame_error e) {
        return parse_result{static_cast<std::size_t>(p - begin), e, false};
    };
    for (;;) {
        if (st.left > 0) {  // inside a data frame's payload
            if (p == end) break;
            auto const take = static_cast<std::size_t>(
                st.left < static_cast<std::uint64_t>(end - p) ? st.left : end - p);
            sink.data(reinterpret_cast<char const*>(p), take);
            p += take;
            st.left -= take;
            if (st.left > 0) break;
            if (st.fin) {
                st.in_message = false;
                sink.end();
            }
            continue;
        }
        if (end - p < 2) break;
        unsigned const b0 = p[0], b1 = p[1];
        bool const fin = (b0 & 0x80) != 0;
        unsigned const opcode = b0 & 0x0f;
        if (b0 & 0x70) return fail(frame_error::reserved_bits);
        if (b1 & 0x80) return fail(frame_error::masked);
        std::uint64_t len = b1 & 0x7f;
        std::size_t const header = len == 126 ? 4 : len == 127 ? 10 : 2;
        if (static_cast<std::size_t>(end - p) < header) break;
        if (len == 126) {
            len = detail::big_endian(p + 2, 2);
            if (len < 126) return fail(frame_error::non_minimal_length);
        } else if (len == 127) {
            len = detail::big_endian(p + 2, 8);
            if (len >> 63) return fail(frame_error::length_too_large);
            if (len <= 0xffff) return fail(frame_error::non_minimal_length);
        }
        if (opcode >= 8) {
            if (opcode > op::pong) return fail(frame_error::bad_opcode);
            if (!fin) return fail(frame_error::fragmented_control);
            if (len > 125) return fail(frame_error::control_too_long);
            if (static_cast<std::uint64_t>(end - p) < header + len) break;
            bool const go = sink.control(opcode, reinterpret_cast<char const*>(p + header),
                                         static_cast<std::size_t>(len));
            p += header + len;
            if (!go) return {static_cast<std::size_t>(p - begin), frame_error::none, true};
            continue;
        }
        if (opcode == op::continuation) {
            if (!st.in_message) return fail(frame_error::unexpected_continuation);
        } else if (opcode == op::text || opcode == op::binary) {
            if (st.in_message) return fail(frame_error::expected_continuation);
            st.in_message = true;
            sink.begin(opcode);
        } else {
            return fail(frame_error::bad_opcode);
        }
        p += header;
        st.fin = fin;
        st.left = len;
        if (len == 0 && fin) {  // an empty final frame ends its message here
            st.in_message = false;
            sink.end();
        }
    }
    return {static_cast<std::size_t>(p - begin), frame_error::none, false};
}

/// Largest header of a client frame: 2 + 8 (64-bit length) + 4 (masking key).
inline constexpr std::size_t max_client_header = 14;

/// Writes the header of a final, masked client frame into `out` (at least max_client_header
/// bytes); returns its length.
inline std::size_t write_client_header(unsigned char* out, unsigned opcode, std::uint64_t len,
                                       std::uint8_t const (&key)[4]) noexcept {
    out[0] = static_cast<unsigned char>(0x80 | opcode);
    std::size_t n;
    if (len < 126) {
        out[1] = static_cast<unsigned char>(0x80 | len);
        n = 2;
    } else if (len <= 0xffff) {
        out[1] = 0x80 | 126;
        out[2] = static_cast<unsigned char>(len >> 8);
        out[3] = static_cast<unsigned char>(len);
        n = 4;
    } else {
        out[1] = 0x80 | 127;
        for (unsigned i = 0; i < 8; ++i)
            out[2 + i] = static_cast<unsigned char>(len >> (56 - 8 * i));
        n = 10;
    }
    std::memcpy(out + n, key, 4);
    return n + 4;
}

/// XORs `n` bytes from `in` into `out` with `key`, the first byte at key phase `phase` (0-3).
inline void mask_copy(char* out, char const* in, std::size_t n, std::uint8_t const (&key)[4],
                      std::size_t phase = 0) noexcept {
    for (std::size_t i = 0; i < n; ++i)
        out[i] = static_cast<char>(in[i] ^ static_cast<char>(key[(phase + i) & 3]));
}

}  // namespace wscoro::bench::epoll
