// Arbitrary bytes arriving on an open server-side connection: stream_connection (its read loop,
// small first reads, hand-off to the consumer, teardown) over an in-memory stream. Beast alone,
// reading the same bytes with the same limits, says which messages they hold (up to the first that
// is not UTF-8 text); the connection must deliver exactly those, in order, and then end by itself
// (no hang, no crash, no leak).
//
// Input: the client's bytes after its upgrade request, then one option byte at the end: a small
// max_message_size, and how the bytes arrive (all at once or a few at a time).
#include "stream_connection.hpp"

#include "fuzz_check.hpp"
#include "test_stream.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/_experimental/test/stream.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/websocket/detail/utf8_checker.hpp>
#include <boost/beast/websocket/stream.hpp>
#include <fuzzer/FuzzedDataProvider.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <optional>
#include <string>
#include <vector>

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using boost::system::error_code;

constexpr std::string_view upgrade_request =
    "GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

struct received {
    bool text;
    std::string payload;
    bool operator==(received const&) const = default;
};

struct settings {
    std::size_t max_message_size;
    std::size_t read_size;  // bytes per read of the transport
};

/// The client's side: it sent `bytes` and then nothing (end of stream after them).
template <class Stream> void load(Stream& server_end, std::string const& bytes, settings s) {
    server_end.append(upgrade_request);
    server_end.append(bytes);
    server_end.close_remote();
    server_end.read_size(s.read_size);
}

/// What Beast's own stream reads from the bytes: every message until the first error.
std::vector<received> read_with_beast(std::string const& bytes, settings s) {
    asio::io_context ioc;
    beast::test::stream raw{ioc};
    beast::test::stream client{ioc};  // takes Beast's answers (101, pongs, close)
    raw.connect(client);
    load(raw, bytes, s);
    websocket::stream<beast::test::stream> ws{std::move(raw)};
    ws.read_message_max(s.max_message_size);
    error_code ec;
    ws.accept(ec);
    WSCORO_FUZZ_REQUIRE(!ec);
    std::vector<received> out;
    for (;;) {
        beast::flat_buffer buffer;
        ws.read(buffer, ec);
        if (ec) return out;
        auto payload = beast::buffers_to_string(buffer.data());
        // Beast 1.81 lets a text message that ends inside a code point through when its last
        // fragment is empty; the connection fails with 1007 there, as for any other bad UTF-8.
        if (ws.got_text() && !websocket::detail::check_utf8(payload.data(), payload.size())) return out;
        out.push_back({ws.got_text(), std::move(payload)});
    }
}

asio::awaitable<void> consume(wscoro::connection_ptr c, std::vector<received>* out) {
    for (;;) {
        auto [ec, m] = co_await c->async_receive(wscoro::detail::use_tuple);
        if (ec) co_return;
        out->push_back({m.is_text(), std::string{m.data()}});
    }
}

/// What a server-side wscoro connection delivers from the same bytes.
std::vector<received> read_with_connection(std::string const& bytes, settings s) {
    asio::io_context ioc;
    auto const strand = asio::make_strand(ioc);  // a connection runs on a strand of an io_context
    wscoro::fuzz::test_stream raw{strand};
    beast::test::stream client{ioc};
    raw.connect(client);
    load(raw, bytes, s);
    wscoro::detail::corked_websocket<wscoro::fuzz::test_stream> ws{std::move(raw)};
    std::optional<error_code> accepted;
    ws.async_accept([&](error_code ec) { accepted = ec; });
    ioc.run();
    WSCORO_FUZZ_REQUIRE(accepted && !*accepted);

    wscoro::connection_options opts;
    opts.max_message_size = s.max_message_size;
    // Our closing handshake waits write_wait at most for a peer that never answers (this one reads
    // nothing): short, so that every run ends well within the deadline below.
    opts.write_wait = std::chrono::seconds{1};
    auto conn = wscoro::detail::make_connection(std::move(ws), beast::role_type::server,
                                                wscoro::connection_info{"fuzz", "fuzz:0", "/", {}}, opts);
    std::vector<received> out;
    std::optional<error_code> ended;
    bool consumed = false;
    asio::co_spawn(conn->get_executor(), conn->run(), [&](std::exception_ptr e, error_code why) {
        if (e) std::rethrow_exception(e);
        ended = why;
    });
    asio::co_spawn(conn->get_executor(), consume(conn, &out), [&](std::exception_ptr e) {
        if (e) std::rethrow_exception(e);
        consumed = true;
    });
    // A deadline, not a pause: the loops end on their own once the bytes run out (or write_wait
    // after our close frame).
    ioc.restart();
    ioc.run_for(std::chrono::seconds{5});
    WSCORO_FUZZ_REQUIRE(ended.has_value());
    WSCORO_FUZZ_REQUIRE(consumed);
    WSCORO_FUZZ_REQUIRE(!conn->is_open());
    return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(std::uint8_t const* data, std::size_t size) {
    FuzzedDataProvider in{data, size};
    auto const options = in.ConsumeIntegral<std::uint8_t>();
    std::string const bytes = in.ConsumeRemainingBytesAsString();
    settings const s{options & 1 ? std::size_t{64} : std::size_t{1} << 16, options & 2 ? 3 : std::size_t{1} << 20};
    auto const expected = read_with_beast(bytes, s);
    auto const got = read_with_connection(bytes, s);
    WSCORO_FUZZ_REQUIRE(got == expected);
    return 0;
}
