#include <wscoro/message.hpp>

namespace wscoro {

message::message(message_kind kind, std::string payload)
    : payload_(payload.empty() ? nullptr : std::make_shared<std::string const>(std::move(payload))),
      kind_(kind) {}

message message::binary(std::span<std::byte const> bytes) {
    return binary(std::string{reinterpret_cast<char const*>(bytes.data()), bytes.size()});
}

}  // namespace wscoro
