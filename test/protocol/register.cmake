# RFC 6455 conformance (issue 5), included by test/CMakeLists.txt.
#  - wscoro_protocol_tests: raw frames written by the tests against the server and the client,
#    read back through a strict frame parser (test/support/frame_parser.hpp).
#  - protocol.peer.*: Python's `websockets` (Debian's python3-websockets, under /usr/bin/python3)
#    as an independent strict peer of `wscoro serve` and `wscoro client`.

add_executable(wscoro_protocol_tests
    ${CMAKE_CURRENT_LIST_DIR}/../main.cpp
    ${CMAKE_CURRENT_LIST_DIR}/../protocol_test.cpp
    ${CMAKE_CURRENT_LIST_DIR}/client_protocol_test.cpp
    ${CMAKE_CURRENT_LIST_DIR}/frame_parser_test.cpp)
target_include_directories(wscoro_protocol_tests PRIVATE ${CMAKE_CURRENT_LIST_DIR}/..)
target_link_libraries(wscoro_protocol_tests PRIVATE wscoro::wscoro doctest::doctest wscoro_warnings)
doctest_discover_tests(wscoro_protocol_tests ADD_LABELS 1 PROPERTIES TIMEOUT 60)

if(TARGET wscoro_cli)
    # Debian's interpreter on purpose: it is the one with python3-websockets (a pyenv `python3`
    # earlier on PATH has no such module). peer.py fails, never skips, when the import fails.
    set(WSCORO_SYSTEM_PYTHON /usr/bin/python3)
    foreach(case server_round_trips server_fragments_and_pings server_close_codes client_echo
                 client_fragments_and_pings)
        add_test(NAME protocol.peer.${case}
                 COMMAND ${WSCORO_SYSTEM_PYTHON} -W error::RuntimeWarning ${CMAKE_CURRENT_LIST_DIR}/peer.py
                         --wscoro $<TARGET_FILE:wscoro_cli> PeerTest.test_${case})
        set_tests_properties(protocol.peer.${case} PROPERTIES LABELS protocol TIMEOUT 60)
    endforeach()
endif()
