#pragma once
// Payloads for the conformance tests: the size classes of the length encodings, and contents that
// make a misplaced byte visible (text with characters of every UTF-8 length, binary with every
// byte value).
#include <cstddef>
#include <string>
#include <string_view>

namespace wscoro::test::wire {

/// The max_message_size of the servers and clients under test: the largest size class.
inline constexpr std::size_t max_message = std::size_t{1} << 20;

/// 7-bit, 16-bit and 64-bit lengths, at their edges.
inline constexpr std::size_t size_classes[] = {0, 1, 125, 126, 127, 65535, 65536, max_message};

/// `n` bytes of valid UTF-8 with characters of every length (1 to 4 bytes).
inline std::string text_of_size(std::size_t n) {
    static constexpr std::string_view pieces[] = {"a", "\xc3\xa9", "\xe2\x82\xac",
                                                  "\xf0\x9f\x98\x80"};
    std::string s;
    s.reserve(n);
    for (std::size_t i = 0; s.size() + 4 <= n; ++i) s += pieces[i % 4];
    s.append(n - s.size(), 'z');
    return s;
}

/// `n` bytes of every value, shifted by `seed`.
inline std::string binary_of_size(std::size_t n, unsigned seed = 0) {
    std::string s(n, '\0');
    for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 131 + seed) & 0xFF);
    return s;
}

/// The size of a header with the minimal length encoding.
inline std::size_t minimal_header(std::size_t n, bool masked) {
    return (n < 126 ? 2 : n <= 0xFFFF ? 4 : 10) + (masked ? 4 : 0);
}

}  // namespace wscoro::test::wire
