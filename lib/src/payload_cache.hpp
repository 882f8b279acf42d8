#pragma once
// Recycled storage for received payloads, so that steady-state traffic allocates nothing.
//
// A received message is a std::string shared immutably (message's payload). Both the string (with
// its capacity) and the shared_ptr's control block come back to a small per-thread cache when the
// last reference goes, on whichever thread that happens: the next read on that thread reuses them.
// The cache is bounded (count and size of what it keeps), so it never holds much memory.
#include <cstddef>
#include <memory>
#include <string>

namespace wscoro::detail {

/// An empty string for the wait for a message: a cached one (the most recent) of at most
/// `max_capacity` bytes of capacity, else a new one (no heap block until it grows).
std::unique_ptr<std::string> take_payload_string(std::size_t max_capacity);

/// The cached string with the least capacity of at least `bytes`; null if none has that much.
std::unique_ptr<std::string> take_payload_string_for(std::size_t bytes);

/// Returns an unshared string to the cache (or frees it).
void give_back_payload_string(std::unique_ptr<std::string> s);

/// Shares `s` as an immutable payload. Null for an empty string (which goes back to the cache).
std::shared_ptr<std::string const> share_payload(std::unique_ptr<std::string> s);

}  // namespace wscoro::detail
