// Planted changes inside the shared math (the "shared-*" mutants of core/mutants.h). The functions
// of kernels/common are used by the CPU reference, the non-fused kernels and the GPU kernels alike,
// so a bug in one of them changes every path together and no differential test can see it. These
// switches plant such a bug in the function itself - on the host only: device code always sees
// "none" - so tests can show which checks still catch it (docs/properties.md, "Who sees a change
// in the shared math"). core/mutants.h selects them; nothing else writes the switch.
#pragma once

#include <cstdint>

#include "kernels/common/host_device.h"

#if !defined(__HIP_DEVICE_COMPILE__) && !defined(__CUDA_ARCH__)
#include <atomic>
#define RCSIM_SHARED_MUTANTS_ON_HOST 1
#endif

namespace rcsim::shared_mutants {

// One entry per planted change, named after the shared function it lives in.
enum class SharedBug : uint8_t {
  kNone,
  kBf16Truncates,           // float_to_bf16_bits: truncation instead of round-to-nearest-even
  kBf16DecodeDropsLsb,      // bf16_bits_to_float: the lowest mantissa bit is cleared
  kFp16Truncates,           // float_to_fp16_bits: normal results truncated
  kFp16DecodeDropsLsb,      // fp16_bits_to_float: the lowest mantissa bit is cleared
  kFp8Truncates,            // float_to_fp8_bits: normal results truncated
  kFp8DecodeOtherBias,      // fp8_bits_to_float: decoded with the other format's bias
  kFp8MaxOtherFormat,       // fp8_max: the other format's max (448 <-> 240)
  kFp8MaxCodeLow,           // fp8_max_code: one code below the real max
  kFp8NanCodeZero,          // fp8_nan_code: NaN encoded as +0
  kLaneSumDropsLast,        // lane_sum_squares: the lane's last element is skipped
  kButterflyKeepsOwn,       // butterfly_sum_step: the partner's value is not added
  kButterflyOrderReversed,  // head_sum_squares: masks 1, 2, 4, 8, 16 instead of 16 ... 1
  kMaxStepMin,              // butterfly_max_step: fminf instead of fmaxf
  kRmsEpsOutsideRoot,       // rms_inverse: 1 / (sqrt(mean) + eps)
  kNormaliseReassociated,   // rms_normalise: x * (rcp * w) instead of (x * rcp) * w
  kRopeFreqIndexGptj,       // rope_freq_index: NeoX uses GPT-J's d / 2
  kRopePartnerOffByOne,     // rope_partner_index: NeoX first half pairs with d + half - 1
  kRopeNeoxSignFlipped,     // rope_partner_negated: NeoX negates the second half's partner
  kRopeCosSinSwapped,       // rope_rotate: x*sin + p*cos
  kRopeElementSignDropped,  // rope_element: the partner enters unsigned (never negated)
  kAmaxSigned,              // amax_step: the signed value, not |v|
  kAmaxFloorSkipped,        // fp8_scale_from_amax: the 1e-8 floor never applies
  kQuantDivideMultiplies,   // fp8_quantise_divide: v * (1/scale) instead of v / scale
  kReciprocalUlpLow,        // scale_reciprocal: one fp32 ulp below 1/scale
  kQuantMultiplyDivides,    // fp8_quantise_multiply: v / r instead of v * r
  kKOffsetHeadMajor,        // k_xpacked_offset: (h * NB + b) instead of (b * H + h)
  kVShuffleInnerSwapped,    // v_shuffle_offset: [.., x, D] inner order instead of [.., D, x]
  kVPlainHeadMajor,         // v_plain_offset: (h * NB + b) instead of (b * H + h)
  kScaleIndexHeadMajor,     // scale_offset: (h * NB + b) instead of (b * H + h)
  kFp8BiasOtherFormat,      // fp8_bias: the other format's bias (7 <-> 8)
  kFlashHeadTokenSwapped,   // flash_offset: HND [NB, H, BS, D] instead of NHD [NB, BS, H, D]
  kCacheElementsDropsHeads, // cache_elements: NB * BS * D (the KV heads forgotten)
  kScaleElementsDropsHeads, // scale_elements: NB * BS (the KV heads forgotten)
};

#ifdef RCSIM_SHARED_MUTANTS_ON_HOST
namespace detail {
inline std::atomic<uint8_t> g_active{0};
}
inline void set_active(SharedBug b) {
  detail::g_active.store(static_cast<uint8_t>(b), std::memory_order_relaxed);
}
#endif

// True iff `b` is the planted change in force (never on a device).
RCSIM_HD bool active(SharedBug b) {
#ifdef RCSIM_SHARED_MUTANTS_ON_HOST
  return detail::g_active.load(std::memory_order_relaxed) == static_cast<uint8_t>(b);
#else
  (void)b;
  return false;
#endif
}

}  // namespace rcsim::shared_mutants
