// wscoro's own framing: the write loop (stream_connection.hpp) writes data frames itself, with
// frame_header.hpp and the corked stream's frame calls, not through Beast. For fuzzer-chosen
// messages (sizes across the 7/16/64-bit length encodings, contents, opcode), role and masking
// key, the bytes written after a real handshake must parse, with the independent parser below, as
// the minimal encoding with the right mask, and Beast, reading them as the peer, must get the same
// messages.
//
// Input (FuzzedDataProvider): the role, the masking key, then per message its opcode, a size and a
// pattern that fills it.
#include "corked_stream.hpp"
#include "frame_header.hpp"

#include "fuzz_check.hpp"
#include "test_stream.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/beast/_experimental/test/stream.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/websocket/detail/utf8_checker.hpp>
#include <boost/beast/websocket/stream.hpp>
#include <fuzzer/FuzzedDataProvider.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using boost::system::error_code;
using wscoro::detail::masking_key;

struct sent_message {
    bool text;
    std::string payload;
};

/// Reads one frame at `pos` as RFC 6455 5.2 says, and checks it against what was sent.
void check_frame(std::string_view wire, std::size_t& pos, sent_message const& m, std::optional<masking_key> key) {
    auto byte = [&](std::size_t i) {
        WSCORO_FUZZ_REQUIRE(pos + i < wire.size());
        return static_cast<unsigned char>(wire[pos + i]);
    };
    WSCORO_FUZZ_REQUIRE(byte(0) == (0x80u | (m.text ? 0x1u : 0x2u)));  // FIN, no RSV bits, opcode
    WSCORO_FUZZ_REQUIRE(((byte(1) & 0x80u) != 0) == key.has_value());  // a client masks, a server never
    std::uint64_t length = byte(1) & 0x7fu;
    std::size_t head = 2;
    if (length == 126) {
        length = (std::uint64_t{byte(2)} << 8) | byte(3);
        WSCORO_FUZZ_REQUIRE(length >= 126);  // minimal encoding (5.2: "the minimal number of bytes")
        head = 4;
    } else if (length == 127) {
        length = 0;
        for (std::size_t i = 0; i < 8; ++i) length = (length << 8) | byte(2 + i);
        WSCORO_FUZZ_REQUIRE(length > 0xffff);
        WSCORO_FUZZ_REQUIRE((length >> 63) == 0);  // the most significant bit MUST be 0
        head = 10;
    }
    WSCORO_FUZZ_REQUIRE(length == m.payload.size());
    if (key) {
        for (std::size_t i = 0; i < 4; ++i) WSCORO_FUZZ_REQUIRE(byte(head + i) == (*key)[i]);
        head += 4;
    }
    WSCORO_FUZZ_REQUIRE(wire.size() - pos - head >= length);
    auto const* body = wire.data() + pos + head;
    for (std::size_t i = 0; i < length; ++i) {
        auto const mask = key ? (*key)[i % 4] : 0;
        WSCORO_FUZZ_REQUIRE((static_cast<unsigned char>(body[i]) ^ mask) == static_cast<unsigned char>(m.payload[i]));
    }
    pos += head + length;
}

