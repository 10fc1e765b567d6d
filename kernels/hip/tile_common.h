// Device building blocks of the tiled kernels (fused and non-fused), included by .hip files only.
//
// The tiled mapping: a thread owns kElems = 8 consecutive elements of one head (16 bytes of
// bf16/fp16), so a head of D dims is D/8 threads and every global load and store of an activation
// is one 16-byte vector. A block covers kTileTokens consecutive tokens; the threads of a token are
// consecutive, so a warp holds whole heads.
//
// Bit-exactness with the CPU reference (kernels/common/qk_norm_rope_math.h) is kept by computing
// the same association order as AITER's 32-lane mapping: AITER lane l owns n = D/32 contiguous
// elements, so a thread holds kElems/n consecutive AITER lanes and keeps one partial sum per lane.
// The xor butterfly over the 32 lanes (masks 16, 8, 4, 2, 1) becomes a shuffle across threads for
// masks >= lanes-per-thread and an exchange between a thread's own partial sums below that; every
// lane's value after every step is the one the reference computes.
#pragma once

#include <cstdint>

// First: under hipcc the runtime header defines __forceinline__, which RCSIM_HD uses.
#include "kernels/hip/gpu_platform.h"
// (blank line keeps clang-format from reordering the platform header after the math headers)

#include "kernels/common/exact_quotient.h"
#include "kernels/common/fast_divisor.h"
#include "kernels/common/numeric.h"
#include "kernels/common/qk_norm_rope_math.h"
#include "kernels/hip/device_common.h"
#include "kernels/hip/gpu_params.h"

namespace rcsim::gpu::tile {

inline constexpr int kElems = 8;  // elements per thread: 16 bytes of a 16-bit activation
// Tokens per block: 16 so that one block holds a whole 16-byte chunk of the fp8 V-shuffle layout
// (x = 16 tokens) and two of the bf16 one (x = 8).
inline constexpr int kTileTokens = 16;
// Tiles (blocks of kTileTokens tokens, the last one partial) of a batch.
__host__ __device__ inline int64_t tiles_of(int64_t tokens) {
  return (tokens + kTileTokens - 1) / kTileTokens;
}

// The tiled kernels' grid: x is the block's head group, y its tile. Why two dimensions: with one,
// every thread divided blockIdx.x by the run-time group count (~20 instructions of a 32-bit
// division on the launch's dependent chain, in every warp). Blocks are still dispatched x
// fastest, i.e. in the order of the one-dimensional index tile * groups + group, so which blocks
// are resident together (and what a prefetch half a wave ahead finds) is unchanged.
inline constexpr int64_t kMaxGridTiles = 65535;  // the portable limit of gridDim.y
inline bool grid_fits(int64_t tokens, int64_t groups) {
  return tiles_of(tokens) <= kMaxGridTiles && groups >= 1 && groups < (int64_t{1} << 31);
}
inline dim3 tile_grid(int64_t groups, int64_t tokens) {
  return dim3(static_cast<unsigned>(groups), static_cast<unsigned>(tiles_of(tokens)));
}
__device__ __forceinline__ int64_t block_tile_start() {
  return static_cast<int64_t>(blockIdx.y) * kTileTokens;
}
__device__ __forceinline__ int block_group() { return static_cast<int>(blockIdx.x); }

// Launches a tiled kernel: with programmatic dependent launch when `programmatic` (every tiled
// kernel's params carry the choice as programmatic_launch; the kernel starts with
// start_after_previous_grid), else plainly. Why (H200, Qwen3-8B, gpu_bench --quick, three runs,
// medians; bench/results/h200-2026-12-02-nineteenth/): a graph node whose launch overlaps the end
// of the node before takes ~0.3 us less, e.g. the fused kernel bf16 T=64 2.89 -> 2.62 us, fp8
// 3.62 -> 3.36, T=4096 -1.4% / -0.9%, T=32768 unchanged.
template <typename... Params, typename... Args>
void launch_tiled(bool programmatic, void (*kernel)(Params...), dim3 grid, dim3 block,
                  hipStream_t s, Args... args) {
  if (programmatic) {
    launch_programmatic(kernel, grid, block, s, args...);
  } else {
    kernel<<<grid, block, 0, s>>>(args...);
  }
}
// A tiled kernel's first statement: waits (where the launch was programmatic) until the stream's
// previous kernel has completed and its memory is visible, before any load or store, then lets
// the stream's next programmatic launch start; so at most two such launches are in flight.
__device__ __forceinline__ void start_after_previous_grid() {
  wait_for_previous_grid();
  allow_next_grid_launch();
}

template <int D>
struct HeadMap {
  static_assert(D == 64 || D == 128 || D == 256, "head dims of limits::kHeadDimsSupported");
  static constexpr int kThreadsPerHead = D / kElems;                            // 8, 16, 32
  static constexpr int kElemsPerLane = D / qk_math::kLanesPerHead;              // AITER's n
  static constexpr int kLanesPerThread = kElems / kElemsPerLane;                // 4, 2, 1
  static constexpr int kBlockThreads = kTileTokens * kThreadsPerHead;           // 128..512
  static_assert(kThreadsPerHead <= kWarpSizeLanes, "a head's threads must share a warp");
};

// ---- what the launchers check before choosing a tiled kernel ------------------------------------

inline bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }
// A [T, H, D] view every thread can read and write as 16-byte vectors (null = absent, fine).
inline bool view_ok(const HeadsView& v) {
  return v.data == nullptr ||
         (aligned16(v.data) && v.token_stride % kElems == 0 && v.head_stride % kElems == 0);
}

