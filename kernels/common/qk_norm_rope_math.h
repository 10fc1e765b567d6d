// The arithmetic of the fused QK-RMSNorm + RoPE + KV-quant kernel (semantics.md 2.1), written once
// and shared by the CPU reference (kernels/cpu) and the GPU kernels (kernels/hip). Every function
// fixes an evaluation order, so both backends produce the same bits:
//
//  * RMSNorm reduction: the kernel runs one 32-lane group per (token, head). Lane l owns the
//    contiguous elements [l*n, (l+1)*n), n = D/32, and sums their squares sequentially in fp32
//    (s = s + x*x, no FMA). The 32 partial sums are then combined by an xor butterfly with masks
//    16, 8, 4, 2, 1: at each step lane l computes v[l] + v[l ^ mask]. fp32 addition is
//    commutative, so all lanes end with the same value; lane 0's is the result.
//  * rms_inverse = 1.0f / sqrtf(sum_sq / float(D) + eps): one correctly rounded division, one
//    correctly rounded sqrt, one correctly rounded reciprocal. The GPU kernel must NOT use rsqrtf
//    or __frsqrt_rn/fast-math (approximate on AMD and not what the CPU computes); use sqrtf and a
//    true IEEE division (-fno-fast-math, no -ffast-math-like flags for this translation unit).
//  * normalise: (x * rcp) * w, left to right, each product rounded to fp32.
//  * RoPE: out_d = x_d*cos_h + p_d*sin_h, both products rounded to fp32, then the sum rounded to
//    fp32; p_d is the signed partner (NeoX: -x_{d+rot/2} for d < rot/2, x_{d-rot/2} above;
//    GPT-J: -x_{d+1} for even d, x_{d-1} for odd d). Dims >= rotary_dim pass through.
//  * fp8 per-token quantisation: amax = max |v| over the head; scale = amax / fp8_max.
//
// Everything here must be compiled without FMA contraction (-ffp-contract=off: link
// rcsim_strict_fp on the host; pass the same flag to hipcc/nvcc), because the spec rounds after
// every multiply.
#pragma once

#include <cmath>
#include <cstdint>

#include "kernels/common/host_device.h"
#include "kernels/common/numeric.h"
#include "kernels/common/shared_math_mutants.h"

