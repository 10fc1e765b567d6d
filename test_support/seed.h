// One seed drives every random choice of a test binary: RCSIM_SEED (decimal or 0x hex) when set,
// else the binary's own default. It is printed once, with the line that replays the run, before
// any case uses it; a failure message carries repro_line() so the case can be replayed alone.
#pragma once

#include <cstdint>
#include <string>

namespace rcsim::test_support {

// Reads RCSIM_SEED (or takes `default_seed`) and prints "rcsim test seed: N (repro: ...)".
// Call it once per binary (from a function-local static) and keep the value.
uint64_t seed_from_env(uint64_t default_seed);

// "repro: RCSIM_SEED=N --gtest_filter=Suite.Test" for the test that is running now.
std::string repro_line(uint64_t seed);

}  // namespace rcsim::test_support
