# Every dependency comes from Debian's packages through find_package (no vendoring, no downloads).
find_package(Threads REQUIRED)
find_package(fmt REQUIRED)
find_package(spdlog REQUIRED)
find_package(CLI11 REQUIRED)
find_package(nlohmann_json REQUIRED)
find_package(PkgConfig REQUIRED)
pkg_check_modules(XXHASH REQUIRED IMPORTED_TARGET libxxhash)
# GoogleMock is needed by fakes/ even when the test suites are not built (fuzz preset).
find_package(GTest REQUIRED)
if(RCSIM_BUILD_TESTS)
  find_package(rapidcheck REQUIRED)
endif()
