#pragma once
// RFC 6455 frames as the tests see them on the wire, written without Beast or wscoro code: a strict
// reader that throws on the first thing a conforming endpoint must not send, and a writer that can
// also build the frames a conforming endpoint must refuse (reserved bits and opcodes, unmasked
// client frames, non-minimal or absurd lengths...).
//
// The reader checks, for every frame: no RSV bit (no extension is ever negotiated with wscoro), a
// defined opcode, control frames unfragmented and at most 125 bytes, the MASK bit as the sender's
// role requires, the minimal length encoding and a clear top bit of a 64-bit length; across frames:
// continuations only inside a fragmented message and no new data frame inside one, text valid UTF-8
// (checked across fragments), close payloads that are empty or a valid code plus a UTF-8 reason,
// and nothing at all after a close frame.
#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace wscoro::test::wire {

namespace op {
inline constexpr unsigned cont = 0x0, text = 0x1, binary = 0x2, close = 0x8, ping = 0x9, pong = 0xA;
}

/// RSV bits, as they sit in the first byte.
inline constexpr unsigned rsv1 = 0x40, rsv2 = 0x20, rsv3 = 0x10;

using masking_key = std::array<unsigned char, 4>;

/// A frame read from the wire; `payload` is unmasked.
struct frame {
    bool fin = true;
    unsigned opcode = 0;
    bool masked = false;
    masking_key key{};
    std::string payload;
    std::size_t header_size = 0;  ///< 2 to 14 bytes

    bool is_control() const noexcept { return opcode >= 0x8; }
    /// The code of a close frame (0 when its payload is empty).
    unsigned close_code() const noexcept {
        if (payload.size() < 2) return 0;
        return static_cast<unsigned>(static_cast<unsigned char>(payload[0])) << 8 |
               static_cast<unsigned char>(payload[1]);
    }
    std::string_view close_reason() const noexcept {
        return payload.size() < 2 ? std::string_view{} : std::string_view{payload}.substr(2);
    }
};

/// What a peer sent that RFC 6455 forbids.
struct protocol_violation : std::runtime_error {
    using std::runtime_error::runtime_error;
};

/// UTF-8 as RFC 3629 defines it (no overlong forms, no surrogates, nothing above U+10FFFF), fed in
/// pieces: a code point may be split between two pieces, as between two fragments.
class utf8_checker {
public:
    /// False as soon as the bytes cannot be the start of valid UTF-8.
    bool feed(std::string_view s) noexcept {
        for (char ch : s) {
            auto const b = static_cast<unsigned char>(ch);
            if (need_ == 0) {
                if (b < 0x80) continue;
                if (b >= 0xC2 && b <= 0xDF) {
                    need_ = 1, lo_ = 0x80, hi_ = 0xBF;
                } else if (b >= 0xE0 && b <= 0xEF) {
                    need_ = 2;
                    lo_ = b == 0xE0 ? 0xA0 : 0x80;  // E0 80..9F would be overlong
                    hi_ = b == 0xED ? 0x9F : 0xBF;  // ED A0..BF would be a surrogate
                } else if (b >= 0xF0 && b <= 0xF4) {
                    need_ = 3;
                    lo_ = b == 0xF0 ? 0x90 : 0x80;  // F0 80..8F would be overlong
                    hi_ = b == 0xF4 ? 0x8F : 0xBF;  // F4 90.. would be above U+10FFFF
                } else {
                    return false;  // 80..C1 and F5..FF never start a character
                }
            } else {
                if (b < lo_ || b > hi_) return false;
                --need_, lo_ = 0x80, hi_ = 0xBF;
            }
        }
        return true;
    }
    /// No code point is cut off at the end.
    bool complete() const noexcept { return need_ == 0; }
    void reset() noexcept { need_ = 0; }

private:
    int need_ = 0;                         // continuation bytes still expected
    unsigned char lo_ = 0x80, hi_ = 0xBF;  // the range of the next one
};

