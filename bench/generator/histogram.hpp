#pragma once
// A log-linear latency histogram in the manner of HdrHistogram: values below 256 ns have a bucket
// each, and every power of two above is split into 128 buckets, so a reported percentile is within
// 0.4% of the true sample (midpoint of a bucket at most 1/256 of its value away). Recording is an
// index computation and an increment: no allocation, no sorting, fixed 60 KiB however long the run.
#include <array>
#include <bit>
#include <chrono>
#include <cstddef>
#include <cstdint>

namespace wscoro::bench {

class histogram {
public:
    void record(std::chrono::nanoseconds d) noexcept {
        auto const ns = d.count();
        ++counts_[index_of(ns > 0 ? static_cast<std::uint64_t>(ns) : 0)];
        ++total_;
    }

    std::uint64_t count() const noexcept { return total_; }

    /// The value below which a fraction `q` (0..1) of the samples lie, in microseconds; 0 if empty.
    double percentile_us(double q) const noexcept {
        if (total_ == 0) return 0;
        // The rank of the sample, 1-based: the smallest rank r with r >= q * total.
        auto rank = static_cast<std::uint64_t>(q * static_cast<double>(total_));
        if (static_cast<double>(rank) < q * static_cast<double>(total_)) ++rank;
        if (rank == 0) rank = 1;
        std::uint64_t seen = 0;
        for (std::size_t i = 0; i < counts_.size(); ++i) {
            seen += counts_[i];
            if (seen >= rank) return midpoint_ns(i) / 1000.0;
        }
        return midpoint_ns(counts_.size() - 1) / 1000.0;
    }

private:
    static constexpr unsigned sub_bits = 7;                      // 128 buckets per power of two
    static constexpr std::uint64_t linear_end = 2u << sub_bits;  // [0, 256): one bucket per ns
    static constexpr std::size_t bucket_count = linear_end + (64 - sub_bits - 1) * (1u << sub_bits);

    static std::size_t index_of(std::uint64_t v) noexcept {
        if (v < linear_end) return static_cast<std::size_t>(v);
        // v = mantissa << shift with mantissa in [128, 256): the top 8 bits of v.
        unsigned const shift = static_cast<unsigned>(std::bit_width(v)) - sub_bits - 1;
        auto const mantissa = v >> shift;
        return static_cast<std::size_t>(linear_end + (shift - 1) * (1u << sub_bits) +
                                        (mantissa - (1u << sub_bits)));
    }

    static double midpoint_ns(std::size_t i) noexcept {
        if (i < linear_end) return static_cast<double>(i);
        auto const above = i - linear_end;
        unsigned const shift = static_cast<unsigned>(above >> sub_bits) + 1;
        auto const mantissa = (above & ((1u << sub_bits) - 1)) + (1u << sub_bits);
        auto const low = static_cast<double>(std::uint64_t{mantissa} << shift);
        return low + static_cast<double>(std::uint64_t{1} << shift) / 2;
    }

    std::array<std::uint64_t, bucket_count> counts_{};
    std::uint64_t total_ = 0;
};

}  // namespace wscoro::bench
