#pragma once
// The unit of exchange: an opcode (text or binary) and an immutable, shared payload.
// Copying a message copies a reference, so a broadcast builds its payload once for every receiver.
#include <boost/asio/buffer.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <boost/json/value_from.hpp>

#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <string_view>

namespace wscoro {

enum class message_kind : unsigned char { text, binary };

class message {
public:
    /// An empty text message.
    message() = default;
    message(message_kind kind, std::string payload);
    /// Adopts a payload that is already shared (null or empty: an empty message).
    message(message_kind kind, std::shared_ptr<std::string const> payload) noexcept
        : payload_(payload && !payload->empty() ? std::move(payload) : nullptr), kind_(kind) {}

    static message text(std::string payload) { return {message_kind::text, std::move(payload)}; }
    static message binary(std::string payload) { return {message_kind::binary, std::move(payload)}; }
    static message binary(std::span<std::byte const> bytes);
    /// A text message holding the serialized JSON of `v` (anything Boost.JSON's value_from accepts).
    template <class T> static message json(T const& v) {
        if constexpr (std::is_same_v<T, boost::json::value>)
            return text(boost::json::serialize(v));
        else
            return text(boost::json::serialize(boost::json::value_from(v)));
    }

    message_kind kind() const noexcept { return kind_; }
    bool is_text() const noexcept { return kind_ == message_kind::text; }
    bool is_binary() const noexcept { return kind_ == message_kind::binary; }

    std::string_view data() const noexcept { return payload_ ? std::string_view{*payload_} : std::string_view{}; }
    std::size_t size() const noexcept { return payload_ ? payload_->size() : 0; }
    bool empty() const noexcept { return size() == 0; }
    boost::asio::const_buffer buffer() const noexcept { return {data().data(), size()}; }

    friend bool operator==(message const& a, message const& b) noexcept {
        return a.kind_ == b.kind_ && a.data() == b.data();
    }

private:
    std::shared_ptr<std::string const> payload_;  // null for an empty payload: no allocation
    message_kind kind_ = message_kind::text;
};

}  // namespace wscoro