// ---- 16-byte vectors of activations ------------------------------------------------------------

struct alignas(16) Vec16 {
  uint32_t w[4];
};
__device__ __forceinline__ Vec16 load16(const void* p) { return *static_cast<const Vec16*>(p); }
// Shared memory (or any address space): a plain aggregate store.
__device__ __forceinline__ void store16(void* p, const Vec16& v) { *static_cast<Vec16*>(p) = v; }
// Global memory: one vector instruction whatever the surrounding code (gpu_platform.h).
__device__ __forceinline__ void store16_global(void* p, const Vec16& v) {
  store_global_16(p, v.w[0], v.w[1], v.w[2], v.w[3]);
}

// Element i of the vector is the low half of word i/2 for even i (little-endian, as memory).
template <ActType A>
__device__ __forceinline__ void unpack(const Vec16& v, float (&out)[kElems]) {
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    if constexpr (A == ActType::kBF16) {
      out[2 * i] = numeric::bits_float(v.w[i] << 16);
      out[2 * i + 1] = numeric::bits_float(v.w[i] & 0xFFFF0000u);
    } else {
      out[2 * i] = numeric::fp16_bits_to_float(static_cast<uint16_t>(v.w[i] & 0xFFFFu));
      out[2 * i + 1] = numeric::fp16_bits_to_float(static_cast<uint16_t>(v.w[i] >> 16));
    }
  }
}

template <ActType A>
__device__ __forceinline__ uint32_t software_pack(float lo, float hi) {
  if constexpr (A == ActType::kBF16) {
    return numeric::float_to_bf16_bits(lo) | (uint32_t{numeric::float_to_bf16_bits(hi)} << 16);
  } else {
    return numeric::float_to_fp16_bits(lo) | (uint32_t{numeric::float_to_fp16_bits(hi)} << 16);
  }
}

// ---- rare paths, out of line ------------------------------------------------------------------
//
// The software fallbacks (NaN packs and encodes, divisions by a scale outside the one-reciprocal
// range) run for almost no thread, but inlined (four fp8 encodes of ~430 instructions, eight NaN
// packs of ~60) they made up most of the 58% of the fused fp8 kernel's 107 kB of SASS that never
// ran, interleaved with the hot code: Nsight Compute put 26% of its stall samples on instruction
// fetch (no_inst). Out of line they are one copy each, away from the hot path. Their argument is
// eight floats by value: a thread's array passed by reference would need an address, which moves
// it to local memory on the hot path as well.
struct Floats8 {
  float v[kElems];
};
__device__ __forceinline__ Floats8 floats8(const float (&v)[kElems]) {
  Floats8 f;
#pragma unroll
  for (int i = 0; i < kElems; ++i) f.v[i] = v[i];
  return f;
}
template <ActType A>
__device__ __noinline__ Vec16 software_pack8(Floats8 f) {
  Vec16 r;
#pragma unroll
  for (int i = 0; i < 4; ++i) r.w[i] = software_pack<A>(f.v[2 * i], f.v[2 * i + 1]);
  return r;
}

