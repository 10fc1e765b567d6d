// How a checker stops a run: a failed check (CheckFailure, with the verdict it earns) or a
// documented policy weakness that showed up (HazardStop). Both are caught once, in the engine's
// step loop (engine.cc), which turns them into the RunResult.
#pragma once

#include <cstdint>
#include <string>
#include <utility>

#include "fault_injection/sim/engine.h"

namespace rcsim::sim {

struct CheckFailure {
  RunVerdict verdict;
  std::string message;
};

struct HazardStop {
  std::string message;
};

[[noreturn]] inline void fail(RunVerdict verdict, std::string message) {
  throw CheckFailure{verdict, std::move(message)};
}

// Where a check runs, for messages and policy promises, and the result its counters go to.
struct CheckContext {
  const SimConfig& cfg;
  const AttentionConfig& attn;
  RunResult& result;
  int64_t step = 0;
  int64_t layer = 0;
};

}  // namespace rcsim::sim
