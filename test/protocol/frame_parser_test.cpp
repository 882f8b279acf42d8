// The strict frame parser checks itself: every conformance test relies on it to refuse what RFC
// 6455 forbids, so each rule is shown to fire here, on bytes written by hand (and by the frame
// writer).
#include "support/frame_parser.hpp"  // first: proves the header is self-contained

#include "protocol/wire_peer.hpp"

#include <doctest/doctest.h>

#include <string>
#include <vector>

namespace {

namespace wire = wscoro::test::wire;
namespace op = wire::op;
using sender = wire::frame_parser::sender;
using namespace std::string_literals;

auto const suite = doctest::test_suite("protocol_parser");

/// Parses `bytes` fed one byte at a time (every split point) and returns the frames.
std::vector<wire::frame> parse(sender from, std::string const& bytes) {
    wire::frame_parser p{from};
    std::vector<wire::frame> frames;
    for (char c : bytes) {
        p.feed(std::string_view{&c, 1});
        while (auto f = p.next()) frames.push_back(std::move(*f));
    }
    return frames;
}

/// The message of the violation `bytes` trigger, or "" if none.
std::string violation(sender from, std::string const& bytes) {
    try {
        parse(from, bytes);
    } catch (wire::protocol_violation const& e) {
        return e.what();
    }
    return {};
}

std::string raw(std::initializer_list<unsigned> bytes) {
    std::string s;
    for (unsigned b : bytes) s += static_cast<char>(b);
    return s;
}

}  // namespace

TEST_CASE("the frame writer and parser agree on every length form and on masking" * suite) {
    for (std::size_t n : {0, 1, 125, 126, 65535, 65536, 70000}) {
        CAPTURE(n);
        std::string payload(n, 'x');
        for (std::size_t i = 0; i < n; ++i) payload[i] = static_cast<char>(i * 7);
        auto const frames = parse(sender::client, wire::client_frame(op::binary, payload));
        REQUIRE(frames.size() == 1);
        CHECK(frames[0].masked);
        CHECK(frames[0].payload == payload);
        CHECK(frames[0].header_size == (n < 126 ? 2u : n <= 65535 ? 4u : 10u) + 4u);
        auto const from_server = parse(sender::server, wire::server_frame(op::binary, payload));
        REQUIRE(from_server.size() == 1);
        CHECK_FALSE(from_server[0].masked);
        CHECK(from_server[0].payload == payload);
    }
    // RFC 6455 5.7: a masked "Hello" with key 37 fa 21 3d.
    auto const hello = parse(
        sender::client, raw({0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58}));
    REQUIRE(hello.size() == 1);
    CHECK(hello[0].payload == "Hello");
    CHECK(wire::client_frame(op::text, "Hello") ==
          raw({0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58}));
    // A fragmented text with a ping between the fragments and a code point split across them.
    auto const frames = parse(sender::server, wire::server_frame(op::text, "a\xe2", false) +
                                                  wire::server_frame(op::ping, "p") +
                                                  wire::server_frame(op::cont, "\x82\xac"));
    REQUIRE(frames.size() == 3);
    CHECK(frames[1].opcode == op::ping);
    CHECK(frames[2].fin);
}

