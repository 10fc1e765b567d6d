// Goal: divide(n, make_fast_divisor(d)) (kernels/common/fast_divisor.h) gives n / d and n % d for
// every admitted pair, and the prepared magic fits its 32 bits for every admitted divisor.
// Method: on the CPU, sized for CI: every dividend below 2^16 against every divisor up to 1024,
// each divisor's multiples +-1 up to the dividend limit for the page sizes and a sample of others,
// and seeded random pairs across the whole admitted range. gpu_backend_test proves the page
// sizes' case on the device for every slot (FastDivisorMatchesTheDivisionOnEverySlot).
#include <cstdint>

#include <gtest/gtest.h>

#include "core/prng.h"
#include "kernels/common/fast_divisor.h"
#include "test_support/seed.h"

namespace rcsim {
namespace {

uint64_t test_seed() {
  static const uint64_t seed = test_support::seed_from_env(0x2545f4914f6cdd1dull);
  return seed;
}

// Success when divide() gives n / d and n % d; otherwise a message naming both results.
testing::AssertionResult divides(uint32_t n, uint32_t d) {
  const QuotRem32 got = divide(n, make_fast_divisor(d));
  if (got.quot == n / d && got.rem == n % d) return testing::AssertionSuccess();
  return testing::AssertionFailure() << n << " / " << d << ": got " << got.quot << " rem " << got.rem
                                     << ", want " << n / d << " rem " << n % d;
}

TEST(FastDivisor, EverySmallDividendAndDivisor) {
  for (uint32_t d = 1; d <= 1024; ++d) {
    for (uint32_t n = 0; n < (uint32_t{1} << 16); ++n) ASSERT_TRUE(divides(n, d));
  }
}

// The quotient changes at multiples of d: check both sides of each up to the dividend limit.
TEST(FastDivisor, BothSidesOfEveryMultiple) {
  Prng rng(test_seed());
  for (int k = 0; k < 64; ++k) {
    // The page sizes first (core/limits.h), then random divisors of every magnitude.
    const uint32_t d = k < 3 ? uint32_t{16} << k
                             : static_cast<uint32_t>(1 + rng.below(uint64_t{1} << (1 + rng.below(31))));
    const uint32_t step = d >= 4096 ? d : d * (4096 / d);  // at most ~2^19 multiples per divisor
    for (uint64_t m = step; m < kFastDividendEnd; m += step) {
      const auto n = static_cast<uint32_t>(m);
      ASSERT_TRUE(divides(n - 1, d)) << test_support::repro_line(test_seed());
      ASSERT_TRUE(divides(n, d)) << test_support::repro_line(test_seed());
      if (n + 1 < kFastDividendEnd) {
        ASSERT_TRUE(divides(n + 1, d)) << test_support::repro_line(test_seed());
      }
    }
    ASSERT_TRUE(divides(kFastDividendEnd - 1, d)) << test_support::repro_line(test_seed());
  }
}

TEST(FastDivisor, RandomPairsAcrossTheAdmittedRange) {
  Prng rng(test_seed());
  for (int i = 0; i < 4'000'000; ++i) {
    const auto d = static_cast<uint32_t>(1 + rng.below(uint64_t{kFastDivisorMax}));
    const auto small_d = static_cast<uint32_t>(1 + rng.below(4096));
    const auto n = static_cast<uint32_t>(rng.below(uint64_t{kFastDividendEnd}));
    ASSERT_TRUE(divides(n, d)) << test_support::repro_line(test_seed());
    ASSERT_TRUE(divides(n, small_d)) << test_support::repro_line(test_seed());
  }
}

TEST(FastDivisor, TheLargestDivisorsAndPowersOfTwo) {
  for (uint32_t l = 0; l <= 31; ++l) {
    const uint32_t d = uint32_t{1} << l;
    EXPECT_EQ(make_fast_divisor(d).shift, l);
    for (const uint32_t n : {0u, 1u, d - 1, d, kFastDividendEnd - 1}) {
      if (n < kFastDividendEnd) {
        ASSERT_TRUE(divides(n, d));
      }
    }
  }
  for (uint32_t d = kFastDivisorMax - 4096; d <= kFastDivisorMax - 1; ++d) {
    ASSERT_TRUE(divides(kFastDividendEnd - 1, d));
    ASSERT_TRUE(divides(d - 1, d));
    ASSERT_TRUE(divides(d, d));
  }
}

TEST(FastDivisor, AdmitsExactlyItsRange) {
  EXPECT_FALSE(fast_divisor_admits(0));
  EXPECT_FALSE(fast_divisor_admits(-16));
  EXPECT_TRUE(fast_divisor_admits(1));
  EXPECT_TRUE(fast_divisor_admits(int64_t{kFastDivisorMax}));
  EXPECT_FALSE(fast_divisor_admits(int64_t{kFastDivisorMax} + 1));
}

}  // namespace
}  // namespace rcsim
