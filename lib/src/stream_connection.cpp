#include "stream_connection.hpp"

namespace wscoro::detail {
// Three instantiations per transport (see LoopExecutor and concrete_socket.hpp), compiled once here.
template class stream_connection<asio::ip::tcp::socket>;
template class stream_connection<tcp_socket_on<io_executor>>;
template class stream_connection<tcp_socket_on<io_strand>>;
}  // namespace wscoro::detail