inline bool valid_utf8(std::string_view s) {
    utf8_checker c;
    return c.feed(s) && c.complete();
}

/// Close codes an endpoint may send (RFC 6455 7.4.1, the IANA registry, 3000-4999).
inline bool sendable_close_code(unsigned code) {
    return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
           (code >= 3000 && code <= 4999);
}

/// Reads the frames of one direction of a connection.
class frame_parser {
public:
    enum class sender { server, client };  ///< server frames must be unmasked, client frames masked

    explicit frame_parser(sender from) : from_(from) {}

    void feed(std::string_view bytes) { buf_.append(bytes); }
    std::size_t buffered() const noexcept { return buf_.size() - pos_; }
    /// A close frame was read: the peer must send nothing more.
    bool closed() const noexcept { return closed_; }
    /// Inside a fragmented message.
    bool in_message() const noexcept { return open_ != 0; }

    /// The next complete frame, or nullopt if more bytes are needed. Throws protocol_violation.
    std::optional<frame> next() {
        std::string_view const in = std::string_view{buf_}.substr(pos_);
        if (in.empty()) return std::nullopt;
        if (closed_) fail("bytes after the close frame");
        if (in.size() < 2) return std::nullopt;
        auto const b0 = static_cast<unsigned char>(in[0]);
        auto const b1 = static_cast<unsigned char>(in[1]);
        frame f;
        f.fin = (b0 & 0x80) != 0;
        f.opcode = b0 & 0x0F;
        f.masked = (b1 & 0x80) != 0;
        if (b0 & 0x70)
            fail("RSV bits set (0x" + hex(b0 & 0x70) + ") but no extension was negotiated");
        if (!(f.opcode <= op::binary || (f.opcode >= op::close && f.opcode <= op::pong)))
            fail("reserved opcode 0x" + hex(f.opcode));
        if (f.is_control() && !f.fin) fail("fragmented control frame");
        bool const want_mask = from_ == sender::client;
        if (f.masked != want_mask)
            fail(want_mask ? "unmasked client frame" : "masked server frame");
        std::uint64_t len = b1 & 0x7F;
        std::size_t head = 2;
        if (len == 126) {
            if (in.size() < 4) return std::nullopt;
            len = read_be(in.substr(2, 2));
            head = 4;
            if (len < 126)
                fail("length " + std::to_string(len) + " in the 16-bit form: not minimal");
        } else if (len == 127) {
            if (in.size() < 10) return std::nullopt;
            len = read_be(in.substr(2, 8));
            head = 10;
            if (len >> 63) fail("64-bit length with the most significant bit set");
            if (len < 65536)
                fail("length " + std::to_string(len) + " in the 64-bit form: not minimal");
        }
        if (f.is_control() && len > 125) fail("control frame of " + std::to_string(len) + " bytes");
        if (len > max_frame)
            fail("frame of " + std::to_string(len) + " bytes: more than the test expects");
        if (f.masked) {
            if (in.size() < head + 4) return std::nullopt;
            for (std::size_t i = 0; i < 4; ++i) f.key[i] = static_cast<unsigned char>(in[head + i]);
            head += 4;
        }
        if (in.size() < head + len) return std::nullopt;
        f.header_size = head;
        f.payload.assign(in.substr(head, static_cast<std::size_t>(len)));
        if (f.masked)
            for (std::size_t i = 0; i < f.payload.size(); ++i)
                f.payload[i] ^= static_cast<char>(f.key[i % 4]);
        pos_ += head + static_cast<std::size_t>(len);
        if (pos_ == buf_.size()) buf_.clear(), pos_ = 0;
        check_sequence(f);
        return f;
    }

    static constexpr std::uint64_t max_frame = 64u << 20;

private:
    [[noreturn]] static void fail(std::string const& what) { throw protocol_violation{what}; }

    static std::string hex(unsigned v) {
        static constexpr char digits[] = "0123456789abcdef";
        return {digits[(v >> 4) & 15], digits[v & 15]};
    }

