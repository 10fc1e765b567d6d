// Goal: divide_prepared (kernels/common/exact_quotient.h) gives the true division's fp32 bits
// wherever its contract says so and the true division's fp8 codes for every value the kernels
// feed it, and divisors outside the admitted range divide truly.
// Method: the same per-pair rule as the GPU check (exact_quotient_cases.h), on a sample sized for
// CI: every 11-bit activation significand against seeded random divisor significands, shifted by
// random exponents across the admitted range; every bf16 and fp16 bit pattern (zeros, subnormals,
// NaNs and infinities included) against edge and realistic divisors (amax / 448 and / 240 for
// bf16 amax values, the 1e-8 amax floor). The GPU check covers all 2^23 divisor significands.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <vector>

#include <gtest/gtest.h>

#include "core/prng.h"
#include "kernels/common/exact_quotient.h"
#include "kernels/common/numeric.h"
#include "kernels/common/tests/exact_quotient_cases.h"
#include "test_support/seed.h"

namespace rcsim::qk_math {
namespace {

using testing::correction_needed;
using testing::kAgrees;
using testing::quotient_verdict;

uint64_t test_seed() {
  static const uint64_t seed = test_support::seed_from_env(0x9e3779b97f4a7c15ull);
  return seed;
}

TEST(ExactQuotient, SignificandPairsAcrossExponentsMatchTheTrueDivision) {
  // rcsim's own generator: std distributions differ between standard libraries (core/prng.h).
  Prng rng(test_seed());
  const auto significand = [&] { return static_cast<uint32_t>(rng.below(uint64_t{1} << 23)); };
  const auto exponent = [&] { return static_cast<int>(rng.below(81)) - 40; };  // -40..40
  int64_t pairs = 0, corrected = 0;
  for (uint32_t i = 0; i < 1024; ++i) {
    const float a = testing::activation_significand(i);
    for (int k = 0; k < 2048; ++k) {
      const float d0 = testing::divisor_significand(k == 0 ? 0 : significand());
      // Unscaled, then v and d shifted apart by random exponents (d stays admitted).
      for (int s = 0; s < 2; ++s) {
        const float v = s == 0 ? a : std::ldexp(a, exponent());
        const float d = s == 0 ? d0 : std::ldexp(d0, exponent());
        const float sv = (k & 1) ? -v : v;
        ASSERT_EQ(quotient_verdict(sv, d), kAgrees)
            << "v=" << sv << " d=" << d << " " << test_support::repro_line(test_seed());
        corrected += correction_needed(sv, d) ? 1 : 0;
        ++pairs;
      }
    }
  }
  std::printf("%lld pairs, %lld needed the correction step\n", static_cast<long long>(pairs),
              static_cast<long long>(corrected));
  EXPECT_GT(corrected, pairs / 100) << "the sample never exercises the correction step";
}

// Divisors a head can have: amax / fp8_max for positive finite bf16 amax (one in 64 of them), the
// floor's 1e-8 / fp8_max, and the admitted range's edges and their neighbours.
std::vector<float> kernel_and_edge_divisors() {
  std::vector<float> d;
  for (uint32_t b = 0x0001; b < 0x7F80; b += 64) {
    const float amax = numeric::bf16_bits_to_float(static_cast<uint16_t>(b));
    d.push_back(amax / 448.0f);
    d.push_back(amax / 240.0f);
  }
  d.push_back(1e-8f / 448.0f);
  d.push_back(1e-8f / 240.0f);
  for (float e : {kReciprocalDivisorMin, kReciprocalDivisorMax}) {
    d.push_back(e);
    d.push_back(std::nextafter(e, 0.0f));
    d.push_back(std::nextafter(e, INFINITY));
  }
  d.push_back(1.0f);
  return d;
}

TEST(ExactQuotient, EveryBf16AndFp16ValueEncodesLikeTheTrueDivision) {
  const std::vector<float> divisors = kernel_and_edge_divisors();
  int64_t checked = 0;
  for (int fmt = 0; fmt < 2; ++fmt) {
    for (uint32_t bits = 0; bits < 65536; ++bits) {
      const auto h = static_cast<uint16_t>(bits);
      const float v = fmt == 0 ? numeric::bf16_bits_to_float(h) : numeric::fp16_bits_to_float(h);
      for (float d : divisors) {
        ASSERT_EQ(quotient_verdict(v, d), kAgrees)
            << (fmt == 0 ? "bf16" : "fp16") << " bits=0x" << std::hex << bits << std::dec
            << " v=" << v << " d=" << d;
        ++checked;
      }
    }
  }
  EXPECT_EQ(checked, int64_t{2} * 65536 * static_cast<int64_t>(divisors.size()));
}

TEST(ExactQuotient, DivisorsOutsideTheAdmittedRangeDivideTruly) {
  const float outside[] = {0.0f, -0.0f, 1e-40f, 0x1p-61f, 0x1p61f, 3e38f, INFINITY, NAN, -1.0f};
  for (float d : outside) {
    EXPECT_FALSE(prepare_divisor(d).by_reciprocal) << d;
    for (float v : {1.5f, -3.25f, 0.0f, 1e-30f, INFINITY, NAN}) {
      EXPECT_EQ(quotient_verdict(v, d), kAgrees) << "v=" << v << " d=" << d;
    }
  }
  EXPECT_TRUE(prepare_divisor(kReciprocalDivisorMin).by_reciprocal);
  EXPECT_TRUE(prepare_divisor(kReciprocalDivisorMax).by_reciprocal);
}

}  // namespace
}  // namespace rcsim::qk_math
