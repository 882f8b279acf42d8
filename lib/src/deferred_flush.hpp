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

    // How many passes behind the ready work the job waits before it writes. A publisher that read a
    // burst of messages broadcasts them a few handler hops apart, and each pass lets it get about
    // one hop further. So: when passes brought more deliveries, wait twice as many next time; when
    // none did, half as many. A lone broadcast pays min_passes; a stream of them leaves in
    // gathered writes.
    static constexpr unsigned min_passes = 4;
    static constexpr unsigned max_passes = 64;

    std::vector<connection_ptr> dirty_;
    std::vector<connection_ptr> flushing_;  // swapped with dirty_: both keep their capacity
    asio::any_io_executor io_;
    std::size_t added_ = 0;   // connections added since the last pass
    unsigned passes_ = 0;     // of this burst
    unsigned fruitful_ = 0;   // passes of this burst that brought deliveries
    unsigned target_ = min_passes;
    bool posted_ = false;
};

}  // namespace wscoro::detail
