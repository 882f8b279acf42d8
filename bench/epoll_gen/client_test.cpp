// The RFC 6455 client of wscoro-bench-epoll, piece by piece: what the servers under test may never
// send (pings, 16-bit lengths, interleaved control frames, broken frames, wrong handshakes) must
// still be handled right, or the generator's verification would mean nothing.
#include "frame.hpp"  // first: proves the header is self-contained

#include "endpoint.hpp"
#include "handshake.hpp"
#include "masked_pattern.hpp"
#include "out_queue.hpp"

#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <utility>
#include <vector>

namespace epoll = wscoro::bench::epoll;
namespace op = epoll::op;

namespace {

// A server frame (unmasked), length minimally encoded.
std::string server_frame(bool fin, unsigned opcode, std::string const& payload) {
    std::string f;
    f += static_cast<char>((fin ? 0x80 : 0) | opcode);
    auto const n = payload.size();
    if (n < 126) {
        f += static_cast<char>(n);
    } else if (n <= 0xffff) {
        f += static_cast<char>(126);
        f += static_cast<char>(n >> 8);
        f += static_cast<char>(n & 0xff);
    } else {
        f += static_cast<char>(127);
        for (int i = 7; i >= 0; --i) f += static_cast<char>((std::uint64_t{n} >> (8 * i)) & 0xff);
    }
    return f + payload;
}

std::string filled(std::size_t n, char seed) {
    std::string s(n, '\0');
    for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>(seed + i * 7);
    return s;
}

// Records what the parser reports; a close frame stops it, like the fleet.
struct recorder {
    std::vector<std::pair<unsigned, std::string>> messages;  // opcode, whole payload
    std::vector<std::pair<unsigned, std::string>> controls;
    bool open = false;

    void begin(unsigned opcode) {
        REQUIRE_FALSE(open);
        open = true;
        messages.emplace_back(opcode, std::string{});
    }
    void data(char const* p, std::size_t n) {
        REQUIRE(open);
        messages.back().second.append(p, n);
    }
    void end() {
        REQUIRE(open);
        open = false;
    }
    bool control(unsigned opcode, char const* p, std::size_t n) {
        controls.emplace_back(opcode, std::string{p, n});
        return opcode != op::close;
    }
};

// Feeds `stream` `chunk` bytes at a time, keeping what the parser did not consume in front of the
// next chunk, as the fleet's stash does. Returns the first error (or none) and whether it stopped.
epoll::parse_result feed(std::string const& stream, std::size_t chunk, recorder& r) {
    epoll::frame_state st;
    std::string pending;
    for (std::size_t at = 0; at < stream.size(); at += chunk) {
        pending += stream.substr(at, chunk);
        auto const res = epoll::parse_frames(st, pending.data(), pending.size(), r);
        if (res.error != epoll::frame_error::none || res.stopped) return res;
        pending.erase(0, res.consumed);
        REQUIRE(pending.size() <= 14 + 125);  // only a header or a control frame waits
    }
    return {};
}

epoll::frame_error error_of(std::string const& stream) {
    recorder r;
    return feed(stream, stream.size(), r).error;
}

}  // namespace

