// The exact-quotient proof on the device (kernels/common/exact_quotient.h): the rule of
// kernels/common/tests/exact_quotient_cases.h over
//  * every pair of an 11-bit activation significand (bf16 and fp16 values) and a 23-bit divisor
//    significand, each pair also with v and d shifted by exponents derived from its index (a
//    hash, so the sweep is the same on every run), and v's sign alternating: 2^33 pairs;
//  * every bf16 and fp16 bit pattern against 64 divisor significands (the caller's, from its seed)
//    at every exponent of the admitted range [2^-60, 2^60).
// The CPU test runs a sample of the same pairs; this one covers all divisor significands because
// the GPU is what runs divide_prepared in the kernels.
#include "kernels/hip/tests/exact_quotient_check.h"

#include <cmath>

// First: under hipcc the runtime header defines __forceinline__, which RCSIM_HD uses.
#include "kernels/hip/gpu_platform.h"
// (blank line keeps clang-format from reordering the platform header after the math headers)

#include "kernels/common/numeric.h"
#include "kernels/common/tests/exact_quotient_cases.h"
#include "kernels/hip/gpu_runtime.h"

namespace rcsim::gpu {
namespace {

using qk_math::testing::kAgrees;

struct DeviceCounts {
  unsigned long long pairs;
  unsigned long long corrected;
  unsigned long long bad;
  unsigned long long first_bad;  // pair index, ~0 when none
};

__host__ __device__ uint32_t mix(uint32_t x) {  // an integer hash (lowbias32) for the exponent shifts
  x ^= x >> 16;
  x *= 0x7feb352du;
  x ^= x >> 15;
  x *= 0x846ca68bu;
  x ^= x >> 16;
  return x;
}

// The operands of pair `index`, computed by the kernels and again on the host for the first pair
// that disagrees.
struct Operands {
  float v;
  float d;
};
// Significand sweep, index < 2^35: pair 2k is (significand i, divisor significand j) for
// k = i*2^23 + j, v's sign alternating with j; pair 2k+1 is its twin shifted by exponents from a
// hash of k (v in [2^-40, 2^41), d in [2^-59, 2^60)).
constexpr unsigned long long kValueSweepBase = 1ull << 40;
__host__ __device__ Operands significand_pair(unsigned long long index) {
  const unsigned long long k = index / 2;
  const uint32_t j = static_cast<uint32_t>(k & 0x7FFFFFu);
  const float a = qk_math::testing::activation_significand(static_cast<uint32_t>(k >> 23));
  Operands o{(j & 1u) ? -a : a, qk_math::testing::divisor_significand(j)};
  if (index & 1u) {
    const uint32_t h = mix(static_cast<uint32_t>(k));
    o.v = ldexpf(o.v, static_cast<int>(h % 81u) - 40);
    o.d = ldexpf(o.d, static_cast<int>((h >> 8) % 119u) - 59);
  }
  return o;
}
// Value sweep, index = kValueSweepBase + ((e + 60) * 131072 + value) * 64 + k: value 0..65535 are
// the bf16 bit patterns, 65536..131071 the fp16 ones; the divisor is significands[k] * 2^e.
__host__ __device__ Operands value_pair(unsigned long long index, const float* significands) {
  const unsigned long long g = index - kValueSweepBase;
  const uint32_t value = static_cast<uint32_t>((g >> 6) % 131072);
  const int e = static_cast<int>((g >> 6) / 131072) - 60;
  const auto bits = static_cast<uint16_t>(value & 0xFFFFu);
  const float v =
      value < 65536 ? numeric::bf16_bits_to_float(bits) : numeric::fp16_bits_to_float(bits);
  return {v, ldexpf(significands[g & 63], e)};
}

__device__ void judge(const Operands& o, unsigned long long index, unsigned long long& pairs,
                      unsigned long long& corrected, DeviceCounts* out) {
  ++pairs;
  corrected += qk_math::testing::correction_needed(o.v, o.d) ? 1 : 0;
  if (qk_math::testing::quotient_verdict(o.v, o.d) != kAgrees) {
    atomicAdd(&out->bad, 1ull);
    atomicMin(&out->first_bad, index);
  }
}

// Block (i, y): activation significand i against 2^23 / gridDim.y divisor significands, each
// unshifted and shifted.
__global__ void significand_sweep(DeviceCounts* out) {
  const uint32_t per_y = (1u << 23) / gridDim.y;
  const unsigned long long k0 = static_cast<unsigned long long>(blockIdx.x) << 23;
  unsigned long long pairs = 0, corrected = 0;
  for (uint32_t j = blockIdx.y * per_y + threadIdx.x; j < (blockIdx.y + 1) * per_y; j += blockDim.x) {
    const unsigned long long index = (k0 | j) * 2;
    judge(significand_pair(index), index, pairs, corrected, out);
    judge(significand_pair(index + 1), index + 1, pairs, corrected, out);
  }
  atomicAdd(&out->pairs, pairs);
  atomicAdd(&out->corrected, corrected);
}

// Block (value block, exponent): 256 of the 131072 bf16/fp16 values x 64 divisors 2^e * m_k.
__global__ void value_sweep(const float* significands, DeviceCounts* out) {
  const unsigned long long value = blockIdx.x * blockDim.x + threadIdx.x;  // 0..131071
  const unsigned long long first =
      kValueSweepBase + ((static_cast<unsigned long long>(blockIdx.y) * 131072 + value) << 6);
  unsigned long long pairs = 0, corrected = 0;
  for (int k = 0; k < 64; ++k) {
    judge(value_pair(first + k, significands), first + k, pairs, corrected, out);
  }
  atomicAdd(&out->pairs, pairs);
  atomicAdd(&out->corrected, corrected);
}

}  // namespace

ExactQuotientCounts check_exact_quotient_on_device(const std::array<float, 64>& divisor_significands) {
  const float* significands = divisor_significands.data();
  const int64_t count_bytes = static_cast<int64_t>(sizeof(DeviceCounts));
  auto* counts = static_cast<DeviceCounts*>(device_alloc(count_bytes));
  constexpr int64_t kSignificandBytes = 64 * sizeof(float);
  auto* dev_significands = static_cast<float*>(device_alloc(kSignificandBytes));
  const DeviceCounts zero{0, 0, 0, ~0ull};
  copy_to_device(counts, &zero, count_bytes);
  copy_to_device(dev_significands, significands, kSignificandBytes);
  ExactQuotientCounts r;
  significand_sweep<<<dim3(1024, 64), dim3(256)>>>(counts);
  check_last_error("significand_sweep");
  DeviceCounts after_first{};
  copy_to_host(&after_first, counts, count_bytes);
  r.significand_pairs = static_cast<int64_t>(after_first.pairs);
  value_sweep<<<dim3(131072 / 256, 120), dim3(256)>>>(dev_significands, counts);
  check_last_error("value_sweep");
  DeviceCounts all{};
  copy_to_host(&all, counts, count_bytes);
  device_free(counts);
  device_free(dev_significands);
  r.value_pairs = static_cast<int64_t>(all.pairs) - r.significand_pairs;
  r.corrected = static_cast<int64_t>(all.corrected);
  r.disagreements = static_cast<int64_t>(all.bad);
  if (all.bad != 0) {
    const unsigned long long f = all.first_bad;
    const Operands o = f < kValueSweepBase ? significand_pair(f) : value_pair(f, significands);
    r.first_bad_v_bits = numeric::float_bits(o.v);
    r.first_bad_d_bits = numeric::float_bits(o.d);
  }
  return r;
}

}  // namespace rcsim::gpu
