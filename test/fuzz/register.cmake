# Each fuzz target once over its committed corpus, no mutation (-runs=0): a quick regression test of
# the inputs that matter, in the fuzz build's CTest. The time-bounded fuzzing is `cmake/run.sh fuzz`.
# test/CMakeLists.txt includes every area's register.cmake; the targets exist only in a fuzz build
# (WSCORO_BUILD_FUZZ), where test/fuzz/CMakeLists.txt includes this file after defining them.
if(NOT TARGET fuzz_parse_url)
    return()
endif()
foreach(target IN LISTS WSCORO_FUZZ_TARGETS)
    add_test(NAME fuzz.${target}
             COMMAND ${target} -runs=0 ${CMAKE_CURRENT_LIST_DIR}/corpus/${target})
    set_tests_properties(fuzz.${target} PROPERTIES LABELS fuzz TIMEOUT 120)
endforeach()
