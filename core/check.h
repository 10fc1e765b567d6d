// Two kinds of checks, kept apart on purpose:
//  - RCSIM_ASSERT: a programmer error inside rcsim. Always on (also in release builds); logs the
//    condition and location to stderr and aborts, so a test harness sees a crash (exit 127 in the CLI).
//  - RCSIM_REQUIRE: a caller handed us bad input. Throws rcsim::InvalidInput with a message that
//    names the argument; callers check every precondition before they write a single byte.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>

#include <fmt/format.h>

namespace rcsim {

class InvalidInput : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

[[noreturn]] inline void assertion_failed(const char* cond, const char* file, int line,
                                          const std::string& msg) {
  std::fprintf(stderr, "rcsim: assertion failed: %s at %s:%d %s\n", cond, file, line, msg.c_str());
  std::fflush(stderr);
  std::abort();
}

}  // namespace rcsim

#define RCSIM_ASSERT(cond, ...)                                                        \
  do {                                                                                 \
    if (!(cond)) [[unlikely]] {                                                        \
      ::rcsim::assertion_failed(#cond, __FILE__, __LINE__, ::fmt::format("" __VA_ARGS__)); \
    }                                                                                  \
  } while (0)

// An assertion that always fails, for a branch rcsim's own invariants rule out. Unlike
// RCSIM_ASSERT(false, ...) the compiler sees that it does not return at every optimisation level
// (-O0 included, where the asan-ubsan preset's -Werror=return-type would otherwise fire).
#define RCSIM_FAIL(...) \
  ::rcsim::assertion_failed("(always)", __FILE__, __LINE__, ::fmt::format("" __VA_ARGS__))

#define RCSIM_REQUIRE(cond, ...)                                       \
  do {                                                                 \
    if (!(cond)) [[unlikely]] {                                        \
      throw ::rcsim::InvalidInput(::fmt::format(__VA_ARGS__));         \
    }                                                                  \
  } while (0)
