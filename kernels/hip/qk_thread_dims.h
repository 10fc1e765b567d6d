// Which 8 dims of a Q/K head a thread of the tiled fused kernel holds, and everything that depends
// on it: the loads and stores of the head, the RMSNorm sum of squares in AITER's order, the RoPE
// partner and coefficients, and the K-cache stores. Two mappings, chosen at launch:
//
//  * ConsecutiveDims: thread t holds dims [8t, 8t+8) (tile_common.h's mapping). Every head dim and
//    every rotary_dim the tiled kernel takes.
//  * MirroredHalves (D = 64 or 128, rotary_dim == D): thread t holds [4t, 4t+4) and
//    [D/2 + 4t, D/2 + 4t + 4): its first four elements are AITER lanes P*t .. P*t+P-1 (P = 4/n),
//    its last four the lanes 16 further on.
//
// Why the second one: in the first, a thread's lanes are neighbours, so every one of the butterfly
// steps 16, 8, 4, 2 is a shuffle of each of its partial sums (8 shuffles a head at D = 128), and the
// NeoX partner of each dim lives half a head away in another thread (4 more shuffles and an unpack).
// Nsight Compute put 14% of the fused bf16 kernel's stall samples on those shuffles (short
// scoreboard). With mirrored halves, step 16 adds the thread's own two halves, lanes l and l+16
// then hold the same sum (IEEE addition commutes), and the steps left shuffle one value each
// (4 shuffles at D = 128, 6 at D = 64); with rotary_dim == D the NeoX partner of each element is
// the thread's own element 4 away, and the cos/sin columns of both halves are the same four. The
// price is two 8-byte accesses per head instead of one 16-byte one; a warp still reads and writes
// whole 32-byte sectors.
#pragma once

#include <cstdint>
#include <type_traits>

#include "kernels/hip/tile_common.h"

namespace rcsim::gpu::tile {

template <int D>
struct ConsecutiveDims {
  static constexpr bool kMirrored = false;
  static __device__ __forceinline__ int first_dim(int t) { return t * kElems; }
  static __device__ __forceinline__ Vec16 load(const uint16_t* head, int t) { return load16(head + t * kElems); }
  static __device__ __forceinline__ void store(uint16_t* head, int t, const Vec16& bits) {
    store16_global(head + t * kElems, bits);
  }
  static __device__ __forceinline__ float sum_squares(const float (&v)[kElems]) { return head_sum_squares<D>(v); }
  template <ActType A, bool kNeox>
  static __device__ __forceinline__ RopeCoeffs rope_coeffs(const void* cos_sin, int64_t pos, int rotary_dim,
                                           int t) {
    return load_rope<A, kNeox>(cos_sin, pos, rotary_dim, t);
  }
  template <ActType A, bool kNeox>
  static __device__ __forceinline__ void rotate(float (&v)[kElems], const Vec16& bits, const RopeCoeffs& rc,
                                int rotary_dim, int t) {
    rope<D, A, kNeox>(v, bits, rc, rotary_dim, t);
  }
  // K cache, x-packed: the 8 dims are one x-chunk piece at `off` (k_cache_offset of first_dim).
  static __device__ __forceinline__ void store_k(uint16_t* cache, int64_t off, int64_t, const Vec16& bits) {
    store16_global(cache + off, bits);
  }
  static __device__ __forceinline__ void store_k_codes(uint8_t* cache, int64_t off, int64_t, const Vec16& codes) {
    store_global_8(cache + off, codes.w[0], codes.w[1]);
  }
};

// Head dims whose halves of 4 elements are whole AITER lanes (n = 4 or 2 elements a lane).
template <int D>
inline constexpr bool kMirrorable = D == 64 || D == 128;

template <int D>
struct MirroredHalves {
  static_assert(kMirrorable<D>, "a half of 4 elements must be whole AITER lanes");
  static constexpr bool kMirrored = true;
  static constexpr int kHalf = D / 2;
  static constexpr int kElemsPerLane = D / qk_math::kLanesPerHead;  // n: 4 or 2
  static constexpr int kLanesPerHalf = 4 / kElemsPerLane;           // P: 1 or 2
  static __device__ __forceinline__ int first_dim(int t) { return 4 * t; }
  // Elements 0..3 are the low half, 4..7 the high half (Vec16 words 0-1 and 2-3).
  static __device__ __forceinline__ Vec16 load(const uint16_t* head, int t) {
    const uint2 lo = *reinterpret_cast<const uint2*>(head + 4 * t);
    const uint2 hi = *reinterpret_cast<const uint2*>(head + kHalf + 4 * t);
    return Vec16{{lo.x, lo.y, hi.x, hi.y}};
  }
  static __device__ __forceinline__ void store(uint16_t* head, int t, const Vec16& bits) {
    store_global_8(head + 4 * t, bits.w[0], bits.w[1]);
    store_global_8(head + kHalf + 4 * t, bits.w[2], bits.w[3]);
  }

