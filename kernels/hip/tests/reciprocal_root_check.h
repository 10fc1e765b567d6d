// The device half of the reciprocal-root proof (reciprocal_root_check.hip): the tiled kernels'
// one-test 1/sqrt (gpu_platform.h, reciprocal_root_in_range) against 1.0f / sqrtf(x) on the GPU,
// for every float of the range it is used on. Host-compiler clean.
#pragma once

#include <cstdint>

namespace rcsim::gpu {

struct ReciprocalRootCounts {
  int64_t values = 0;         // floats compared: every one of [2^-101, FLT_MAX]
  int64_t disagreements = 0;  // floats whose two results differ in any bit
  uint32_t first_bad_bits = 0;  // the smallest disagreeing x, when there is one
};

ReciprocalRootCounts check_reciprocal_root_on_device();

// False where the platform has no hand-written sequence (gpu_platform.h: AMD divides), so that
// there is nothing to prove: the sweep would compare 1.0f / sqrtf(x) with itself.
bool device_has_reciprocal_root_sequence();

}  // namespace rcsim::gpu
