// The comparison behind the exact-quotient tests (kernels/common/exact_quotient.h), one (v, d)
// pair at a time, shared by the CPU test and the GPU check so both judge by the same rule: the
// prepared quotient against the true division v / d, as fp32 bits where the contract says it is
// RN(v / d), and as the fp8 codes of both formats for every v the contract covers.
#pragma once

#include <cmath>
#include <cstdint>

#include "kernels/common/exact_quotient.h"
#include "kernels/common/host_device.h"
#include "kernels/common/numeric.h"

namespace rcsim::qk_math::testing {

enum QuotientVerdict : int {
  kAgrees = 0,
  kQuotientBitsDiffer = 1,  // fp32 bits differ where the quotient must be exact
  kFp8CodeDiffers = 2,      // an fp8 code differs
};

RCSIM_HD int quotient_verdict(float v, float d) {
  const PreparedDivisor p = prepare_divisor(d);
  const float q = divide_prepared(p, v);
  if (!p.by_reciprocal) {
    return numeric::float_bits(q) == numeric::float_bits(v / d) ? kAgrees : kQuotientBitsDiffer;
  }
  // The reference is the CPU's division, where a NaN dividend comes back with its own sign (a GPU
  // division may return a canonical NaN instead; only the sign reaches an fp8 code).
  const bool v_nan = (numeric::float_bits(v) & 0x7FFFFFFFu) > 0x7F800000u;
  const float t = v_nan ? v : v / d;
  if (!v_nan && !(fabsf(v) <= 0x1p64f * d)) return kAgrees;  // outside the contract
  const float at = fabsf(t);
  if (at >= 0x1p-40f && at <= 0x1p64f && numeric::float_bits(q) != numeric::float_bits(t)) {
    return kQuotientBitsDiffer;
  }
  const bool fn_same = numeric::float_to_fp8_bits(q, numeric::Fp8Format::kE4M3FN) ==
                       numeric::float_to_fp8_bits(t, numeric::Fp8Format::kE4M3FN);
  const bool fnuz_same = numeric::float_to_fp8_bits(q, numeric::Fp8Format::kE4M3FNUZ) ==
                         numeric::float_to_fp8_bits(t, numeric::Fp8Format::kE4M3FNUZ);
  return fn_same && fnuz_same ? kAgrees : kFp8CodeDiffers;
}

// True iff the first step alone (v * RN(1/d)) would have been wrong: the pairs where the
// correction is what makes the quotient exact. A sample with none of these proves nothing.
RCSIM_HD bool correction_needed(float v, float d) {
  const float t = v / d;
  return numeric::float_bits(v * (1.0f / d)) != numeric::float_bits(t);
}

// The 11-bit significands of bf16 and fp16 values, as floats in [1, 2): index 0..1023.
RCSIM_HD float activation_significand(uint32_t i) {
  return numeric::bits_float(0x3F800000u | ((i & 1023u) << 13));
}
// Every fp32 significand, as a float in [1, 2): index 0..2^23-1.
RCSIM_HD float divisor_significand(uint32_t j) {
  return numeric::bits_float(0x3F800000u | (j & 0x7FFFFFu));
}

}  // namespace rcsim::qk_math::testing