// The packed rounding instruction on 8 values, one per pair: exactly numeric::float_to_*_bits for
// every input but NaN (the instruction's canonical NaN against the reference's quieted payload).
template <ActType A>
__device__ __forceinline__ Vec16 packed_round8(const float (&v)[kElems]) {
  Vec16 r;
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    r.w[i] = A == ActType::kBF16 ? packed_round_bf16x2(v[2 * i], v[2 * i + 1])
                                 : packed_round_fp16x2(v[2 * i], v[2 * i + 1]);
  }
  return r;
}

// Rounds 8 fp32 values to the activation dtype exactly as numeric::float_to_*_bits does. Where
// the device has a packed rounding instruction it does the work (one instruction per pair instead
// of ~6 per element: these kernels are bound by instructions per byte); NaN is the one input on
// which the instruction and the reference differ (canonical NaN vs a quieted payload), so a
// thread holding any NaN redoes its 8 values in software.
template <ActType A>
__device__ __forceinline__ Vec16 pack(const float (&v)[kElems]) {
  if constexpr (kHasPackedRounding) {
    bool any_nan = false;
#pragma unroll
    for (int i = 0; i < kElems; i += 2) any_nan |= either_nan(v[i], v[i + 1]);
    if (!any_nan) return packed_round8<A>(v);
    return software_pack8<A>(floats8(v));  // a NaN: rare, out of line
  } else {
    Vec16 r;
#pragma unroll
    for (int i = 0; i < 4; ++i) r.w[i] = software_pack<A>(v[2 * i], v[2 * i + 1]);
    return r;
  }
}

// Rounds 8 values that this thread's arithmetic produced (a product, a sum, a quotient), or the
// decode of bf16 bits this function returned, exactly as pack does. Where every arithmetic NaN
// is the canonical 0x7FFFFFFF (kArithmeticNanIsCanonical) and the activations are bf16, pack's
// NaN test cannot change a bit: the packed instruction rounds any NaN to 0x7FFF, and so does
// numeric::float_to_bf16_bits for 0x7FFFFFFF ((u >> 16) | 0x40) and for its own 0x7FFF decoded.
// So it is left out there: two roundings a Q/K head, 7 instructions each. Values read from
// memory may hold any NaN and take pack; fp16 keeps the test (software NaN 0x7E00, the
// instruction's 0x7FFF).
template <ActType A>
__device__ __forceinline__ Vec16 pack_computed(const float (&v)[kElems]) {
  if constexpr (kHasPackedRounding && kArithmeticNanIsCanonical && A == ActType::kBF16) {
    return packed_round8<A>(v);
  } else {
    return pack<A>(v);
  }
}

// ---- RMSNorm reduction in AITER's order ---------------------------------------------------------

// qk_math::lane_sum_squares of each of the K AITER lanes a thread holds, n elements each, lane k at
// v[k*n], in the reference's sequential order.
template <int n, int K>
__device__ __forceinline__ void lane_sums_of_squares(const float (&v)[kElems], float (&out)[K]) {
  static_assert(n * K == kElems, "the lanes cover the thread's 8 elements");
#pragma unroll
  for (int k = 0; k < K; ++k) {
    // qk_math::lane_sum_squares starts from 0.0f; 0.0f + x*x == x*x for every x*x (never -0).
    float s = v[k * n] * v[k * n];
#pragma unroll
    for (int i = 1; i < n; ++i) {
      const float sq = v[k * n + i] * v[k * n + i];
      s = s + sq;
    }
    out[k] = s;
  }
}

// The steps kFirstMask, kFirstMask/2, ..., 1 of qk_math::head_sum_squares's xor butterfly, on the
// partial sums of a thread whose j-th value is AITER lane L*t + j (t = thread in head, kThreads
// threads a head): a mask reaching another thread is a shuffle, a smaller one an exchange between
// the thread's own partials. Every thread of the head ends with the same value.
template <int L, int kThreads, int kFirstMask>
__device__ __forceinline__ float butterfly_sum(float (&part)[L]) {
#pragma unroll
  for (int mask = kFirstMask; mask >= 1; mask /= 2) {
    if (mask >= L) {
#pragma unroll
      for (int j = 0; j < L; ++j) {
        part[j] = qk_math::butterfly_sum_step(part[j], shfl_xor(part[j], mask / L, kThreads));
      }
    } else {
      float next[L];
#pragma unroll
      for (int j = 0; j < L; ++j) next[j] = qk_math::butterfly_sum_step(part[j], part[j ^ mask]);
#pragma unroll
      for (int j = 0; j < L; ++j) part[j] = next[j];
    }
  }
  return part[0];
}

