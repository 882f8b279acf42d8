#pragma once
// The parts of a ws:// URL a client needs to connect.
#include <wscoro/error.hpp>

#include <cstdint>
#include <string>
#include <string_view>

namespace wscoro {

struct ws_url {
    std::string scheme;  ///< "ws" (wss:// is recognised and reported as unsupported for now)
    std::string host;    ///< name or address, without IPv6 brackets
    std::uint16_t port = 80;
    std::string target = "/";  ///< path and query, sent in the request line
    /// The Host header value: host, bracketed if IPv6, with ":port" unless it is the default.
    std::string host_header() const;
};

/// Parses `text`; on failure returns error::invalid_url and explains it in `diag`.
error_code parse_url(std::string_view text, ws_url& out, diagnostics& diag);

}  // namespace wscoro
