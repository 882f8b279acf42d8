#pragma once
// Recycled storage for received payloads, so that steady-state traffic allocates nothing.
//
// A received message is a std::string shared immutably (message's payload). Both the string (with
// its capacity) and the shared_ptr's control block come back to a small per-thread cache when the
// last reference goes, on whichever thread that happens: the next read on that thread reuses them.
// The cache is bounded (count and size of what it keeps), so it never holds much memory.
#include <memory>
#include <string>

namespace wscoro::detail {

/// An empty string, with the capacity of an earlier payload when the cache has one.
std::unique_ptr<std::string> take_payload_string();

/// Shares `s` as an immutable payload. Null for an empty string (which goes back to the cache).
std::shared_ptr<std::string const> share_payload(std::unique_ptr<std::string> s);

}  // namespace wscoro::detail
