// The device halves of the exhaustive proofs of the tiled kernels' hand-written sequences
// (device_sequence_check.hip), each run on the GPU over every float it can be given. Host-compiler
// clean.
#pragma once

#include <cstdint>

namespace rcsim::gpu {

struct SweepCounts {
  int64_t values = 0;           // floats compared
  int64_t disagreements = 0;    // floats whose two results differ in any bit
  uint32_t first_bad_bits = 0;  // the smallest disagreeing input's bits, when there is one
};

// reciprocal_root_in_range (gpu_platform.h) against 1.0f / sqrtf(x), for every float of
// [2^-101, FLT_MAX] (the range tile::rms_inverse admits).
SweepCounts check_reciprocal_root_on_device();
// tile::reciprocal against 1.0f / x, for every one of the 2^32 bit patterns.
SweepCounts check_reciprocal_on_device();
// tile::prepare_divisor against qk_math::prepare_divisor (every field, bit for bit), for every one
// of the 2^32 bit patterns.
SweepCounts check_prepared_divisor_on_device();
// tile::fp8_scale<C>(a, floor) against qk_math::fp8_scale_from_amax(a, numeric::fp8_max, floor),
// for every one of the 2^32 bit patterns, both fp8 cache types and both floors (4 * 2^32 values).
SweepCounts check_fp8_scale_on_device();

// tile::page_slot's division (fast_divisor.h's divide with make_fast_divisor(d)) against n / d and
// n % d, for every divisor d in [1, kFastDivisorSweepMax] (the page sizes of core/limits.h among
// them) and every dividend in [0, 2^31) (slots are below 2^28): kFastDivisorSweepMax * 2^31 pairs.
// first_bad_bits holds the first disagreeing dividend.
inline constexpr uint32_t kFastDivisorSweepMax = 256;
SweepCounts check_fast_divisor_on_device();

// False where the platform has no hand-written sequences (gpu_platform.h: AMD divides), so that
// there is nothing to prove: each sweep would compare a division with itself.
bool device_has_reciprocal_sequences();

}  // namespace rcsim::gpu
