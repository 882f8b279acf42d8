#pragma once
// A raw TCP endpoint that speaks RFC 6455 by hand, for the conformance tests: it writes exactly the
// bytes a test gives it (hostile frames included) and reads the other side's bytes through the
// strict frame parser (test/support/frame_parser.hpp). As a client it does the upgrade itself; as a
// server it accepts a TCP connection and the test answers the upgrade. Every call is bounded
// (raw::bounded_io): it returns asio::error::timed_out instead of hanging.
#include "support/frame_parser.hpp"
#include "support/raw_peer.hpp"

#include <boost/beast/core/detail/base64.hpp>
#include <boost/beast/core/detail/sha1.hpp>

#include <algorithm>
#include <array>
#include <cctype>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace wscoro::test::wire {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using boost::system::error_code;
using namespace std::chrono_literals;

/// The key of RFC 6455's example handshake (1.3) and the Sec-WebSocket-Accept it must produce.
inline constexpr std::string_view rfc_key = "dGhlIHNhbXBsZSBub25jZQ==";
inline constexpr std::string_view rfc_accept = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

/// Sec-WebSocket-Accept for `key` (RFC 6455 4.2.2). The raw test server needs it for keys it did
/// not choose; the tests check it against the RFC's example first.
inline std::string accept_for(std::string_view key) {
    namespace bd = boost::beast::detail;
    std::string const in = std::string{key} + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    bd::sha1_context ctx;
    bd::init(ctx);
    bd::update(ctx, in.data(), in.size());
    unsigned char digest[bd::sha1_context::digest_size];
    bd::finish(ctx, digest);
    std::string out(bd::base64::encoded_size(sizeof digest), '\0');
    out.resize(bd::base64::encode(out.data(), digest, sizeof digest));
    return out;
}

/// Strict base64 (RFC 4648 alphabet, padded): the decoded bytes, or nullopt.
inline std::optional<std::string> base64_decode(std::string_view s) {
    auto value = [](char c) -> int {
        if (c >= 'A' && c <= 'Z') return c - 'A';
        if (c >= 'a' && c <= 'z') return c - 'a' + 26;
        if (c >= '0' && c <= '9') return c - '0' + 52;
        if (c == '+') return 62;
        if (c == '/') return 63;
        return -1;
    };
    if (s.size() % 4 != 0) return std::nullopt;
    std::string out;
    for (std::size_t i = 0; i < s.size(); i += 4) {
        int v[4];
        int pad = 0;
        for (int j = 0; j < 4; ++j) {
            char const c = s[i + static_cast<std::size_t>(j)];
            bool const last_group = i + 4 == s.size();
            if (c == '=' && last_group && j >= 2) {
                v[j] = 0;
                ++pad;
                continue;
            }
            if (pad) return std::nullopt;  // data after padding
            v[j] = value(c);
            if (v[j] < 0) return std::nullopt;
        }
        unsigned const n = static_cast<unsigned>(v[0] << 18 | v[1] << 12 | v[2] << 6 | v[3]);
        out += static_cast<char>(n >> 16);
        if (pad < 2) out += static_cast<char>((n >> 8) & 0xFF);
        if (pad < 1) out += static_cast<char>(n & 0xFF);
    }
    return out;
}

/// An HTTP request or response head, as received.
struct http_head {
    std::string start_line;
    std::vector<std::pair<std::string, std::string>> fields;  // names lowercased, values trimmed

    std::optional<std::string> get(std::string_view name) const {
        for (auto const& [n, v] : fields)
            if (n == lower(name)) return v;
        return std::nullopt;
    }
    /// The field is a comma-separated list containing `token` (case-insensitive), as Connection
    /// and Upgrade are.
    bool has_token(std::string_view name, std::string_view token) const {
        for (auto const& [n, v] : fields) {
            if (n != lower(name)) continue;
            std::string_view rest = v;
            while (!rest.empty()) {
                auto const comma = rest.find(',');
                if (lower(trim(rest.substr(0, comma))) == lower(token)) return true;
                rest = comma == rest.npos ? std::string_view{} : rest.substr(comma + 1);
            }
        }
        return false;
    }
    /// The status code of a response ("HTTP/1.1 426 Upgrade Required" -> 426), else 0.
    int status() const {
        auto const sp = start_line.find(' ');
        if (start_line.rfind("HTTP/", 0) != 0 || sp == std::string::npos) return 0;
        return std::atoi(start_line.c_str() + sp + 1);
    }

    static std::string lower(std::string_view s) {
        std::string out{s};
        for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        return out;
    }
    static std::string_view trim(std::string_view s) {
        while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
        while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
        return s;
    }
};

/// Parses "start line CRLF (name: value CRLF)* CRLF".
inline http_head parse_head(std::string_view text) {
    http_head h;
    auto line_end = text.find("\r\n");
    h.start_line = std::string{text.substr(0, line_end)};
    while (line_end != text.npos) {
        text.remove_prefix(line_end + 2);
        line_end = text.find("\r\n");
        auto const line = text.substr(0, line_end);
        if (line.empty()) break;
        auto const colon = line.find(':');
        if (colon == line.npos) continue;
        h.fields.emplace_back(http_head::lower(line.substr(0, colon)),
                              std::string{http_head::trim(line.substr(colon + 1))});
    }
    return h;
}

/// The upgrade request of RFC 6455's example, as a string the tests can spoil.
inline std::string upgrade_request(std::string const& host, std::string const& target = "/ws") {
    return "GET " + target + " HTTP/1.1\r\nHost: " + host +
           "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " +
           std::string{rfc_key} + "\r\nSec-WebSocket-Version: 13\r\n\r\n";
}

