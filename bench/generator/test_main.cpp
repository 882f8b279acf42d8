// The shared pieces' unit tests: doctest's main, and the name log.hpp puts before each line.
#include "log.hpp"

#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

namespace wscoro::bench {
char const* const program_name = "gen";
}  // namespace wscoro::bench
