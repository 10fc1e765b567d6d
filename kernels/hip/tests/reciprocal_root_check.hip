// Every x whose bits pass the tiled kernels' range test (kReciprocalRootMinBits,
// kReciprocalRootSpan: the positive floats in [2^-101, FLT_MAX], 1.92e9 of them) goes through
// reciprocal_root_in_range and through 1.0f / sqrtf(x), compiled like the kernels (correctly
// rounded division and sqrt); the two must agree in every bit. Exhaustive, so the claim in
// gpu_platform.h is proved on the device rather than sampled.
#include "kernels/hip/tests/reciprocal_root_check.h"

#include <cmath>

// First: under hipcc the runtime header defines __forceinline__, which RCSIM_HD uses.
#include "kernels/hip/gpu_platform.h"
// (blank line keeps clang-format from reordering the platform header after the math headers)

#include "kernels/common/numeric.h"
#include "kernels/hip/gpu_runtime.h"

namespace rcsim::gpu {
namespace {

struct DeviceCounts {
  unsigned long long values;
  unsigned long long bad;
  unsigned long long first_bad;  // offset from kReciprocalRootMinBits, ~0 when none
};

// Grid-stride over the offsets 0 .. kReciprocalRootSpan; the stride bounds every thread's loop
// at span / (grid threads) + 1 iterations.
__global__ void reciprocal_root_sweep(DeviceCounts* out) {
  const unsigned long long stride = static_cast<unsigned long long>(gridDim.x) * blockDim.x;
  unsigned long long values = 0;
  for (unsigned long long i = static_cast<unsigned long long>(blockIdx.x) * blockDim.x + threadIdx.x;
       i <= kReciprocalRootSpan; i += stride) {
    const float x = numeric::bits_float(kReciprocalRootMinBits + static_cast<uint32_t>(i));
    const float want = 1.0f / sqrtf(x);
    const float got = reciprocal_root_in_range(x);
    ++values;
    if (numeric::float_bits(got) != numeric::float_bits(want)) {
      atomicAdd(&out->bad, 1ull);
      atomicMin(&out->first_bad, i);
    }
  }
  atomicAdd(&out->values, values);
}

}  // namespace

ReciprocalRootCounts check_reciprocal_root_on_device() {
  const int64_t count_bytes = static_cast<int64_t>(sizeof(DeviceCounts));
  auto* counts = static_cast<DeviceCounts*>(device_alloc(count_bytes));
  const DeviceCounts zero{0, 0, ~0ull};
  copy_to_device(counts, &zero, count_bytes);
  reciprocal_root_sweep<<<dim3(4096), dim3(256)>>>(counts);
  check_last_error("reciprocal_root_sweep");
  DeviceCounts all{};
  copy_to_host(&all, counts, count_bytes);
  device_free(counts);
  ReciprocalRootCounts r;
  r.values = static_cast<int64_t>(all.values);
  r.disagreements = static_cast<int64_t>(all.bad);
  if (all.bad != 0) r.first_bad_bits = kReciprocalRootMinBits + static_cast<uint32_t>(all.first_bad);
  return r;
}

bool device_has_reciprocal_root_sequence() { return kHasReciprocalRootSequence; }

}  // namespace rcsim::gpu