class peer : public raw::bounded_io {
public:
    /// `reads`: whose frames arrive here (a client peer reads a server's frames).
    explicit peer(frame_parser::sender reads, std::chrono::milliseconds limit = 5s)
        : bounded_io(limit), socket_(context()), parser_(reads), reads_(reads) {}

    error_code connect(std::string const& address) {
        auto const ep = raw::endpoint_of(address);
        auto ec =
            run_op([&](auto h) { socket_.async_connect(ep, std::move(h)); }, [this] { kill(); });
        if (!ec) remember_local();
        return ec;
    }
    /// Accepts one connection from `a`, which must run on context().
    error_code accept(tcp::acceptor& a) {
        auto ec = run_op([&](auto h) { a.async_accept(socket_, std::move(h)); },
                         [&a] {
                             error_code ignored;
                             a.close(ignored);
                         });
        if (!ec) remember_local();
        return ec;
    }
    /// "ip:port" of this end: what the other side sees as the remote address.
    std::string const& local_address() const noexcept { return local_; }

    error_code write(std::string_view bytes) {
        return run_op(
            [&](auto h) {
                asio::async_write(socket_, asio::buffer(bytes.data(), bytes.size()), std::move(h));
            },
            [this] { kill(); });
    }

    /// Reads an HTTP head (up to the empty line); whatever follows it is kept for read_frame.
    error_code read_head(http_head& out, std::string* raw_text = nullptr) {
        std::size_t end;
        while ((end = head_.find("\r\n\r\n")) == std::string::npos) {
            if (head_.size() > 64 * 1024) return asio::error::message_size;
            if (auto ec = read_some(head_)) return ec;
        }
        if (raw_text) *raw_text = head_.substr(0, end + 4);
        out = parse_head(std::string_view{head_}.substr(0, end + 4));
        parser_.feed(std::string_view{head_}.substr(end + 4));
        head_.clear();
        return {};
    }

    /// The upgrade as a client, with RFC 6455's example key: fails unless the answer is a valid 101
    /// with the right Sec-WebSocket-Accept and no extension.
    error_code upgrade(std::string const& address, std::string const& target = "/ws") {
        if (auto ec = write(upgrade_request(address, target))) return ec;
        http_head res;
        if (auto ec = read_head(res)) return ec;
        bool const ok = res.status() == 101 && res.start_line.rfind("HTTP/1.1 ", 0) == 0 &&
                        res.has_token("upgrade", "websocket") &&
                        res.has_token("connection", "upgrade") &&
                        res.get("sec-websocket-accept") == std::string{rfc_accept} &&
                        !res.get("sec-websocket-extensions") && !res.get("sec-websocket-protocol");
        return ok ? error_code{} : error_code{asio::error::connection_refused};
    }

    /// The next frame. Throws protocol_violation; eof (or connection_reset) if TCP closed first.
    error_code read_frame(frame& f) {
        for (;;) {
            if (auto next = parser_.next()) {
                f = std::move(*next);
                return {};
            }
            std::string chunk;
            if (auto ec = read_some(chunk)) return ec;
            parser_.feed(chunk);
        }
    }

    /// The next frame that is not a ping or pong; pings are answered (with the frame the role
    /// requires) and both are counted.
    error_code read_data_or_close(frame& f) {
        for (;;) {
            if (auto ec = read_frame(f)) return ec;
            if (f.opcode == op::pong) {
                ++pongs_seen;
                continue;
            }
            if (f.opcode != op::ping) return {};
            ++pings_seen;
            bool const masked =
                parser_sender() == frame_parser::sender::server;  // we are the client
            if (auto ec = write(encode({.opcode = op::pong, .payload = f.payload, .mask = masked})))
                return ec;
        }
    }

    /// Expects TCP to end (the other side closed) with no further byte, then closes this end too
    /// (a server that shut down its side waits for that). Success on EOF or reset; throws
    /// protocol_violation if a byte arrives after a close frame.
    error_code read_eof() {
        for (;;) {
            if (parser_.buffered()) {
                parser_.next();                    // throws after a close frame
                return asio::error::message_size;  // a complete or partial frame instead of EOF
            }
            std::string chunk;
            auto ec = read_some(chunk);
            if (ec == asio::error::eof || ec == asio::error::connection_reset) {
                kill();
                return {};
            }
            if (ec) return ec;
            parser_.feed(chunk);
        }
    }

    tcp::socket& socket() noexcept { return socket_; }
    frame_parser& parser() noexcept { return parser_; }
    void kill() {
        error_code ignored;
        socket_.close(ignored);
    }

    std::size_t pings_seen = 0;
    std::size_t pongs_seen = 0;

private:
    void remember_local() {
        error_code ec;
        auto const ep = socket_.local_endpoint(ec);
        if (!ec) local_ = ep.address().to_string() + ":" + std::to_string(ep.port());
    }

    frame_parser::sender parser_sender() const noexcept { return reads_; }

    error_code read_some(std::string& into) {
        got_ = 0;
        auto ec = run_op(
            [&](auto h) {
                socket_.async_read_some(
                    asio::buffer(read_buf_),
                    [this, h = std::move(h)](error_code ec, std::size_t n) mutable {
                        got_ = n;
                        h(ec);
                    });
            },
            [this] { kill(); });
        into.append(read_buf_.data(), got_);
        return ec;
    }

    tcp::socket socket_;
    frame_parser parser_;
    frame_parser::sender reads_;
    std::string head_;  // an HTTP head being read
    std::string local_;
    std::array<char, 64 * 1024> read_buf_;
    std::size_t got_ = 0;
};

}  // namespace wscoro::test::wire