// Sum of squares of the head whose 8 elements per thread are `v` (8 consecutive dims), as the
// 32-lane butterfly of qk_math::head_sum_squares computes it. Every thread of the head gets the
// same value.
template <int D>
__device__ __forceinline__ float head_sum_squares(const float (&v)[kElems]) {
  using M = HeadMap<D>;
  float part[M::kLanesPerThread];
  lane_sums_of_squares<M::kElemsPerLane>(v, part);
  return butterfly_sum<M::kLanesPerThread, M::kThreadsPerHead, qk_math::kLanesPerHead / 2>(part);
}

// Max of |v| over the head (fp8 per-token scale). fmaxf is order-free, the butterfly keeps it
// the reference's anyway.
template <int D>
__device__ __forceinline__ float head_amax(const float (&v)[kElems]) {
  float m = 0.0f;
#pragma unroll
  for (int i = 0; i < kElems; ++i) m = qk_math::amax_step(m, v[i]);
#pragma unroll
  for (int mask = HeadMap<D>::kThreadsPerHead / 2; mask >= 1; mask /= 2) {
    m = qk_math::butterfly_max_step(m, shfl_xor(m, mask, HeadMap<D>::kThreadsPerHead));
  }
  return m;
}

// qk_math::rms_inverse (1.0f / sqrtf(sum_sq / D + eps), each step correctly rounded) with one
// range test where the platform has the sequence for it (gpu_platform.h); the rest, rare, as the
// reference writes it.
template <int D>
__device__ __forceinline__ float rms_inverse(float sum_sq, float eps) {
  if constexpr (kHasReciprocalSequences) {
    const float x = sum_sq / static_cast<float>(D) + eps;
    if (numeric::float_bits(x) - kReciprocalRootMinBits <= kReciprocalRootSpan) {
      return reciprocal_root_in_range(x);
    }
  }
  return qk_math::rms_inverse(sum_sq, D, eps);
}

// ---- RoPE ----------------------------------------------------------------------------------

// The cos/sin a thread needs for its 8 dims, loaded once per token and reused for every head.
// `sin_signed` already carries the partner's sign (qk_math::rope_partner_negated): (-p)*s and
// p*(-s) round identically, so the per-element negation moves out of the head loop.
struct RopeCoeffs {
  float cos_v[kElems];
  float sin_signed[kElems];
  bool rotates;  // false: the thread's dims are all >= rotary_dim (pass through)
};

// Requires (launcher): NeoX rotary_dim % 16 == 0, GPT-J rotary_dim % 8 == 0, so a thread's 8
// dims are all rotated or all passed through, and the table columns are 16/8-byte aligned.
template <ActType A, bool kNeox>
__device__ __forceinline__ RopeCoeffs load_rope(const void* cos_sin, int64_t pos, int rotary_dim,
                                                int thread_in_head) {
  RopeCoeffs r;
  r.rotates = thread_in_head * kElems < rotary_dim;
  // A thread past rotary_dim reads the row's first columns and discards them, so the loads take
  // no branch: with one, nvcc moved the caller's position load below it, after the qkv loads
  // instead of beside them, and the bf16 fused kernel lost 4% on the H200 (Qwen3-8B T=32768).
  const int first = r.rotates ? thread_in_head * kElems : 0;
  const int half = rotary_dim / 2;
  const uint16_t* row = static_cast<const uint16_t*>(cos_sin) + pos * rotary_dim;
  if constexpr (kNeox) {
    // first % half without a run-time division: a rotating thread has first < rotary_dim.
    const int h0 = first < half ? first : first - half;
    unpack<A>(load16(row + h0), r.cos_v);
    unpack<A>(load16(row + half + h0), r.sin_signed);
    if (first < half) {
#pragma unroll
      for (int i = 0; i < kElems; ++i) r.sin_signed[i] = -r.sin_signed[i];
    }
  } else {
    // GPT-J: dims 2i, 2i+1 share column first/2 + i: 4 columns, 8 bytes each of cos and sin.
    const uint2 cw = *reinterpret_cast<const uint2*>(row + first / 2);
    const uint2 sw = *reinterpret_cast<const uint2*>(row + half + first / 2);
    float cs[kElems];  // c0 c1 c2 c3 s0 s1 s2 s3
    unpack<A>(Vec16{{cw.x, cw.y, sw.x, sw.y}}, cs);
#pragma unroll
    for (int i = 0; i < kElems / 2; ++i) {
      r.cos_v[2 * i] = r.cos_v[2 * i + 1] = cs[i];
      r.sin_signed[2 * i] = -cs[4 + i];
      r.sin_signed[2 * i + 1] = cs[4 + i];
    }
  }
  if (!r.rotates) {
#pragma unroll
    for (int i = 0; i < kElems; ++i) r.cos_v[i] = r.sin_signed[i] = 0.0f;
  }
  return r;
}

