# Every dependency comes from Debian 12 packages (see README): Boost 1.81 (Asio, Beast, JSON, URL).
find_package(Threads REQUIRED)
find_package(Boost 1.81 CONFIG REQUIRED COMPONENTS json url system)
