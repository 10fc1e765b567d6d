# One helper registers every test with CTest, so no test binary can be left unregistered.
#   rcsim_add_test(NAME n SOURCES a.cc ... LIBS ... LABELS unit|property|sim|fault|gpu|negative|slow
#                  [TIMEOUT s] [WILL_FAIL] [ARGS ...])
set(RCSIM_TEST_LABELS unit property sim fault gpu negative slow)
function(rcsim_add_test)
  cmake_parse_arguments(T "WILL_FAIL" "NAME;TIMEOUT" "SOURCES;LIBS;LABELS;ARGS" ${ARGN})
  foreach(label IN LISTS T_LABELS)
    if(NOT label IN_LIST RCSIM_TEST_LABELS)
      message(FATAL_ERROR "rcsim_add_test(${T_NAME}): unknown label '${label}'")
    endif()
  endforeach()
  add_executable(${T_NAME} ${T_SOURCES})
  # rcsim_test_support (test_support/): the seed, random-input and comparison helpers every
  # test folder shares.
  target_link_libraries(${T_NAME} PRIVATE ${T_LIBS} rcsim_test_support GTest::gtest GTest::gmock
                        GTest::gtest_main rcsim_warnings)
  add_test(NAME ${T_NAME} COMMAND ${T_NAME} ${T_ARGS})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 300)
  endif()
  set_tests_properties(${T_NAME} PROPERTIES LABELS "${T_LABELS}" TIMEOUT ${T_TIMEOUT})
  if(T_WILL_FAIL)
    set_tests_properties(${T_NAME} PROPERTIES WILL_FAIL TRUE)
  endif()
endfunction()