// Rotates the thread's 8 values (already rounded to the activation dtype, held both as floats
// `v` and as their bits). NeoX partners are 8-element blocks half/8 threads away, exchanged as
// packed bits (4 shuffles, exact because the values are representable in 16 bits).
template <int D, ActType A, bool kNeox>
__device__ __forceinline__ void rope(float (&v)[kElems], const Vec16& bits, const RopeCoeffs& rc,
                                     int rotary_dim, int thread_in_head) {
  float partner[kElems];
  if constexpr (kNeox) {
    const int dist = rotary_dim / 2 / kElems;
    const int first = thread_in_head * kElems;
    int src = thread_in_head;
    if (rc.rotates) src = first < rotary_dim / 2 ? thread_in_head + dist : thread_in_head - dist;
    Vec16 pb;
#pragma unroll
    for (int i = 0; i < 4; ++i) pb.w[i] = shfl_idx(bits.w[i], src, HeadMap<D>::kThreadsPerHead);
    unpack<A>(pb, partner);
  } else {
#pragma unroll
    for (int i = 0; i < kElems; ++i) partner[i] = v[i ^ 1];
  }
  if (!rc.rotates) return;
#pragma unroll
  for (int i = 0; i < kElems; ++i) {
    v[i] = qk_math::rope_rotate(v[i], partner[i], rc.cos_v[i], rc.sin_signed[i]);
  }
}

// ---- fp8 -------------------------------------------------------------------------------------

template <CacheType C>
__device__ __forceinline__ constexpr numeric::Fp8Format fp8_format() {
  return C == CacheType::kFp8E4M3FN ? numeric::Fp8Format::kE4M3FN : numeric::Fp8Format::kE4M3FNUZ;
}
// numeric::fp8_max as a constant (gpu_backend_test's sweep compares every scale with a division by
// numeric::fp8_max, so a wrong value here fails it).
template <CacheType C>
inline constexpr float kFp8Max = C == CacheType::kFp8E4M3FN ? 448.0f : 240.0f;

// 1.0f / x, bit for bit: reciprocal_in_range (gpu_platform.h) after one range test where the
// platform has the sequence, the division elsewhere. Why: nvcc's correctly rounded reciprocal runs
// its own range test and branch before the same sequence; the callers' scales are far inside.
__device__ __forceinline__ float reciprocal(float x) {
  if constexpr (kHasReciprocalSequences) {
    if (numeric::float_bits(x) - kReciprocalMinBits <= kReciprocalSpan) {
      return reciprocal_in_range(x);
    }
  }
  return 1.0f / x;
}

// The amaxes whose scale fp8_scale takes by Markstein's correction: bits minus kScaleQuotientMinBits
// at most kScaleQuotientSpan, i.e. the floats of [2^-101, FLT_MAX]. There every intermediate is a
// normal float, so the correction's residual is exact.
inline constexpr uint32_t kScaleQuotientMinBits = 0x0D000000u;
inline constexpr uint32_t kScaleQuotientSpan = 0x7F7FFFFFu - kScaleQuotientMinBits;

