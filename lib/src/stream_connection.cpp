#include "stream_connection.hpp"

namespace wscoro::detail {
// Two instantiations per transport (see LoopExecutor), compiled once here.
template class stream_connection<beast::tcp_stream>;
template class stream_connection<beast::tcp_stream, asio::io_context::executor_type>;
}  // namespace wscoro::detail