TEST_CASE("the frame parser refuses every violation it is meant to catch" * suite) {
    using wire::encode;
    struct bad {
        char const* expected;  // a part of the message
        sender from;
        std::string bytes;
    };
    std::vector<bad> const cases{
        {"RSV bits", sender::server,
         encode({.opcode = op::text, .payload = "x", .rsv = wire::rsv1, .mask = false})},
        {"RSV bits", sender::client, encode({.opcode = op::ping, .rsv = wire::rsv3})},
        {"reserved opcode 0x03", sender::server, wire::server_frame(0x3, "")},
        {"reserved opcode 0x0b", sender::client, wire::client_frame(0xB, "")},
        {"fragmented control", sender::server, wire::server_frame(op::ping, "", false)},
        {"unmasked client frame", sender::client, wire::server_frame(op::text, "x")},
        {"masked server frame", sender::server, wire::client_frame(op::text, "x")},
        {"not minimal", sender::server,
         encode({.opcode = op::text, .payload = "x", .mask = false, .length_bits = 16})},
        {"not minimal", sender::server,
         encode({.opcode = op::binary,
                 .payload = std::string(300, 'x'),
                 .mask = false,
                 .length_bits = 64})},
        {"most significant bit", sender::server,
         encode({.opcode = op::binary, .mask = false, .declared_length = std::uint64_t{1} << 63})},
        {"control frame of 126", sender::server,
         wire::server_frame(op::pong, std::string(126, 'p'))},
        {"continuation frame without", sender::server, wire::server_frame(op::cont, "x")},
        {"new data frame inside", sender::server,
         wire::server_frame(op::text, "a", false) + wire::server_frame(op::binary, "b")},
        {"not UTF-8", sender::server, wire::server_frame(op::text, "\xed\xa0\x80")},
        {"not UTF-8", sender::server,
         wire::server_frame(op::text, "\xe2", false) + wire::server_frame(op::cont, "(")},
        {"inside a UTF-8 sequence", sender::server,
         wire::server_frame(op::text, "\xe2\x82", false) + wire::server_frame(op::cont, "")},
        {"1-byte payload", sender::server, wire::server_frame(op::close, "\x03")},
        {"close code 1005", sender::server,
         wire::server_frame(op::close, wire::close_payload(1005))},
        {"close code 5000", sender::server,
         wire::server_frame(op::close, wire::close_payload(5000))},
        {"close reason is not UTF-8", sender::server,
         wire::server_frame(op::close, wire::close_payload(1000, "\xff"))},
        {"after the close frame", sender::server,
         wire::server_frame(op::close, "") + wire::server_frame(op::text, "late")},
    };
    for (auto const& c : cases) {
        CAPTURE(c.expected);
        auto const what = violation(c.from, c.bytes);
        CAPTURE(what);
        CHECK(what.find(c.expected) != std::string::npos);
    }
}

TEST_CASE("UTF-8 checking follows RFC 3629 also when split" * suite) {
    for (std::string const& good :
         {""s, "ascii"s, "\xc2\x80"s, "\xdf\xbf"s, "\xe0\xa0\x80"s, "\xed\x9f\xbf"s,
          "\xee\x80\x80"s, "\xf0\x90\x80\x80"s, "\xf4\x8f\xbf\xbf"s}) {
        CAPTURE(good);
        CHECK(wire::valid_utf8(good));
        for (std::size_t cut = 0; cut <= good.size(); ++cut) {  // any split point
            wire::utf8_checker c;
            CHECK(c.feed(good.substr(0, cut)));
            CHECK(c.feed(good.substr(cut)));
            CHECK(c.complete());
        }
    }
    for (std::string const& bad :
         {"\x80"s, "\xc0\x80"s, "\xc1\xbf"s, "\xe0\x9f\xbf"s, "\xed\xa0\x80"s, "\xf0\x8f\xbf\xbf"s,
          "\xf4\x90\x80\x80"s, "\xf5\x80\x80\x80"s, "\xff"s, "\xe2\x82"s}) {
        CAPTURE(bad);
        CHECK_FALSE(wire::valid_utf8(bad));
    }
}

TEST_CASE("the handshake helpers agree with RFC 6455 and RFC 4648" * suite) {
    CHECK(wire::accept_for(wire::rfc_key) == wire::rfc_accept);
    CHECK(wire::base64_decode(wire::rfc_key) == "the sample nonce"s);
    CHECK(wire::base64_decode("Zm9vYg==") == "foob"s);
    CHECK(wire::base64_decode("Zm9vYmE=") == "fooba"s);
    CHECK_FALSE(wire::base64_decode("Zm9vYg="));
    CHECK_FALSE(wire::base64_decode("Zm9v!mE="));
    CHECK_FALSE(wire::base64_decode("Zg==Zm9v"));
    auto const head = wire::parse_head("HTTP/1.1 101 Switching Protocols\r\nUpgrade: WebSocket\r\n"
                                       "Connection: keep-alive, Upgrade\r\nX-Empty:\r\n\r\n");
    CHECK(head.status() == 101);
    CHECK(head.has_token("upgrade", "websocket"));
    CHECK(head.has_token("Connection", "upgrade"));
    CHECK_FALSE(head.has_token("connection", "close"));
    CHECK(head.get("x-empty") == ""s);
    CHECK_FALSE(head.get("sec-websocket-accept"));
}