// qk_math::fp8_scale_from_amax(amax, fp8_max, floor_amax), bit for bit. The division by the
// constant fp8 max is q0 = a * RN(1/m), then one fma for the exact residual a - q0 * m and one to
// add residual * RN(1/m) (Markstein; exact_quotient.h). nvcc's correctly rounded division runs a
// range test, a branch and a longer sequence, on the dependent chain from a head's amax to its
// codes. gpu_backend_test compares this with the reference for every float amax, floored or not.
template <CacheType C>
__device__ __forceinline__ float fp8_scale(float amax, bool floor_amax) {
  const float a = qk_math::floored_amax(amax, floor_amax);
  constexpr float m = kFp8Max<C>;
  if constexpr (kHasReciprocalSequences) {
    if (numeric::float_bits(a) - kScaleQuotientMinBits <= kScaleQuotientSpan) {
      constexpr float r = 1.0f / m;
      const float q0 = a * r;
      return fmaf(fmaf(-q0, m, a), r, q0);
    }
  }
  return a / m;
}
// The per-token scale of one head: amax / fp8 max, the amax floored iff `floor_amax`. Every thread
// of the head must call it (the amax shuffles). A head whose codes are not stored (`stored`
// false: padded slot, past the work limit, a V token no run stages) may hold zeros, whose scale 0
// would send every division, or the reciprocal, down the GPU's slow path (Nsight Compute: 1.27 M
// slow divisions per fused fp8 launch); its codes are discarded, so it divides by 1.
template <int D, CacheType C>
__device__ __forceinline__ float per_token_scale(const float (&v)[kElems], bool stored,
                                                 bool floor_amax) {
  const float amax = head_amax<D>(v);
  return stored ? fp8_scale<C>(amax, floor_amax) : 1.0f;
}

// numeric::float_to_fp8_bits of 8 values, packed little-endian into w[0..1]: encode_fp8's only
// path where there is no packed convert (e4m3fnuz, or below sm_89), inline; its rare NaN path
// where there is one, out of line (see Floats8).
template <CacheType C>
__device__ __forceinline__ Vec16 software_encode_fp8(const float (&q)[kElems]) {
  constexpr numeric::Fp8Format fmt = fp8_format<C>();
  Vec16 r{{0, 0, 0, 0}};
#pragma unroll
  for (int i = 0; i < kElems; ++i) {
    r.w[i / 4] |= uint32_t{numeric::float_to_fp8_bits(q[i], fmt)} << (8 * (i % 4));
  }
  return r;
}
template <CacheType C>
__device__ __noinline__ Vec16 software_encode_fp8_out_of_line(Floats8 q) {
  return software_encode_fp8<C>(q.v);
}

// fp8 codes of 8 quotients, packed little-endian into w[0..1] (w[2..3] zero), exactly
// numeric::float_to_fp8_bits. e4m3fn uses the packed saturating convert where the device has it;
// a thread holding a NaN quotient redoes its 8 in software (the one input where they differ).
//
// kNanTested false: the caller knows every NaN among the quotients is positive, as in the K
// path, where the quotients' dividends are decodes of bf16/fp16 that the device's own arithmetic
// rounded (kArithmeticNanIsCanonical: a positive NaN), divided by divide_by_scale (whose
// quotient takes the dividend's sign, or is a canonical NaN). Both encodings of a positive NaN
// are 0x7F, so the test cannot change a bit there and is left out (7 instructions a K head).
template <CacheType C, bool kNanTested = true>
__device__ __forceinline__ Vec16 encode_fp8(const float (&q)[kElems]) {
  if constexpr (C == CacheType::kFp8E4M3FN && kHasPackedE4m3fn) {
    if constexpr (kNanTested || !kArithmeticNanIsCanonical) {
      bool any_nan = false;
#pragma unroll
      for (int i = 0; i < kElems; i += 2) any_nan |= either_nan(q[i], q[i + 1]);
      if (any_nan) return software_encode_fp8_out_of_line<C>(floats8(q));
    }
    Vec16 r{{0, 0, 0, 0}};
#pragma unroll
    for (int i = 0; i < kElems / 2; ++i) {
      uint32_t pair = 0;
      (void)packed_e4m3fn_x2(q[2 * i], q[2 * i + 1], pair);  // true: kHasPackedE4m3fn
      r.w[i / 2] |= pair << (16 * (i % 2));
    }
    return r;
  }
  return software_encode_fp8<C>(q);
}