namespace rcsim::qk_math {

using shared_mutants::active;
using shared_mutants::SharedBug;

// Lanes of one (token, head) group in the fused kernel. This is the kernel's logical group size
// (two groups per 64-thread block on AMD), not the hardware warp size.
inline constexpr int kLanesPerHead = 32;
// Butterfly masks in the order the kernel applies them.
inline constexpr int kButterflyMasks[5] = {16, 8, 4, 2, 1};

// ---- RMSNorm --------------------------------------------------------------------------------

// One lane's partial sum of squares over its n contiguous elements, sequential, fp32.
RCSIM_HD float lane_sum_squares(const float* lane_values, int n) {
  float s = 0.0f;
  if (active(SharedBug::kLaneSumDropsLast)) --n;
  for (int i = 0; i < n; ++i) {
    const float sq = lane_values[i] * lane_values[i];
    s = s + sq;
  }
  return s;
}

// One butterfly step as lane l sees it: its own value plus its partner's (lane l ^ mask).
RCSIM_HD float butterfly_sum_step(float mine, float partner) {
  if (active(SharedBug::kButterflyKeepsOwn)) return mine;
  return mine + partner;
}
// The larger of two values; a NaN operand, quiet or signaling, is dropped (only NaN with NaN gives
// NaN). That is LLVM's maxnum, which the AMDGPU and NVPTX back ends lower fmaxf to: rcsim's kernels
// on an H200 drop a signaling NaN (measured), and AITER's on AMD should by the same definition. x86 glibc's fmaxf follows IEEE 754-2008
// maxNum instead and returns NaN for a signaling operand, so the host's running amax restarted
// after one: the H200 testbed's seed 874 (a garbage V head holding 0xFF9A) found it. The host
// therefore spells the rule out; device code keeps the one-instruction fmaxf.
RCSIM_HD float butterfly_max_step(float mine, float partner) {
  if (active(SharedBug::kMaxStepMin)) return fminf(mine, partner);
#if !defined(__CUDA_ARCH__) && !defined(__HIP_DEVICE_COMPILE__)
  if (partner != partner) return mine;
  if (mine != mine) return partner;
#endif
  return fmaxf(mine, partner);
}

// Reproduces the whole 32-lane reduction of the sum of squares from the head's D fp32 values
// (D % 32 == 0, D <= 256). Host and device; the GPU kernel uses the per-step functions above with
// real shuffles, this one is the sequential model of the same order.
RCSIM_HD float head_sum_squares(const float* x, int head_dim) {
  const int n = head_dim / kLanesPerHead;
  float v[kLanesPerHead];
  for (int l = 0; l < kLanesPerHead; ++l) v[l] = lane_sum_squares(x + l * n, n);
  for (int step = 0; step < 5; ++step) {
    // 16 >> step == kButterflyMasks[step]; computed rather than indexed so device code needs no
    // access to a host array.
    const int mask = active(SharedBug::kButterflyOrderReversed) ? 1 << step
                                                                : (kLanesPerHead / 2) >> step;
    float next[kLanesPerHead];
    for (int l = 0; l < kLanesPerHead; ++l) next[l] = butterfly_sum_step(v[l], v[l ^ mask]);
    for (int l = 0; l < kLanesPerHead; ++l) v[l] = next[l];
  }
  return v[0];
}

// 1 / sqrt(mean(x^2) + eps), each operation correctly rounded (see the header comment).
RCSIM_HD float rms_inverse(float sum_sq, int head_dim, float eps) {
  const float mean = sum_sq / static_cast<float>(head_dim);
  if (active(SharedBug::kRmsEpsOutsideRoot)) return 1.0f / (sqrtf(mean) + eps);
  const float root = sqrtf(mean + eps);
  return 1.0f / root;
}

// The normalised element before rounding to the activation dtype: (x * rcp) * w.
RCSIM_HD float rms_normalise(float x, float rcp, float w) {
  if (active(SharedBug::kNormaliseReassociated)) return x * (rcp * w);
  const float scaled = x * rcp;
  return scaled * w;
}

// ---- RoPE -----------------------------------------------------------------------------------

// Index of the cos/sin column used by dim d (valid only for d < rotary_dim).
RCSIM_HD int rope_freq_index(int d, int rotary_dim, bool is_neox) {
  if (is_neox && active(SharedBug::kRopeFreqIndexGptj)) return d / 2;
  return is_neox ? d % (rotary_dim / 2) : d / 2;
}
// Index of the element whose value rotates together with d (d < rotary_dim).
RCSIM_HD int rope_partner_index(int d, int rotary_dim, bool is_neox) {
  if (is_neox) {
    const int half = rotary_dim / 2;
    if (d < half && active(SharedBug::kRopePartnerOffByOne)) return d + half - 1;
    return d < half ? d + half : d - half;
  }
  return (d % 2 == 0) ? d + 1 : d - 1;
}
// Whether the partner enters with a minus sign: the first member of each pair.
RCSIM_HD bool rope_partner_negated(int d, int rotary_dim, bool is_neox) {
  if (is_neox && active(SharedBug::kRopeNeoxSignFlipped)) return d >= rotary_dim / 2;
  return is_neox ? d < rotary_dim / 2 : d % 2 == 0;
}
// out = x*cos + p*sin with p the signed partner; two fp32 products, one fp32 sum.
RCSIM_HD float rope_rotate(float x, float signed_partner, float cos_h, float sin_h) {
  if (active(SharedBug::kRopeCosSinSwapped)) {
    const float a_swapped = x * sin_h;
    const float b_swapped = signed_partner * cos_h;
    return a_swapped + b_swapped;
  }
  const float a = x * cos_h;
  const float b = signed_partner * sin_h;
  return a + b;
}
// The whole rotation of element d of a head from fp32 values (dims >= rotary_dim pass through).
// cos_row / sin_row are the rotary_dim/2 values of the position's row.
RCSIM_HD float rope_element(const float* x, int d, int rotary_dim, bool is_neox,
                            const float* cos_row, const float* sin_row) {
  if (d >= rotary_dim) return x[d];
  const int h = rope_freq_index(d, rotary_dim, is_neox);
  const float partner = x[rope_partner_index(d, rotary_dim, is_neox)];
  if (active(SharedBug::kRopeElementSignDropped)) {
    return rope_rotate(x[d], partner, cos_row[h], sin_row[h]);
  }
  const float signed_partner = rope_partner_negated(d, rotary_dim, is_neox) ? -partner : partner;
  return rope_rotate(x[d], signed_partner, cos_row[h], sin_row[h]);
}

// ---- fp8 per-token quantisation -------------------------------------------------------------

// AITER@HEAD's floor on amax (kFp8KvQuantAbsmaxFloorF32); March 2026 had none.
inline constexpr float kAmaxFloor = 1e-8f;

// Lane-local step of the amax reduction (|v| folded into a running max).
RCSIM_HD float amax_step(float running, float v) {
  if (active(SharedBug::kAmaxSigned)) return butterfly_max_step(running, v);
  return butterfly_max_step(running, fabsf(v));
}

// The amax a scale is taken from: floored at kAmaxFloor iff `floor_amax` (a NaN amax floors too).
RCSIM_HD float floored_amax(float amax, bool floor_amax) {
  const bool floor = floor_amax && !active(SharedBug::kAmaxFloorSkipped);
  return (floor && !(amax >= kAmaxFloor)) ? kAmaxFloor : amax;
}
// Dequant scale of one (token, head): amax / fp8_max, amax floored iff `floor_amax`.
RCSIM_HD float fp8_scale_from_amax(float amax, float fp8_max_value, bool floor_amax) {
  return floored_amax(amax, floor_amax) / fp8_max_value;
}
// The fused kernel's store: fp8(float(v) / scale) - a true division. The quotient is its own
// function so that a kernel encoding several quotients at once (kernels/hip/tile_common.h) divides
// exactly as this does.
RCSIM_HD float fp8_divide_quotient(float v, float scale) {
  if (active(SharedBug::kQuantDivideMultiplies)) return v * (1.0f / scale);
  return v / scale;
}
RCSIM_HD uint8_t fp8_quantise_divide(float v, float scale, numeric::Fp8Format fmt) {
  return numeric::float_to_fp8_bits(fp8_divide_quotient(v, scale), fmt);
}
// reshape_and_cache* and branch B's store: fp8(v * (1/scale)) - multiply by the reciprocal.
RCSIM_HD float scale_reciprocal(float scale) {
  if (active(SharedBug::kReciprocalUlpLow)) return nextafterf(1.0f / scale, 0.0f);
  return 1.0f / scale;
}
RCSIM_HD float fp8_multiply_quotient(float v, float scale_reciprocal_value) {
  if (active(SharedBug::kQuantMultiplyDivides)) return v / scale_reciprocal_value;
  return v * scale_reciprocal_value;
}
RCSIM_HD uint8_t fp8_quantise_multiply(float v, float scale_reciprocal_value,
                                       numeric::Fp8Format fmt) {
  return numeric::float_to_fp8_bits(fp8_multiply_quotient(v, scale_reciprocal_value), fmt);
}

}  // namespace rcsim::qk_math
