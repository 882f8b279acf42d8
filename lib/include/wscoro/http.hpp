#pragma once
// The HTTP types wscoro exposes: the upgrade request a server sees (for origin checks and
// connection metadata) and the headers a client adds to its upgrade request.
#include <boost/beast/http/fields.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

namespace wscoro {
namespace http = boost::beast::http;
using http_request = http::request<http::string_body>;
using http_response = http::response<http::string_body>;
using http_headers = http::fields;
}  // namespace wscoro