// q[i] = v[i] / scale, bit for bit the true division (kernels/common/exact_quotient.h): one
// reciprocal for the 8 and a two-fma correction each; scales outside the admitted range (amax
// near zero with the floor off, or not finite) divide truly, out of line.
inline __device__ __noinline__ Floats8 divide_truly(Floats8 f, float scale) {
#pragma unroll
  for (int i = 0; i < kElems; ++i) f.v[i] = f.v[i] / scale;
  return f;
}
// qk_math::prepare_divisor, bit for bit, its reciprocal without nvcc's own range test: the
// admitted divisors, [2^-60, 2^60], lie inside reciprocal_in_range's range (whose sweep,
// ReciprocalMatchesTheDivisionOnEveryFloat, proves it equal to 1.0f / x there).
struct ReciprocalInRange {
  __device__ __forceinline__ float operator()(float d) const { return reciprocal_in_range(d); }
};
__device__ __forceinline__ qk_math::PreparedDivisor prepare_divisor(float divisor) {
  static_assert(qk_math::kReciprocalDivisorMin >= 0x1p-126f && qk_math::kReciprocalDivisorMax < 0x1p126f,
                "admitted divisors must lie in reciprocal_in_range's range");
  return qk_math::prepare_divisor_with(divisor, ReciprocalInRange{});
}
__device__ __forceinline__ void divide_by_scale(const float (&v)[kElems], float scale,
                                                float (&q)[kElems]) {
  const qk_math::PreparedDivisor p = prepare_divisor(scale);
  if (p.by_reciprocal) {
#pragma unroll
    for (int i = 0; i < kElems; ++i) q[i] = qk_math::divide_prepared(p, v[i]);
    return;
  }
  const Floats8 t = divide_truly(floats8(v), scale);
#pragma unroll
  for (int i = 0; i < kElems; ++i) q[i] = t.v[i];
}

// ---- paged cache addresses -------------------------------------------------------------------

// Elements per 16 bytes of the cache element type (semantics.md 2.3's x).
template <CacheType C>
inline constexpr int kCacheX = C == CacheType::kActivation ? 8 : 16;

// K x-packed [NB, H, D/x, BS, x]: the thread's 8 dims lie inside one x-chunk (8 divides x), so
// they are one 16-byte (x = 8) or 8-byte (x = 16) store.
template <int D, int X>
__device__ __forceinline__ int64_t k_cache_offset(int64_t block_head, int64_t block_size,
                                                  int64_t off, int first) {
  return ((block_head * (D / X) + first / X) * block_size + off) * X + first % X;
}
// V element (token offset `off` in its page, dim d): shuffle [NB, H, BS/x, D, x] or plain
// [NB, H, D, BS].
template <int D, int X>
__device__ __forceinline__ int64_t v_cache_offset(bool shuffle, int64_t block_head,
                                                  int64_t block_size, int64_t off, int d) {
  if (shuffle) return ((block_head * (block_size / X) + off / X) * D + d) * X + off % X;
  return (block_head * D + d) * block_size + off;
}
// Strides for walking the offsets above without recomputing the page. The next KV head of the
// same page is block_size * D elements on, in the K layout and both V layouts. In V the next dim
// is X elements on (shuffle) or a page of block_size tokens on (plain). The 16-byte chunk holding
// dim d of the x tokens [off, off + x) of a page (off % x == 0) starts at v_cache_offset(..., off,
// d): those x values are contiguous in both layouts.
template <int D>
__device__ __forceinline__ int64_t cache_head_stride(int64_t block_size) {
  return block_size * D;
}
template <int X>
__device__ __forceinline__ int64_t v_dim_stride(bool shuffle, int64_t block_size) {
  return shuffle ? X : block_size;
}

// The page of a slot and the slot's offset in it. A padding slot (< 0) gives page 0, offset 0,
// and its caller stores nothing. The page size comes as the launcher prepared it
// (fast_divisor.h): a multiply, an add and a shift in 32 bits. Why not a division: on int64
// values nvcc tests both high words and, when one is set, as a padding slot's is, calls a 64-bit
// division of ~85 dependent instructions (Nsight Compute at T=1, eighth pass: every fp8 V warp of
// the fused kernel ran it); a 32-bit one by a run-time divisor is still ~20 instructions, in
// every K and V warp. Launchers take the tiled kernels only where fast_divisor_admits(block_size);
// slots are below 2^28 (core/limits.h), inside its dividends.
struct PageSlot {
  int64_t page;
  int64_t offset;
};
__device__ __forceinline__ PageSlot page_slot(int64_t slot, const FastDivisor& block_size) {
  const QuotRem32 s = divide(static_cast<uint32_t>(slot < 0 ? 0 : slot), block_size);
  return {static_cast<int64_t>(s.quot), static_cast<int64_t>(s.rem)};
}

}  // namespace rcsim::gpu::tile
