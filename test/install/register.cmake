# The install check: `cmake --install` this build into a temporary prefix, then build and run
# test/install (a separate project using find_package(wscoro) and wscoro::wscoro) against it.
# Included from test/CMakeLists.txt.
add_test(NAME install_check
    COMMAND ${CMAKE_COMMAND} -E env CMAKE=${CMAKE_COMMAND}
            bash ${CMAKE_CURRENT_LIST_DIR}/check.sh ${wscoro_BINARY_DIR}
            "-G${CMAKE_GENERATOR}"
            "-DCMAKE_BUILD_TYPE=${CMAKE_BUILD_TYPE}"
            "-DCMAKE_CXX_COMPILER=${CMAKE_CXX_COMPILER}"
            "-DCMAKE_CXX_FLAGS=${CMAKE_CXX_FLAGS}"
            "-DCMAKE_EXE_LINKER_FLAGS=${CMAKE_EXE_LINKER_FLAGS}")
# Compiling a program against Asio and Beast takes a while, longer under the sanitizers.
set_tests_properties(install_check PROPERTIES LABELS install TIMEOUT 600)
