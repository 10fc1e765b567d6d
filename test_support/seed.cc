// One seed per test binary (see seed.h).
#include "test_support/seed.h"

#include <cstdio>
#include <cstdlib>

#include <fmt/format.h>
#include <gtest/gtest.h>

namespace rcsim::test_support {

uint64_t seed_from_env(uint64_t default_seed) {
  const char* env = std::getenv("RCSIM_SEED");
  const uint64_t seed = env != nullptr ? std::strtoull(env, nullptr, 0) : default_seed;
  std::printf("rcsim test seed: %llu (repro: RCSIM_SEED=%llu <test binary> --gtest_filter=...)\n",
              static_cast<unsigned long long>(seed), static_cast<unsigned long long>(seed));
  std::fflush(stdout);
  return seed;
}

std::string repro_line(uint64_t seed) {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  return fmt::format("repro: RCSIM_SEED={} --gtest_filter={}.{}", seed,
                     info != nullptr ? info->test_suite_name() : "?",
                     info != nullptr ? info->name() : "?");
}

}  // namespace rcsim::test_support
