#pragma once
// The upgrade's headers as a connection keeps them for its whole life: one block of bytes,
// unpacked into Beast's http::fields only if the application asks (connection::headers()).
// Why: http::fields allocates an element of ~85 bytes per header, so the six headers of a
// minimal upgrade cost 510 bytes in ten blocks (a browser's dozen, about 1 KB), on every idle
// connection; the block holds the same bytes in one allocation of about a third of that.
#include <wscoro/http.hpp>

#include <atomic>
#include <string>
#include <string_view>

namespace wscoro::detail {

class packed_headers {
public:
    packed_headers() = default;
    explicit packed_headers(http_headers const& fields);
    packed_headers(packed_headers const&) = delete;
    packed_headers& operator=(packed_headers const&) = delete;
    ~packed_headers();

    /// All the headers, in their order, as Beast fields: unpacked by the first call (from any
    /// thread; concurrent first calls agree on one result), then kept.
    http_headers const& fields() const;
    /// The value of the first header named `name` (any case); empty if there is none.
    std::string_view find(std::string_view name) const noexcept;
    /// Bytes held by the block (not counting the unpacked fields).
    std::size_t packed_size() const noexcept { return block_.size(); }

private:
    template <class Visit> void for_each(Visit visit) const;

    // Per header: the name's length and the value's (two bytes each, as Beast limits both to
    // 65535), then the name and the value.
    std::string block_;
    mutable std::atomic<http_headers const*> unpacked_{nullptr};
};

}  // namespace wscoro::detail