  // qk_math::head_sum_squares's order: each lane's sequential sum of squares, then the xor
  // butterfly with masks 16, 8, 4, 2, 1. Lanes k < P are the low half's, lane P + j the high
  // half's partner of lane j (16 lanes on).
  static __device__ __forceinline__ float sum_squares(const float (&v)[kElems]) {
    constexpr int P = kLanesPerHalf;
    float lanes[2 * P];
    lane_sums_of_squares<kElemsPerLane>(v, lanes);
    // Step 16 is inside the thread: lane l adds lane l+16 and lane l+16 adds lane l, one value.
    float part[P];
#pragma unroll
    for (int j = 0; j < P; ++j) part[j] = qk_math::butterfly_sum_step(lanes[j], lanes[P + j]);
    return butterfly_sum<P, D / kElems, qk_math::kLanesPerHead / 4>(part);
  }

  // rotary_dim == D (the launcher's condition). NeoX: element i of either half uses column
  // 4t + i; the low half's partner is the high half negated, the high half's the low half.
  // GPT-J: dims 2c, 2c+1 use column c: the low half columns 2t, 2t+1, the high half D/4 + 2t, +1.
  template <ActType A, bool kNeox>
  static __device__ __forceinline__ RopeCoeffs rope_coeffs(const void* cos_sin, int64_t pos, int rotary_dim,
                                           int t) {
    const uint16_t* row = static_cast<const uint16_t*>(cos_sin) + pos * rotary_dim;
    RopeCoeffs r;
    r.rotates = true;
    if constexpr (kNeox) {
      const uint2 c = *reinterpret_cast<const uint2*>(row + 4 * t);
      const uint2 s = *reinterpret_cast<const uint2*>(row + kHalf + 4 * t);
      float cs[kElems];  // c0..c3 s0..s3
      unpack<A>(Vec16{{c.x, c.y, s.x, s.y}}, cs);
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        r.cos_v[i] = r.cos_v[i + 4] = cs[i];
        r.sin_signed[i] = -cs[4 + i];
        r.sin_signed[i + 4] = cs[4 + i];
      }
    } else {
      const uint32_t* words = reinterpret_cast<const uint32_t*>(row);
      constexpr int kQuarter = D / 4;  // first column of the high half
      float cs[kElems];                // c(lo) c(lo+1) c(hi) c(hi+1) s(lo) s(lo+1) s(hi) s(hi+1)
      unpack<A>(Vec16{{words[t], words[(kQuarter + 2 * t) / 2], words[(kHalf + 2 * t) / 2],
                       words[(kHalf + kQuarter + 2 * t) / 2]}},
                cs);
#pragma unroll
      for (int i = 0; i < 4; ++i) {  // element 2k and 2k+1 of the thread share column k
        r.cos_v[2 * i] = r.cos_v[2 * i + 1] = cs[i];
        r.sin_signed[2 * i] = -cs[4 + i];
        r.sin_signed[2 * i + 1] = cs[4 + i];
      }
    }
    return r;
  }
  template <ActType A, bool kNeox>
  static __device__ __forceinline__ void rotate(float (&v)[kElems], const Vec16&, const RopeCoeffs& rc, int,
                                int) {
    float partner[kElems];
#pragma unroll
    for (int i = 0; i < kElems; ++i) partner[i] = v[kNeox ? i ^ 4 : i ^ 1];
#pragma unroll
    for (int i = 0; i < kElems; ++i) {
      v[i] = qk_math::rope_rotate(v[i], partner[i], rc.cos_v[i], rc.sin_signed[i]);
    }
  }

  // K cache, x-packed [NB, H, D/x, BS, x]: each half is 4 dims inside one x-chunk; the high half
  // is D/2 dims = (D/2)/x chunks of BS*x elements further (x divides D/2).
  static __device__ __forceinline__ void store_k(uint16_t* cache, int64_t off, int64_t block_size,
                                 const Vec16& bits) {
    store_global_8(cache + off, bits.w[0], bits.w[1]);
    store_global_8(cache + off + kHalf * block_size, bits.w[2], bits.w[3]);
  }
  // fp8 codes: w[0] holds the low half's four, w[1] the high half's.
  static __device__ __forceinline__ void store_k_codes(uint8_t* cache, int64_t off, int64_t block_size,
                                       const Vec16& codes) {
    *reinterpret_cast<uint32_t*>(cache + off) = codes.w[0];
    *reinterpret_cast<uint32_t*>(cache + off + kHalf * block_size) = codes.w[1];
  }
};

// The mapping a kernel that rotates takes (host side, at launch): mirrored halves where the head
// dim allows them and the whole head is rotated, else consecutive dims. Calls f with a value of
// the chosen type.
template <int D, class F>
void with_rotating_dims(int64_t rotary_dim, F&& f) {
  if constexpr (kMirrorable<D>) {
    if (rotary_dim == D) {
      f(MirroredHalves<D>{});
      return;
    }
  }
  f(ConsecutiveDims<D>{});
}
// The mapping a kernel that does not rotate takes (rms_norm).
template <int D>
using NonRotatingDims = std::conditional_t<kMirrorable<D>, MirroredHalves<D>, ConsecutiveDims<D>>;

}  // namespace rcsim::gpu::tile
