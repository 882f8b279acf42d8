#pragma once
// The command line of both load generators, wscoro-bench and wscoro-bench-epoll: defined once, so
// that bench/run.py can drive either with the same arguments and both refuse bad ones alike.
// Nothing of wscoro in here: wscoro-bench-epoll links only Boost and CLI11.
#include "options.hpp"

#include <cstddef>
#include <optional>
#include <string>

namespace wscoro::bench {

/// What sets one generator's command line apart from the other's.
struct command_line {
    char const* description;    ///< the first line of --help
    char const* scenario_help;  ///< --scenario's help text
    char const* scenarios;      ///< the scenarios it runs, in the error for an unknown one
    /// What only this generator checks, before the checks both make; empty when usable.
    std::string (*check)(options const&);
};

/// Fills `o` from the command line. Returns the exit status to end with now, its reason already
/// printed: 0 after --help, 2 for a bad command line. Nothing when the run can start.
std::optional<int> parse_command_line(int argc, char** argv, command_line const& cl, options& o);

/// Raises the open-files limit for `connections` descriptors and `reserve` others; false, said on
/// stderr, when the hard limit is too low (the caller exits 2).
bool fit_open_files_limit(std::size_t connections, std::size_t reserve);

}  // namespace wscoro::bench