/// Runs the io_context until `done` is set: each step of the test is one asynchronous operation.
template <class Done> void run_until(asio::io_context& ioc, Done const& done) {
    ioc.restart();
    while (!done() && ioc.run_one()) {
    }
    WSCORO_FUZZ_REQUIRE(done());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(std::uint8_t const* data, std::size_t size) {
    FuzzedDataProvider in{data, size};
    bool const we_are_client = in.ConsumeBool();
    masking_key key;
    for (auto& b : key) b = in.ConsumeIntegral<unsigned char>();
    std::vector<sent_message> messages;
    auto const count = in.ConsumeIntegralInRange<std::size_t>(1, 8);
    for (std::size_t i = 0; i < count && in.remaining_bytes() > 0; ++i) {
        bool const text = in.ConsumeBool();
        // Each length encoding about as often: up to 125, up to 65535, beyond.
        static constexpr std::size_t size_limits[] = {130, 70'000, 300'000};
        auto const limit = size_limits[in.ConsumeIntegralInRange<std::size_t>(0, 2)];
        auto const n = in.ConsumeIntegralInRange<std::size_t>(0, limit);
        auto const pattern = in.ConsumeRandomLengthString(64);
        std::string payload(n, '\0');
        for (std::size_t j = 0; j < n && !pattern.empty(); ++j) payload[j] = pattern[j % pattern.size()];
        messages.push_back({text, std::move(payload)});
    }
    if (messages.empty()) return 0;

    // Our side as the connection has it (a corked WebSocket stream), Beast's plain stream as the peer.
    asio::io_context ioc;
    wscoro::fuzz::test_stream ours_raw{ioc};
    beast::test::stream peer_raw{ioc};
    ours_raw.connect(peer_raw);
    websocket::stream<wscoro::detail::corked_stream<wscoro::fuzz::test_stream>> ours{std::move(ours_raw)};
    websocket::stream<beast::test::stream> peer{std::move(peer_raw)};
    peer.read_message_max(1u << 20);
    std::optional<error_code> ours_done, peer_done;
    if (we_are_client) {
        ours.async_handshake("localhost", "/", [&](error_code ec) { ours_done = ec; });
        peer.async_accept([&](error_code ec) { peer_done = ec; });
    } else {
        ours.async_accept([&](error_code ec) { ours_done = ec; });
        peer.async_handshake("localhost", "/", [&](error_code ec) { peer_done = ec; });
    }
    run_until(ioc, [&] { return ours_done && peer_done; });
    WSCORO_FUZZ_REQUIRE(!*ours_done && !*peer_done);

    // The write loop's data branch (stream_connection.hpp), message after message.
    auto& cork = ours.next_layer();
    cork.enable_corking(4096);
    for (auto const& m : messages) {
        asio::const_buffer const body{m.payload.data(), m.payload.size()};
        if (!we_are_client) {
            wscoro::detail::frame_header const head{m.text, m.payload.size()};
            if (!cork.try_write_frame(head.buffer(), body)) {
                std::optional<error_code> wrote;
                cork.async_write_frame(head.buffer(), body, [&](error_code ec, std::size_t) { wrote = ec; });
                run_until(ioc, [&] { return wrote.has_value(); });
                WSCORO_FUZZ_REQUIRE(!*wrote);
            }
        } else {
            wscoro::detail::frame_header const head{m.text, m.payload.size(), key};
            while (!cork.try_write_masked_frame(head.buffer(), body, key)) {
                std::optional<error_code> flushed;
                cork.async_flush([&](error_code ec) { flushed = ec; });
                run_until(ioc, [&] { return flushed.has_value(); });
                WSCORO_FUZZ_REQUIRE(!*flushed);
            }
        }
    }
    std::optional<error_code> flushed;
    cork.async_flush([&](error_code ec) { flushed = ec; });
    run_until(ioc, [&] { return flushed.has_value(); });
    WSCORO_FUZZ_REQUIRE(!*flushed);

    // The bytes on the wire, by the reference parser.
    std::string const wire{peer.next_layer().str()};
    std::size_t pos = 0;
    std::optional<masking_key> const expected_key = we_are_client ? std::optional{key} : std::nullopt;
    for (auto const& m : messages) check_frame(wire, pos, m, expected_key);
    WSCORO_FUZZ_REQUIRE(pos == wire.size());

    // The same bytes, by Beast as the peer.
    for (auto const& m : messages) {
        beast::flat_buffer buffer;
        error_code ec;
        peer.read(buffer, ec);
        if (m.text && !websocket::detail::check_utf8(m.payload.data(), m.payload.size())) {
            WSCORO_FUZZ_REQUIRE(ec == websocket::error::bad_frame_payload);  // the sender's fault, not the framing's
            break;
        }
        WSCORO_FUZZ_REQUIRE(!ec);
        WSCORO_FUZZ_REQUIRE(peer.got_text() == m.text);
        WSCORO_FUZZ_REQUIRE(beast::buffers_to_string(buffer.data()) == m.payload);
    }
    return 0;
}
