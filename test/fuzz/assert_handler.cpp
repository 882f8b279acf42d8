// Failed BOOST_ASSERTs in the fuzz build (BOOST_ENABLE_ASSERT_HANDLER, see CMakeLists.txt): print
// and abort, as assert() would, except for one assertion of Boost 1.81 that is known to be wrong.
//
// basic_parser::parse_chunk_header asserts that at least 5 bytes are available when it resumes
// after a chunk header. The final chunk `0\r\n` followed by the start of its trailer (fewer than
// 5 bytes in all) is valid input: the code after the assertion correctly asks for more bytes.
// Fixed upstream (boostorg/beast#2861, Boost 1.86); builds with NDEBUG never check it.
#include <boost/assert.hpp>

#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace {
bool known_false(std::string_view expr, std::string_view file) {
    return expr == "n >= 5" && file.ends_with("boost/beast/http/impl/basic_parser.ipp");
}
}  // namespace

namespace boost {

void assertion_failed(char const* expr, char const* function, char const* file, long line) {
    if (known_false(expr, file)) return;
    std::fprintf(stderr, "%s:%ld: %s: Assertion `%s' failed.\n", file, line, function, expr);
    std::abort();
}

void assertion_failed_msg(char const* expr, char const* msg, char const* function, char const* file, long line) {
    std::fprintf(stderr, "%s:%ld: %s: Assertion `%s' failed: %s\n", file, line, function, expr, msg);
    std::abort();
}

}  // namespace boost
