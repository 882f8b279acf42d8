#pragma once
// deferred_flush: on an io_context that one thread runs, broadcast deliveries are appended straight
// to each receiver's corked output, and one job per io_context writes them all out once the burst
// is over, instead of a strand hop, a write-loop wake-up and a few yields per receiver and message.
//
// Why it is safe: with one thread, code running on it is the only code touching any connection,
// so another connection's output may be appended to (under the same ordering rule as its own
// replies: nothing queued ahead of it, see connection::enqueue). "One thread" is what the
// io_context's concurrency hint 1 says (BOOST_ASIO_CONCURRENCY_HINT_1; the server facade with
// threads = 1 constructs it so). Any other io_context keeps the per-connection strands.
#include <wscoro/connection.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/execution_context.hpp>

#include <vector>

namespace wscoro::detail {

/// Whether `io` (an io_context's executor) belongs to an io_context made for a single thread.
bool single_threaded(asio::any_io_executor const& io);

class deferred_flush final : public asio::execution_context::service {
public:
    static asio::execution_context::id id;

    explicit deferred_flush(asio::execution_context& context);

    /// `c` has output waiting for the end of the burst. Call on the io_context's thread, once until
    /// c's flush_deferred() runs.
    void add(connection_ptr c, asio::any_io_executor const& io);

private:
    void shutdown() override;
    void run();

    // A burst is over when the job's passes behind the ready work found nothing new twice in a
    // row (the next message of a publisher takes two handler hops to arrive), or after max_passes.
    static constexpr unsigned max_passes = 16;
    static constexpr unsigned quiet_passes = 2;

    std::vector<connection_ptr> dirty_;
    std::vector<connection_ptr> flushing_;  // swapped with dirty_: both keep their capacity
    asio::any_io_executor io_;
    std::size_t added_ = 0;  // connections added since the last pass
    unsigned passes_ = 0;
    unsigned quiet_ = 0;
    bool posted_ = false;
};

}  // namespace wscoro::detail
