# wscoro_warnings: an INTERFACE target that our own targets link privately, so that
# consumers of the installed library never inherit our warning flags.
add_library(wscoro_warnings INTERFACE)
target_compile_options(wscoro_warnings INTERFACE
    -Wall -Wextra -Wpedantic
    # GCC 12 reports Asio's coroutine frame allocator falsely (operator new/delete pairs).
    $<$<CXX_COMPILER_ID:GNU>:-Wno-mismatched-new-delete>
    # GCC 12 at -O2/-O3 reports std::string concatenation falsely (GCC bug 105329).
    $<$<CXX_COMPILER_ID:GNU>:-Wno-restrict>
    $<$<BOOL:${WSCORO_WERROR}>:-Werror>)
