// v / d for many v and one d, bit for bit the IEEE quotient, from one reciprocal of d.
//
// Why: the fused kernel's fp8 store divides every element of a (token, head) by the head's scale
// (AITER divides; v * (1/d) is not the same bits, so the reference divides too). A true division
// on the GPU costs each element a reciprocal on the special-function unit, a range check and a
// branch; here the reciprocal is taken once per head and each element costs a multiply and two
// fused multiply-adds (Markstein's correction):
//   q0 = RN(v * r), with r = RN(1/d);   e = v - q0 * d (exact, one fma);   q = RN(q0 + e * r).
// When no intermediate leaves the normal range, q is RN(v / d) (Markstein, "Computation of
// elementary functions on the IBM RISC System/6000", 1990). The code does not rely on the theorem:
// tests compare it with the true division over every pair of 11-bit significands the kernels feed
// it (bf16 and fp16 values) and every 23-bit divisor significand on the GPU, a sample of them on
// the CPU, and every bf16 and fp16 value against divisors across the whole admitted range
// (kernels/common/tests/exact_quotient_test.cc, kernels/hip/tests/exact_quotient_check.hip).
//
// Admitted divisors d: [2^-60, 2^60]. For finite v with 2^-40 <= |v / d| <= 2^64, r, q0 and q
// are normal and e is exact, so q is RN(v / d). For |v / d| < 2^-40, |q| < 2^-39 and has v's sign
// (copysign), and every fp8 format encodes both as a zero of that sign. A NaN v gives a NaN of v's
// sign, as the true division does on the CPU (an fp8 NaN code depends only on the sign). So fp8
// codes agree for every v with |v| <= 2^64 d or NaN: the kernels only pass |v| <= amax, and
// d = amax / fp8_max. Other divisors (zero, subnormal, huge, inf, NaN) divide truly.
#pragma once

#include <bit>
#include <cmath>
#include <cstdint>

#include "kernels/common/host_device.h"
#include "kernels/common/numeric.h"

namespace rcsim::qk_math {

inline constexpr float kReciprocalDivisorMin = 0x1p-60f;
inline constexpr float kReciprocalDivisorMax = 0x1p60f;
// The admitted range as bits: d is admitted iff float_bits(d) - kReciprocalDivisorMinBits <=
// kReciprocalDivisorSpan, one unsigned compare (a sign, NaN or infinity falls outside).
inline constexpr uint32_t kReciprocalDivisorMinBits = std::bit_cast<uint32_t>(kReciprocalDivisorMin);
inline constexpr uint32_t kReciprocalDivisorSpan =
    std::bit_cast<uint32_t>(kReciprocalDivisorMax) - kReciprocalDivisorMinBits;

struct PreparedDivisor {
  float divisor;
  float reciprocal;    // RN(1 / divisor) when by_reciprocal
  bool by_reciprocal;  // divisor in [kReciprocalDivisorMin, kReciprocalDivisorMax]
};

// prepare_divisor with the reciprocal of an admitted divisor taken by `reciprocal(d)`, which must
// return RN(1 / d) on the admitted range: the GPU kernels pass a sequence without the division's
// own range test (kernels/hip/tile_common.h).
template <typename Reciprocal>
RCSIM_HD PreparedDivisor prepare_divisor_with(float divisor, Reciprocal reciprocal) {
  PreparedDivisor p;
  p.divisor = divisor;
  p.by_reciprocal = numeric::float_bits(divisor) - kReciprocalDivisorMinBits <= kReciprocalDivisorSpan;
  p.reciprocal = p.by_reciprocal ? reciprocal(divisor) : 1.0f;
  return p;
}
struct TrueReciprocal {
  RCSIM_HD float operator()(float d) const { return 1.0f / d; }
};
RCSIM_HD PreparedDivisor prepare_divisor(float divisor) {
  return prepare_divisor_with(divisor, TrueReciprocal{});
}

// RN(v / divisor) when the divisor is not admitted or 2^-40 <= |v / divisor| <= 2^64; below that
// a value of v's sign under 2^-39 in magnitude (see the header comment).
RCSIM_HD float divide_prepared(const PreparedDivisor& p, float v) {
  if (!p.by_reciprocal) return v / p.divisor;
  const float q0 = v * p.reciprocal;
  const float e = fmaf(-q0, p.divisor, v);
  return copysignf(fmaf(e, p.reciprocal, q0), v);
}

}  // namespace rcsim::qk_math
