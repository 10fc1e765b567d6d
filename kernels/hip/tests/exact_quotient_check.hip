// The exact-quotient proof on the device (kernels/common/exact_quotient.h): the rule of
// kernels/common/tests/exact_quotient_cases.h over
//  * every pair of an 11-bit activation significand (bf16 and fp16 values) and a 23-bit divisor
//    significand, each pair also with v and d shifted by exponents derived from its index (a
//    hash, so the sweep is the same on every run), and v's sign alternating: 2^33 pairs;
//  * every bf16 and fp16 bit pattern against 64 divisor significands (from the seed) at every
//    exponent of the admitted range [2^-60, 2^60).
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

__device__ void judge(float v, float d, unsigned long long index, unsigned long long& pairs,
                      unsigned long long& corrected, DeviceCounts* out) {
  ++pairs;
  corrected += qk_math::testing::correction_needed(v, d) ? 1 : 0;
  if (qk_math::testing::quotient_verdict(v, d) != kAgrees) {
    atomicAdd(&out->bad, 1ull);
    atomicMin(&out->first_bad, index);
  }
}

// Thread (i, j-block): activation significand i against 2^23 / gridDim.y divisor significands.
__global__ void significand_sweep(DeviceCounts* out) {
  const uint32_t i = blockIdx.x;  // 0..1023
  const uint32_t per_y = (1u << 23) / gridDim.y;
  const float a = qk_math::testing::activation_significand(i);
  unsigned long long pairs = 0, corrected = 0;
  for (uint32_t j = blockIdx.y * per_y + threadIdx.x; j < (blockIdx.y + 1) * per_y; j += blockDim.x) {
    const float d = qk_math::testing::divisor_significand(j);
    const unsigned long long index = (static_cast<unsigned long long>(i) << 23) | j;
    const float v = (j & 1u) ? -a : a;
    judge(v, d, index * 2, pairs, corrected, out);
    const uint32_t h = mix(static_cast<uint32_t>(index));
    const int ev = static_cast<int>(h % 81u) - 40;         // v in [2^-40, 2^41)
    const int ed = static_cast<int>((h >> 8) % 119u) - 59;  // d in [2^-59, 2^60)
    judge(ldexpf(v, ev), ldexpf(d, ed), index * 2 + 1, pairs, corrected, out);
  }
  atomicAdd(&out->pairs, pairs);
  atomicAdd(&out->corrected, corrected);
}

// Block (value block, exponent): 256 of the 131072 bf16/fp16 values x 64 divisors 2^e * m_k.
__global__ void value_sweep(const float* significands, DeviceCounts* out) {
  const uint32_t value = blockIdx.x * blockDim.x + threadIdx.x;  // 0..131071
  const int e = static_cast<int>(blockIdx.y) - 60;              // -60..59
  const auto bits = static_cast<uint16_t>(value & 0xFFFFu);
  const float v = value < 65536 ? numeric::bf16_bits_to_float(bits) : numeric::fp16_bits_to_float(bits);
  unsigned long long pairs = 0, corrected = 0;
  for (int k = 0; k < 64; ++k) {
    const float d = ldexpf(significands[k], e);
    const unsigned long long index = (1ull << 40) + ((static_cast<unsigned long long>(blockIdx.y) * 131072 + value) << 6) + k;
    judge(v, d, index, pairs, corrected, out);
  }
  atomicAdd(&out->pairs, pairs);
  atomicAdd(&out->corrected, corrected);
}

}  // namespace

ExactQuotientCounts check_exact_quotient_on_device(uint64_t seed) {
  float significands[64];
  uint64_t s = seed;
  for (float& m : significands) {  // splitmix64: the seed's 64 divisor significands
    s += 0x9e3779b97f4a7c15ull;
    uint64_t z = s;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    m = numeric::bits_float(0x3F800000u | static_cast<uint32_t>(z & 0x7FFFFFu));
  }
  significands[0] = 1.0f;  // powers of two: the admitted range's edges themselves
  const int64_t count_bytes = static_cast<int64_t>(sizeof(DeviceCounts));
  auto* counts = static_cast<DeviceCounts*>(device_alloc(count_bytes));
  auto* dev_significands = static_cast<float*>(device_alloc(sizeof(significands)));
  const DeviceCounts zero{0, 0, 0, ~0ull};
  copy_to_device(counts, &zero, count_bytes);
  copy_to_device(dev_significands, significands, sizeof(significands));
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
    // Re-derive the first bad pair's operands from its index on the host.
    const unsigned long long f = all.first_bad;
    if (f < (1ull << 40)) {
      const uint32_t i = static_cast<uint32_t>((f / 2) >> 23);
      const uint32_t j = static_cast<uint32_t>((f / 2) & 0x7FFFFFu);
      const float a = qk_math::testing::activation_significand(i);
      float v = (j & 1u) ? -a : a;
      float d = qk_math::testing::divisor_significand(j);
      if (f & 1u) {  // the shifted twin of the pair
        const uint32_t h = mix(static_cast<uint32_t>(f / 2));
        v = std::ldexp(v, static_cast<int>(h % 81u) - 40);
        d = std::ldexp(d, static_cast<int>((h >> 8) % 119u) - 59);
      }
      r.first_bad_v_bits = numeric::float_bits(v);
      r.first_bad_d_bits = numeric::float_bits(d);
    } else {
      const unsigned long long g = f - (1ull << 40);
      const uint32_t value = static_cast<uint32_t>((g >> 6) % 131072);
      const auto bits = static_cast<uint16_t>(value & 0xFFFFu);
      const float v = value < 65536 ? numeric::bf16_bits_to_float(bits) : numeric::fp16_bits_to_float(bits);
      r.first_bad_v_bits = numeric::float_bits(v);
      const int e = static_cast<int>((g >> 6) / 131072) - 60;
      r.first_bad_d_bits = numeric::float_bits(std::ldexp(significands[g & 63], e));
    }
  }
  return r;
}

}  // namespace rcsim::gpu
