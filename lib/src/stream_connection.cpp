#include "stream_connection.hpp"

namespace wscoro::detail {
// Three instantiations per transport (see LoopExecutor), compiled once here.
template class stream_connection<asio::ip::tcp::socket>;
template class stream_connection<asio::ip::tcp::socket, asio::io_context::executor_type>;
template class stream_connection<asio::ip::tcp::socket, asio::strand<asio::io_context::executor_type>>;
}  // namespace wscoro::detail
