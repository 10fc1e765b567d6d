// The device half of the exact-quotient proof (exact_quotient_check.hip): divide_prepared run on
// the GPU, as the fused kernel runs it, against the GPU's true division. Host-compiler clean.
#pragma once

#include <array>
#include <cstdint>

namespace rcsim::gpu {

struct ExactQuotientCounts {
  int64_t significand_pairs = 0;  // all 1024 x 2^23 (activation, divisor) significand pairs
  int64_t value_pairs = 0;        // every bf16 and fp16 value x divisors across [2^-60, 2^60]
  int64_t corrected = 0;          // pairs where v * RN(1/d) alone is wrong
  int64_t disagreements = 0;      // pairs whose verdict is not kAgrees
  uint32_t first_bad_v_bits = 0;  // the lowest-indexed disagreeing pair, when there is one
  uint32_t first_bad_d_bits = 0;
};

// Runs both sweeps; the value sweep divides by divisor_significands[k] * 2^e (each in [1, 2)).
ExactQuotientCounts check_exact_quotient_on_device(const std::array<float, 64>& divisor_significands);

}  // namespace rcsim::gpu
