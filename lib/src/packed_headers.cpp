#include <wscoro/detail/packed_headers.hpp>

#include <boost/beast/core/string.hpp>

#include <cstdint>
#include <cstring>
#include <memory>

namespace wscoro::detail {

namespace {
using length_type = std::uint16_t;  // http::fields::off_t: Beast refuses longer names and values

void append_length(std::string& out, std::size_t n) {
    auto const v = static_cast<length_type>(n);
    char bytes[sizeof v];
    std::memcpy(bytes, &v, sizeof v);
    out.append(bytes, sizeof v);
}

length_type read_length(char const* p) noexcept {
    length_type v;
    std::memcpy(&v, p, sizeof v);
    return v;
}
}  // namespace

packed_headers::packed_headers(http_headers const& fields) {
    std::size_t bytes = 0;
    for (auto const& f : fields) bytes += 2 * sizeof(length_type) + f.name_string().size() + f.value().size();
    block_.reserve(bytes);  // one allocation, exactly sized
    for (auto const& f : fields) {
        append_length(block_, f.name_string().size());
        append_length(block_, f.value().size());
        block_.append(f.name_string().data(), f.name_string().size());
        block_.append(f.value().data(), f.value().size());
    }
}

packed_headers::~packed_headers() { delete unpacked_.load(std::memory_order_acquire); }

template <class Visit> void packed_headers::for_each(Visit visit) const {
    char const* p = block_.data();
    char const* const end = p + block_.size();
    while (p != end) {
        auto const name_size = read_length(p);
        auto const value_size = read_length(p + sizeof(length_type));
        p += 2 * sizeof(length_type);
        std::string_view const name{p, name_size};
        std::string_view const value{p + name_size, value_size};
        p += name_size + value_size;
        if (!visit(name, value)) return;
    }
}

http_headers const& packed_headers::fields() const {
    if (auto const* done = unpacked_.load(std::memory_order_acquire)) return *done;
    auto fresh = std::make_unique<http_headers>();
    for_each([&](std::string_view name, std::string_view value) {
        fresh->insert(name, value);  // insert, not set: repeated headers stay, in order
        return true;
    });
    // The first to finish publishes its copy; a concurrent caller's goes away, and it uses that one.
    http_headers const* expected = nullptr;
    if (unpacked_.compare_exchange_strong(expected, fresh.get(), std::memory_order_acq_rel)) return *fresh.release();
    return *expected;
}

std::string_view packed_headers::find(std::string_view name) const noexcept {
    std::string_view found;
    for_each([&](std::string_view n, std::string_view value) {
        if (!boost::beast::iequals(n, name)) return true;
        found = value;
        return false;
    });
    return found;
}

}  // namespace wscoro::detail
