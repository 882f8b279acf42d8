# Fault injection (issue 5): test/fault_test.cpp, a program of its own. Included from
# test/CMakeLists.txt.
add_executable(wscoro_fault_tests ${CMAKE_CURRENT_SOURCE_DIR}/main.cpp ${CMAKE_CURRENT_SOURCE_DIR}/fault_test.cpp)
target_include_directories(wscoro_fault_tests PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
target_link_libraries(wscoro_fault_tests PRIVATE wscoro::wscoro doctest::doctest wscoro_warnings)
if(TARGET wscoro_cli)  # the SIGKILL case runs the real `wscoro serve`
    target_compile_definitions(wscoro_fault_tests PRIVATE WSCORO_CLI_PATH="$<TARGET_FILE:wscoro_cli>")
    add_dependencies(wscoro_fault_tests wscoro_cli)
endif()
# Every case but the netns suite, which takes the loopback interface down: the listing that
# discovers the tests excludes it ($<SEMICOLON> makes the spec two arguments of that listing).
doctest_discover_tests(wscoro_fault_tests ADD_LABELS 1 PROPERTIES TIMEOUT 60
                       TEST_SPEC "*$<SEMICOLON>--test-suite-exclude=netns")
# The netns suite, only in a private network namespace of its own (root: unshare --net).
add_test(NAME fault.netns
         COMMAND sh ${CMAKE_CURRENT_LIST_DIR}/in_netns.sh $<TARGET_FILE:wscoro_fault_tests> --test-suite=netns)
set_tests_properties(fault.netns PROPERTIES LABELS "fault;netns" TIMEOUT 60)