TEST_CASE("frames of every length encoding arrive whole however the reads split them") {
    auto const small = filled(125, 'a'), medium = filled(126, 'b'), large = filled(70'000, 'c');
    std::string stream = server_frame(true, op::binary, small) +
                         server_frame(true, op::binary, medium) + server_frame(true, op::text, "") +
                         server_frame(true, op::binary, large);
    for (std::size_t chunk : {std::size_t{1}, std::size_t{2}, std::size_t{3}, std::size_t{13},
                              std::size_t{4096}, stream.size()}) {
        CAPTURE(chunk);
        recorder r;
        auto const res = feed(stream, chunk, r);
        CHECK(res.error == epoll::frame_error::none);
        REQUIRE(r.messages.size() == 4);
        CHECK(r.messages[0] == std::pair{op::binary, small});
        CHECK(r.messages[1] == std::pair{op::binary, medium});
        CHECK(r.messages[2] == std::pair{op::text, std::string{}});
        CHECK(r.messages[3] == std::pair{op::binary, large});
        CHECK_FALSE(r.open);
    }
}

TEST_CASE("a fragmented message with pings between its fragments is one message") {
    std::string stream =
        server_frame(false, op::binary, "abc") + server_frame(true, op::ping, "p1") +
        server_frame(false, op::continuation, "") +
        server_frame(false, op::continuation, filled(300, 'x')) + server_frame(true, op::pong, "") +
        server_frame(true, op::continuation, "end");
    for (std::size_t chunk : {std::size_t{1}, std::size_t{5}, stream.size()}) {
        recorder r;
        CHECK(feed(stream, chunk, r).error == epoll::frame_error::none);
        REQUIRE(r.messages.size() == 1);
        CHECK(r.messages[0].second == "abc" + filled(300, 'x') + "end");
        REQUIRE(r.controls.size() == 2);
        CHECK(r.controls[0] == std::pair{op::ping, std::string{"p1"}});
        CHECK(r.controls[1] == std::pair{op::pong, std::string{}});
        CHECK_FALSE(r.open);
    }
}

TEST_CASE("a close frame stops the parser right after it") {
    std::string const close_payload = std::string{"\x03\xe8"} + "bye";  // 1000, a reason
    std::string stream = server_frame(true, op::binary, "last") +
                         server_frame(true, op::close, close_payload) + "garbage";
    recorder r;
    epoll::frame_state st;
    auto const res = epoll::parse_frames(st, stream.data(), stream.size(), r);
    CHECK(res.stopped);
    CHECK(res.error == epoll::frame_error::none);
    CHECK(res.consumed == stream.size() - 7);  // the fleet counts bytes after a close as an error
    REQUIRE(r.controls.size() == 1);
    CHECK(r.controls[0].second == close_payload);
    CHECK(r.messages.size() == 1);
}

TEST_CASE("frames a server must not send are errors") {
    using E = epoll::frame_error;
    CHECK(error_of("\xc2\x01x") == E::reserved_bits);                   // RSV1 (compression)
    CHECK(error_of(std::string{"\x82\x81\0\0\0\0x", 7}) == E::masked);  // a masked server frame
    CHECK(error_of(std::string{"\x83\x00", 2}) == E::bad_opcode);
    CHECK(error_of(std::string{"\x8b\x00", 2}) == E::bad_opcode);
    CHECK(error_of(std::string{"\x09\x00", 2}) == E::fragmented_control);  // ping without FIN
    CHECK(error_of(server_frame(true, op::ping, filled(126, 'p'))) == E::control_too_long);
    CHECK(error_of(std::string{"\x82\x7e\x00\x7d", 4} + filled(125, 'n')) == E::non_minimal_length);
    CHECK(error_of(std::string{"\x82\x7f\0\0\0\0\0\0\xff\xff", 10}) == E::non_minimal_length);
    CHECK(error_of(std::string{"\x82\x7f\x80\0\0\0\0\0\0\0", 10}) == E::length_too_large);
    CHECK(error_of(server_frame(true, op::continuation, "x")) == E::unexpected_continuation);
    CHECK(error_of(server_frame(false, op::text, "a") + server_frame(true, op::binary, "b")) ==
          E::expected_continuation);
}

TEST_CASE("a client frame header with its mask unmasks to the payload") {
    for (std::size_t n : {std::size_t{0}, std::size_t{125}, std::size_t{126}, std::size_t{65535},
                          std::size_t{65536}}) {
        CAPTURE(n);
        auto const payload = filled(n, 'q');
        std::uint8_t const key[4] = {0x12, 0x34, 0x56, 0x78};
        unsigned char header[epoll::max_client_header];
        auto const h = epoll::write_client_header(header, op::binary, n, key);
        std::string masked(n, '\0');
        epoll::mask_copy(masked.data(), payload.data(), n, key);
        CHECK(header[0] == 0x82);
        CHECK((header[1] & 0x80) != 0);  // the mask bit
        auto const code = header[1] & 0x7f;
        std::uint64_t length = code;
        std::size_t at = 2;
        if (code == 126) {
            length = (std::uint64_t{header[2]} << 8) | header[3];
            at = 4;
        } else if (code == 127) {
            length = 0;
            for (int i = 0; i < 8; ++i) length = (length << 8) | header[2 + i];
            at = 10;
        }
        CHECK(length == n);
        CHECK(h == at + 4);
        CHECK((n < 126 ? code < 126 : n <= 0xffff ? code == 126 : code == 127));
        for (std::size_t i = 0; i < n; ++i)
            REQUIRE(static_cast<char>(masked[i] ^ static_cast<char>(header[at + (i & 3)])) ==
                    payload[i]);
    }
}

TEST_CASE("pre-masked bodies unmask to the pattern with the key they come with") {
    wscoro::bench::pattern const p{1000};
    epoll::masked_pattern const m{p, 42, 4 * (1000 + wscoro::bench::pattern::rotations)};
    for (std::uint64_t key : {0ull, 1ull, 2ull, 3ull, 4095ull, 123456789ull}) {
        for (std::uint32_t random : {0u, 1u, 2u, 3u, 7u}) {
            for (std::size_t offset : {std::size_t{0}, std::size_t{1}, std::size_t{16},
                                       std::size_t{19}, std::size_t{20}}) {
                std::uint8_t mask[4];
                char const* masked = m.body(key, random, offset, mask);
                auto const body = p.body(key);
                for (std::size_t t = 0; t < body.size(); ++t)
                    REQUIRE(static_cast<char>(
                                masked[t] ^ static_cast<char>(mask[(offset + t) & 3])) == body[t]);
            }
        }
    }
}

TEST_CASE("the upgrade response is checked against our key") {
    // The example of RFC 6455 1.3.
    auto const accept = epoll::accept_for("dGhlIHNhbXBsZSBub25jZQ==");
    CHECK(accept == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    CHECK(epoll::make_key(1, 2).size() == 24);
    CHECK(epoll::make_key(1, 2) != epoll::make_key(1, 3));

    std::string const good = "HTTP/1.1 101 Switching Protocols\r\nupgrade: WebSocket\r\n"
                             "Connection: keep-alive, Upgrade\r\nSec-WebSocket-Accept: " +
                             accept + "\r\n\r\n";
    auto const ok = epoll::check_upgrade_response(good + "\x82\x00", accept);
    CHECK(ok.result == epoll::upgrade_check::accepted);
    CHECK(ok.head_size == good.size());  // the frame after the head is left for the parser
    CHECK(epoll::check_upgrade_response(good.substr(0, good.size() - 1), accept).result ==
          epoll::upgrade_check::incomplete);

    auto rejected = [&](std::string const& response) {
        auto const r = epoll::check_upgrade_response(response, accept);
        CAPTURE(response);
        CHECK(r.result == epoll::upgrade_check::rejected);
        CHECK_FALSE(r.why.empty());
        return r.why;
    };
    CHECK(rejected("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n").find("400") !=
          std::string::npos);
    rejected("HTTP/1.1 101 OK\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
             "Sec-WebSocket-Accept: AAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n\r\n");
    rejected("HTTP/1.1 101 OK\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " + accept +
             "\r\n\r\n");
    rejected("HTTP/1.1 101 OK\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: " + accept +
             "\r\n\r\n");
    rejected("HTTP/1.1 101 OK\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n");
    rejected(
        "HTTP/1.1 101 OK\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " +
        accept + "\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n");
    rejected("SSH-2.0-OpenSSH_9.2\r\n\r\n");
    rejected(std::string(epoll::max_response_head, 'x'));  // never ends: bounded

    auto const request = epoll::upgrade_request("127.0.0.1:8080", "/ws?x=1", "KEY");
    CHECK(request.rfind("GET /ws?x=1 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n", 0) == 0);
    CHECK(request.find("Sec-WebSocket-Key: KEY\r\n") != std::string::npos);
    CHECK(request.find("Sec-WebSocket-Version: 13\r\n") != std::string::npos);
    CHECK(request.substr(request.size() - 4) == "\r\n\r\n");
}

TEST_CASE("ws URLs are taken apart and wss or junk is refused") {
    epoll::ws_url_parts u;
    REQUIRE(epoll::parse_ws_url("ws://127.0.0.1:9001/path?q=1", u).empty());
    CHECK(u.host == "127.0.0.1");
    CHECK(u.port == "9001");
    CHECK(u.host_header == "127.0.0.1:9001");
    CHECK(u.target == "/path?q=1");
    epoll::ws_url_parts v;
    REQUIRE(epoll::parse_ws_url("ws://[::1]", v).empty());
    CHECK(v.host == "::1");
    CHECK(v.port == "80");
    CHECK(v.target == "/");
    epoll::ws_url_parts w;
    CHECK_FALSE(epoll::parse_ws_url("wss://127.0.0.1/", w).empty());
    CHECK_FALSE(epoll::parse_ws_url("http://127.0.0.1/", w).empty());
    CHECK_FALSE(epoll::parse_ws_url("ws://127.0.0.1:99999/", w).empty());
    CHECK_FALSE(epoll::parse_ws_url("ws://127.0.0.1:/", w).empty());
    CHECK_FALSE(epoll::parse_ws_url("ws:///", w).empty());
}

TEST_CASE("the output queue sends owned and referenced bytes in order across full sockets") {
    int fds[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds) == 0);
    int const small = 4096;
    ::setsockopt(fds[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    auto const big = filled(200'000, 'z');
    std::string expected;
    epoll::out_queue q;
    for (int i = 0; i < 5; ++i) {
        auto const head = "head" + std::to_string(i);
        std::memcpy(q.append(head.size()), head.data(), head.size());
        q.append_external(big.data(), big.size());
        expected += head + big;
    }
    std::string got;
    char buf[65536];
    for (int rounds = 0; rounds < 100'000 && got.size() < expected.size(); ++rounds) {
        REQUIRE(q.flush(fds[0]) == 0);
        for (ssize_t n; (n = ::read(fds[1], buf, sizeof buf)) > 0;) got.append(buf, n);
    }
    CHECK(q.empty());
    CHECK(got == expected);
    ::close(fds[1]);
    std::memcpy(q.append(3), "abc", 3);
    CHECK(q.flush(fds[0]) == EPIPE);  // the peer is gone: an error value, not a signal
    ::close(fds[0]);
}
