// Exhaustive sweeps: each input goes through a tiled kernel's shortcut and through the expression
// it replaces, compiled like the kernels (correctly rounded division and sqrt); the two must agree
// in every bit. Proved on the device rather than sampled, so gpu_platform.h's and tile_common.h's
// claims hold for every input the kernels can give them.
#include "kernels/hip/tests/device_sequence_check.h"

#include <cmath>

// First: under hipcc the runtime header defines __forceinline__, which RCSIM_HD uses.
#include "kernels/hip/gpu_platform.h"
// (blank line keeps clang-format from reordering the platform header after the math headers)

#include "kernels/common/fast_divisor.h"
#include "kernels/common/numeric.h"
#include "kernels/common/qk_norm_rope_math.h"
#include "kernels/hip/gpu_runtime.h"
#include "kernels/hip/tile_common.h"

namespace rcsim::gpu {
namespace {

struct DeviceCounts {
  unsigned long long values;
  unsigned long long bad;
  unsigned long long first_bad;  // offset from the sweep's first bits, ~0 when none
};

// Grid-stride over the offsets 0 .. span (inclusive); the stride bounds every thread's loop at
// span / (grid threads) + 1 iterations. Each offset stands for `per_offset` values, and
// bad_at(i) returns how many of offset i's disagree.
template <typename BadAt>
__device__ void sweep_offsets(unsigned long long span, unsigned per_offset, DeviceCounts* out,
                              BadAt bad_at) {
  const unsigned long long stride = static_cast<unsigned long long>(gridDim.x) * blockDim.x;
  unsigned long long values = 0;
  for (unsigned long long i = static_cast<unsigned long long>(blockIdx.x) * blockDim.x + threadIdx.x;
       i <= span; i += stride) {
    values += per_offset;
    const unsigned bad = bad_at(i);
    if (bad != 0) {
      atomicAdd(&out->bad, static_cast<unsigned long long>(bad));
      atomicMin(&out->first_bad, i);
    }
  }
  atomicAdd(&out->values, values);
}

// Every float whose bits are first .. first + span: same(x) is true when the shortcut and the
// expression it replaces give the same bits for x.
template <typename Same>
__device__ void sweep(uint32_t first, unsigned long long span, DeviceCounts* out, Same same) {
  sweep_offsets(span, 1, out, [&](unsigned long long i) {
    return same(numeric::bits_float(first + static_cast<uint32_t>(i))) ? 0u : 1u;
  });
}

__device__ bool same_bits(float a, float b) { return numeric::float_bits(a) == numeric::float_bits(b); }

__global__ void reciprocal_root_sweep(DeviceCounts* out) {
  sweep(kReciprocalRootMinBits, kReciprocalRootSpan, out,
        [](float x) { return same_bits(reciprocal_root_in_range(x), 1.0f / sqrtf(x)); });
}

constexpr unsigned long long kEveryPattern = 0xFFFFFFFFull;

__global__ void reciprocal_sweep(DeviceCounts* out) {
  sweep(0u, kEveryPattern, out, [](float x) { return same_bits(tile::reciprocal(x), 1.0f / x); });
}

__global__ void prepared_divisor_sweep(DeviceCounts* out) {
  sweep(0u, kEveryPattern, out, [](float d) {
    const qk_math::PreparedDivisor got = tile::prepare_divisor(d);
    const qk_math::PreparedDivisor want = qk_math::prepare_divisor(d);
    return got.by_reciprocal == want.by_reciprocal && same_bits(got.divisor, want.divisor) &&
           same_bits(got.reciprocal, want.reciprocal);
  });
}

template <CacheType C>
__global__ void fp8_scale_sweep(DeviceCounts* out, bool floor_amax) {
  const float m = numeric::fp8_max(tile::fp8_format<C>());
  sweep(0u, kEveryPattern, out, [&](float a) {
    return same_bits(tile::fp8_scale<C>(a, floor_amax), qk_math::fp8_scale_from_amax(a, m, floor_amax));
  });
}

// Every dividend below 2^31 against every divisor in [1, kFastDivisorSweepMax]; `divisors[d - 1]`
// is make_fast_divisor(d), prepared on the host as the launchers prepare the page size.
__global__ void fast_divisor_sweep(const FastDivisor* divisors, DeviceCounts* out) {
  sweep_offsets(kFastDividendEnd - 1ull, kFastDivisorSweepMax, out, [&](unsigned long long i) {
    const auto n = static_cast<uint32_t>(i);
    unsigned bad = 0;
    for (uint32_t d = 1; d <= kFastDivisorSweepMax; ++d) {
      const QuotRem32 got = divide(n, divisors[d - 1]);
      bad += got.quot != n / d || got.rem != n % d ? 1u : 0u;
    }
    return bad;
  });
}

// Runs launch(counts) once with fresh counters and sums what it counted into `total`.
template <typename Launch>
void run_sweep(const char* name, SweepCounts& total, Launch launch) {
  const int64_t count_bytes = static_cast<int64_t>(sizeof(DeviceCounts));
  auto* counts = static_cast<DeviceCounts*>(device_alloc(count_bytes));
  const DeviceCounts zero{0, 0, ~0ull};
  copy_to_device(counts, &zero, count_bytes);
  launch(counts);
  check_last_error(name);
  DeviceCounts all{};
  copy_to_host(&all, counts, count_bytes);
  device_free(counts);
  total.values += static_cast<int64_t>(all.values);
  if (all.bad != 0 && total.disagreements == 0) total.first_bad_bits = static_cast<uint32_t>(all.first_bad);
  total.disagreements += static_cast<int64_t>(all.bad);
}

const dim3 kSweepGrid(8192), kSweepBlock(256);

}  // namespace

SweepCounts check_reciprocal_root_on_device() {
  SweepCounts r;
  run_sweep("reciprocal_root_sweep", r,
            [](DeviceCounts* c) { reciprocal_root_sweep<<<kSweepGrid, kSweepBlock>>>(c); });
  if (r.disagreements != 0) r.first_bad_bits += kReciprocalRootMinBits;
  return r;
}

SweepCounts check_reciprocal_on_device() {
  SweepCounts r;
  run_sweep("reciprocal_sweep", r,
            [](DeviceCounts* c) { reciprocal_sweep<<<kSweepGrid, kSweepBlock>>>(c); });
  return r;
}

SweepCounts check_prepared_divisor_on_device() {
  SweepCounts r;
  run_sweep("prepared_divisor_sweep", r,
            [](DeviceCounts* c) { prepared_divisor_sweep<<<kSweepGrid, kSweepBlock>>>(c); });
  return r;
}

SweepCounts check_fp8_scale_on_device() {
  SweepCounts r;
  for (bool floor_amax : {false, true}) {
    run_sweep("fp8_scale_sweep e4m3fn", r, [&](DeviceCounts* c) {
      fp8_scale_sweep<CacheType::kFp8E4M3FN><<<kSweepGrid, kSweepBlock>>>(c, floor_amax);
    });
    run_sweep("fp8_scale_sweep e4m3fnuz", r, [&](DeviceCounts* c) {
      fp8_scale_sweep<CacheType::kFp8E4M3FNUZ><<<kSweepGrid, kSweepBlock>>>(c, floor_amax);
    });
  }
  return r;
}

SweepCounts check_fast_divisor_on_device() {
  FastDivisor host[kFastDivisorSweepMax];
  for (uint32_t d = 1; d <= kFastDivisorSweepMax; ++d) host[d - 1] = make_fast_divisor(d);
  const auto bytes = static_cast<int64_t>(sizeof(host));
  auto* divisors = static_cast<FastDivisor*>(device_alloc(bytes));
  copy_to_device(divisors, host, bytes);
  SweepCounts r;
  run_sweep("fast_divisor_sweep", r,
            [&](DeviceCounts* c) { fast_divisor_sweep<<<kSweepGrid, kSweepBlock>>>(divisors, c); });
  device_free(divisors);
  return r;
}

bool device_has_reciprocal_sequences() { return kHasReciprocalSequences; }

}  // namespace rcsim::gpu