    static std::uint64_t read_be(std::string_view s) {
        std::uint64_t v = 0;
        for (char c : s) v = v << 8 | static_cast<unsigned char>(c);
        return v;
    }

    void check_sequence(frame const& f) {
        switch (f.opcode) {
        case op::text:
        case op::binary:
            if (open_) fail("new data frame inside a fragmented message");
            open_ = f.opcode;
            utf8_.reset();
            break;
        case op::cont:
            if (!open_) fail("continuation frame without a message");
            break;
        case op::close:
            if (f.payload.size() == 1) fail("close frame with a 1-byte payload");
            if (f.payload.size() >= 2 && !sendable_close_code(f.close_code()))
                fail("close code " + std::to_string(f.close_code()) + " may not be sent");
            if (!valid_utf8(f.close_reason())) fail("close reason is not UTF-8");
            closed_ = true;
            return;
        default:
            return;  // ping, pong: any payload
        }
        if (open_ == op::text && !utf8_.feed(f.payload)) fail("text message is not UTF-8");
        if (f.fin) {
            if (open_ == op::text && !utf8_.complete())
                fail("text message ends inside a UTF-8 sequence");
            open_ = 0;
        }
    }

    sender from_;
    std::string buf_;
    std::size_t pos_ = 0;  // bytes of buf_ already parsed
    unsigned open_ = 0;    // opcode of the fragmented message under way
    utf8_checker utf8_;
    bool closed_ = false;
};

/// Everything about a frame to write, including what no conforming endpoint would write.
struct frame_spec {
    unsigned opcode = op::text;
    std::string_view payload{};
    bool fin = true;
    unsigned rsv = 0;  ///< rsv1 | rsv2 | rsv3
    bool mask = true;  ///< a client's frame
    masking_key key{0x37, 0xfa, 0x21, 0x3d};
    int length_bits = 0;  ///< 0: minimal encoding; 7, 16 or 64: that form, minimal or not
    std::optional<std::uint64_t> declared_length{};  ///< a length other than the payload's
};

inline std::string encode(frame_spec const& s) {
    std::string out;
    out += static_cast<char>((s.fin ? 0x80u : 0u) | (s.rsv & 0x70u) | (s.opcode & 0x0Fu));
    std::uint64_t const len = s.declared_length.value_or(s.payload.size());
    int const bits = s.length_bits ? s.length_bits : len < 126 ? 7 : len <= 0xFFFF ? 16 : 64;
    unsigned const mask_bit = s.mask ? 0x80u : 0u;
    if (bits == 7) {
        out += static_cast<char>(mask_bit | static_cast<unsigned>(len & 0x7F));
    } else {
        out += static_cast<char>(mask_bit | (bits == 16 ? 126u : 127u));
        for (int i = bits / 8 - 1; i >= 0; --i) out += static_cast<char>((len >> (8 * i)) & 0xFF);
    }
    if (s.mask)
        for (unsigned char k : s.key) out += static_cast<char>(k);
    for (std::size_t i = 0; i < s.payload.size(); ++i)
        out += static_cast<char>(static_cast<unsigned char>(s.payload[i]) ^
                                 (s.mask ? s.key[i % 4] : 0));
    return out;
}

/// A client's (masked) frame with the usual fields.
inline std::string client_frame(unsigned opcode, std::string_view payload, bool fin = true) {
    return encode({.opcode = opcode, .payload = payload, .fin = fin});
}

/// A server's (unmasked) frame.
inline std::string server_frame(unsigned opcode, std::string_view payload, bool fin = true) {
    return encode({.opcode = opcode, .payload = payload, .fin = fin, .mask = false});
}

/// The payload of a close frame: the code (big-endian) and the reason.
inline std::string close_payload(unsigned code, std::string_view reason = {}) {
    std::string p;
    p += static_cast<char>((code >> 8) & 0xFF);
    p += static_cast<char>(code & 0xFF);
    p += reason;
    return p;
}

}  // namespace wscoro::test::wire
