#include "stream_connection.hpp"

namespace wscoro::detail {
// One instantiation per transport, compiled once here.
template class stream_connection<beast::tcp_stream>;
}  // namespace wscoro::detail
