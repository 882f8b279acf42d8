#include <wscoro/error.hpp>

namespace wscoro {
namespace {
class category final : public boost::system::error_category {
public:
    char const* name() const noexcept override { return "wscoro"; }
    std::string message(int ev) const override {
        switch (static_cast<error>(ev)) {
        case error::pong_timeout: return "no pong or data from the peer within pong_wait";
        case error::write_timeout: return "a write did not complete within write_wait";
        case error::send_queue_full: return "send queue full (slow consumer)";
        case error::not_connected: return "not connected";
        case error::invalid_url: return "invalid WebSocket URL";
        case error::invalid_config: return "invalid configuration";
        case error::upgrade_rejected: return "the server rejected the WebSocket upgrade";
        case error::handshake_timeout: return "the handshake did not complete within handshake_timeout";
        case error::server_stopping: return "the server is stopping";
        case error::callback_failed: return "a user callback threw an exception";
        case error::aborted: return "the connection was aborted";
        }
        return "unknown wscoro error";
    }
};
}  // namespace

boost::system::error_category const& error_category() noexcept {
    static category const instance;
    return instance;
}
}  // namespace wscoro
