// Device-side building blocks shared by the rcsim GPU kernels (included by .hip files only):
// activation load/store with the exact conversions of kernels/common/numeric.h, the 32-lane group
// reductions in the order kernels/common/qk_norm_rope_math.h fixes, the paged-cache stores, and
// the work-unit limit test behind device-side torn writes.
#pragma once

#include <cstdint>

// First: under hipcc the runtime header defines __forceinline__, which RCSIM_HD uses.
#include "kernels/hip/gpu_platform.h"
// (blank line keeps clang-format from reordering the platform header after the math headers)

#include "kernels/common/cache_layout.h"
#include "kernels/common/numeric.h"
#include "kernels/common/qk_norm_rope_math.h"
#include "kernels/hip/gpu_params.h"

namespace rcsim::gpu::dev {

static_assert(kGroupLanes == qk_math::kLanesPerHead, "group width is the math header's");

// Threads per block of every group kernel: a whole number of warps on both vendors (256 = 8
// NVIDIA warps = 4 AMD wavefronts), and of 32-lane groups.
inline constexpr int kBlockThreads = 256;
inline constexpr int kGroupsPerBlock = kBlockThreads / kGroupLanes;
static_assert(kBlockThreads % kWarpSizeLanes == 0, "block must be whole warps");

// Unit g is written iff it is below the limit (max_units < 0 = no limit). The test is per group,
// so a group never splits: shuffles stay convergent.
__device__ __forceinline__ bool unit_allowed(int64_t g, int64_t max_units) {
  return max_units < 0 || g < max_units;
}

__device__ __forceinline__ int64_t group_index() {
  return static_cast<int64_t>(blockIdx.x) * kGroupsPerBlock + threadIdx.x / kGroupLanes;
}
// Unit and slot arithmetic in 32 bits: 64-bit division is emulated on GPUs (tens of instructions)
// and these kernels are bound by instructions per byte. Units stay below 2^31 (T <= 32768 tokens,
// <= 192 heads, checked by gpu_backend.cc) and slots below 2^28 (limits::kBlocksMax x 64).
// Offsets into buffers are still formed in 64 bits (cache_lane_offsets).
struct Split32 {
  uint32_t quot;
  uint32_t rem;
};
__device__ __forceinline__ Split32 split_u32(int64_t value, int64_t divisor) {
  const auto v = static_cast<uint32_t>(value);
  const auto d = static_cast<uint32_t>(divisor);
  return {v / d, v % d};
}
__device__ __forceinline__ int lane_index() { return static_cast<int>(threadIdx.x % kGroupLanes); }

__device__ __forceinline__ float act_to_float(uint16_t bits, ActType t) {
  return t == ActType::kBF16 ? numeric::bf16_bits_to_float(bits) : numeric::fp16_bits_to_float(bits);
}
__device__ __forceinline__ uint16_t float_to_act(float v, ActType t) {
  return t == ActType::kBF16 ? numeric::float_to_bf16_bits(v) : numeric::float_to_fp16_bits(v);
}

// N consecutive 16-bit elements moved as one aligned vector (N*2 bytes: 4, 8 or 16).
template <int N>
struct alignas(2 * N) Bits16Vec {
  uint16_t v[N];
};
template <int N>
__device__ __forceinline__ void load_bits(const uint16_t* p, uint16_t (&out)[N]) {
  const Bits16Vec<N> vec = *reinterpret_cast<const Bits16Vec<N>*>(p);
#pragma unroll
  for (int i = 0; i < N; ++i) out[i] = vec.v[i];
}
template <int N>
__device__ __forceinline__ void store_bits(uint16_t* p, const uint16_t (&in)[N]) {
  Bits16Vec<N> vec;
#pragma unroll
  for (int i = 0; i < N; ++i) vec.v[i] = in[i];
  *reinterpret_cast<Bits16Vec<N>*>(p) = vec;
}

// Butterfly mask of step k; the math header's table lives in host memory, so the device reads
// this closed form, checked against the table at compile time.
constexpr int butterfly_mask(int step) { return 16 >> step; }
static_assert(butterfly_mask(0) == qk_math::kButterflyMasks[0] &&
                  butterfly_mask(1) == qk_math::kButterflyMasks[1] &&
                  butterfly_mask(2) == qk_math::kButterflyMasks[2] &&
                  butterfly_mask(3) == qk_math::kButterflyMasks[3] &&
                  butterfly_mask(4) == qk_math::kButterflyMasks[4],
              "butterfly order must be the math header's");

// Sum over the 32 lanes of a group, butterfly masks 16, 8, 4, 2, 1 (qk_math::kButterflyMasks).
__device__ __forceinline__ float group_sum(float v) {
#pragma unroll
  for (int step = 0; step < 5; ++step) {
    const int mask = butterfly_mask(step);
    v = qk_math::butterfly_sum_step(v, shfl_xor(v, mask, kGroupLanes));
  }
  return v;
}
__device__ __forceinline__ float group_max(float v) {
#pragma unroll
  for (int step = 0; step < 5; ++step) {
    const int mask = butterfly_mask(step);
    v = qk_math::butterfly_max_step(v, shfl_xor(v, mask, kGroupLanes));
  }
  return v;
}

// RMS reciprocal of the head whose lane-local values are vals[0..N) (dims lane*N ..).
template <int N>
__device__ __forceinline__ float head_rms_inverse(const float (&vals)[N], int head_dim, float eps) {
  const float lane_sum = qk_math::lane_sum_squares(vals, N);
  return qk_math::rms_inverse(group_sum(lane_sum), head_dim, eps);
}

// The cos/sin values each of the lane's N dims uses (dims >= rotary_dim get none). NeoX dims of a
// lane map to N consecutive table columns (one vector load each; (rot/2) % N == 0 is required by
// the launcher); GPT-J pairs share a column, read element by element.
template <int N>
__device__ __forceinline__ void load_cos_sin(const uint16_t* row, int lane, int rotary_dim,
                                             bool is_neox, ActType act, float (&c)[N],
                                             float (&s)[N]) {
  const int half = rotary_dim / 2;
  const int first = lane * N;
  if (is_neox && first + N <= rotary_dim) {
    const int h0 = first % half;
    uint16_t cb[N], sb[N];
    load_bits<N>(row + h0, cb);
    load_bits<N>(row + half + h0, sb);
#pragma unroll
    for (int i = 0; i < N; ++i) {
      c[i] = act_to_float(cb[i], act);
      s[i] = act_to_float(sb[i], act);
    }
    return;
  }
#pragma unroll
  for (int i = 0; i < N; ++i) {
    const int d = first + i;
    c[i] = 0.0f;
    s[i] = 0.0f;
    if (d >= rotary_dim) continue;
    const int h = qk_math::rope_freq_index(d, rotary_dim, is_neox);
    c[i] = act_to_float(row[h], act);
    s[i] = act_to_float(row[half + h], act);
  }
}

// RoPE of a head held as N fp32 values per lane (lane owns dims [lane*N, lane*N+N)), with the
// lane's cos/sin from load_cos_sin. NeoX partners sit (rot/2)/N lanes away at the same slot;
// GPT-J partners in the same lane. Every lane executes the shuffle, so the group stays convergent.
template <int N>
__device__ __forceinline__ void rope_head(float (&vals)[N], int lane, int rotary_dim, bool is_neox,
                                          const float (&c)[N], const float (&s)[N]) {
  const int half = rotary_dim / 2;
  float partner[N];
  if (is_neox) {
    const int dist = half / N;
    const int first = lane * N;
    int src = lane;
    if (first < rotary_dim) src = first < half ? lane + dist : lane - dist;
#pragma unroll
    for (int i = 0; i < N; ++i) partner[i] = shfl_idx(vals[i], src, kGroupLanes);
  } else {
#pragma unroll
    for (int i = 0; i < N; ++i) partner[i] = vals[i ^ 1];
  }
#pragma unroll
  for (int i = 0; i < N; ++i) {
    const int d = lane * N + i;
    if (d >= rotary_dim) continue;
    const float sp = qk_math::rope_partner_negated(d, rotary_dim, is_neox) ? -partner[i] : partner[i];
    vals[i] = qk_math::rope_rotate(vals[i], sp, c[i], s[i]);
  }
}


// Where one lane's N dims of head h of `slot` go, computed once per lane (the per-element form
// is kernels/common/cache_layout.h; these are the same formulas, factored so that element i of the
// lane is base + i*step): K x-packed keeps a lane's N dims inside one x-chunk (N divides x), so
// step 1 and one vector store; V shuffle steps by x, V plain by BS. Small quotients in 32 bits,
// offsets in 64 bits (caches beyond 4 GiB).
struct LaneCacheOffsets {
  int64_t k_base;
  int64_t v_base;
  int64_t v_step;
  int64_t scale;
};
__device__ __forceinline__ LaneCacheOffsets cache_lane_offsets(const CacheParams& c, int64_t heads,
                                                               int64_t head_dim, int64_t slot,
                                                               int64_t h, int lane, int n) {
  const Split32 bo = split_u32(slot, c.block_size);
  const int64_t blk = bo.quot, off = bo.rem;
  const auto x = static_cast<uint32_t>(c.x);
  const auto d0 = static_cast<uint32_t>(lane * n);
  const int64_t block_head = blk * heads + h;
  LaneCacheOffsets o;
  o.k_base = (block_head * (static_cast<uint32_t>(head_dim) / x) + d0 / x) * c.block_size * c.x + off * c.x + d0 % x;
  if (c.v_shuffle) {
    o.v_base = (block_head * (static_cast<uint32_t>(c.block_size) / x) + static_cast<uint32_t>(off) / x) * head_dim * c.x +
               static_cast<int64_t>(d0) * c.x + static_cast<uint32_t>(off) % x;
    o.v_step = c.x;
  } else {
    o.v_base = (block_head * head_dim + d0) * c.block_size + off;
    o.v_step = c.block_size;
  }
  o.scale = block_head * c.block_size + off;
  return o;
}

template <int N>
struct alignas(N) Bytes8Vec {
  uint8_t v[N];
};

// Stores one head's lane-local values into a cache side. `bits` are activation bits (auto) and
// `codes` fp8 codes; only the one matching c.type is read.
template <int N>
__device__ __forceinline__ void store_cache_head(const CacheParams& c, bool is_key,
                                                 const LaneCacheOffsets& o,
                                                 const uint16_t (&bits)[N],
                                                 const uint8_t (&codes)[N]) {
  const bool fp8 = c.type != CacheType::kActivation;
  if (is_key) {
    if (fp8) {
      Bytes8Vec<N> vec;
#pragma unroll
      for (int i = 0; i < N; ++i) vec.v[i] = codes[i];
      *reinterpret_cast<Bytes8Vec<N>*>(static_cast<uint8_t*>(c.k_cache) + o.k_base) = vec;
    } else {
      store_bits<N>(static_cast<uint16_t*>(c.k_cache) + o.k_base, bits);
    }
    return;
  }
#pragma unroll
  for (int i = 0; i < N; ++i) {
    const int64_t e = o.v_base + i * o.v_step;
    if (fp8) {
      static_cast<uint8_t*>(c.v_cache)[e] = codes[i];
    } else {
      static_cast<uint16_t*>(c.v_cache)[e] = bits[i];
    }
  }
}

__device__ __forceinline__ numeric::Fp8Format fp8_format_of(CacheType t) {
  return t == CacheType::kFp8E4M3FN ? numeric::Fp8Format::kE4M3FN : numeric::Fp8Format::kE4M3FNUZ;
}

}  // namespace rcsim::gpu::dev
