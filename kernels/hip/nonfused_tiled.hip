// The non-fused kernels (branch C's chain) in the tiled mapping of kernels/hip/tile_common.h: the
// same bits as nonfused_kernels.hip and the CPU reference, at memory bandwidth. Each launcher
// returns false when the tiled form does not apply (head dim, alignment, rotary width, cache
// layout), and nonfused_kernels.hip then runs the reference-mapping kernel.
//
// Shared shape: a block is 16 tokens x one group of heads; a thread owns 8 dims of a head (8
// consecutive, or in rms_norm and rotary two mirrored halves: qk_thread_dims.h) and loops over
// the group's heads, so per-token loads (weights, position, cos/sin, slot) are
// made once per token and every head's load is in flight before the first reduction. Work units
// and their limits (device-side torn writes) are those of core/kernel_interfaces.h, unchanged.
#include <type_traits>

#include "kernels/hip/gpu_runtime.h"
#include "kernels/hip/heads_per_block.h"
#include "kernels/hip/nonfused_tiled.h"
#include "kernels/hip/qk_thread_dims.h"
#include "kernels/hip/v_cache_tile_writer.h"

namespace rcsim::gpu {
namespace {

using tile::HeadMap;
using tile::kElems;
using tile::kTileTokens;
using tile::Vec16;

inline constexpr int kHeadsPerBlock = 4;

// Occupancy bounds (minimum resident threads per SM, which caps registers per thread), chosen by
// measurement on an H200 at Qwen3-8B T=32768, bf16, each variant in one run (gpu_bench --quick,
// bit-exact in gpu_backend_test; BENCHMARKS.md, "Third pass: occupancy"):
//  * rotary: 1280 threads (48 registers, 24 bytes of stack) 85% of copy bandwidth; 1024 threads
//    (56 registers) 78%, as without a bound in the previous run; 1536 threads (40 registers, 64
//    bytes of stack) 65%. Declared with a minimum of one block, nvcc took 70 registers: 72%.
//  * cache writer: 1024 threads (64 registers) 68% for bf16, 1280 threads 62%. Declared with a
//    minimum of one block, nvcc took 96 registers for bf16 (58%) and 78 for the per-token fp8
//    writer (26%, against 32-33% at 60-64 registers), so every cache type takes the 1024 bound.
template <int D>
inline constexpr int kRotaryMinBlocksPerSm = 1280 / HeadMap<D>::kBlockThreads;
template <int D>
inline constexpr int kCacheMinBlocksPerSm = 1024 / HeadMap<D>::kBlockThreads;

using dev::unit_allowed;
using tile::aligned16;
using tile::view_ok;
bool dim_ok(int64_t d) { return d == 64 || d == 128 || d == 256; }
__host__ __device__ inline int64_t groups_of(int64_t heads) { return (heads + kHeadsPerBlock - 1) / kHeadsPerBlock; }
template <int kV>
__host__ __device__ inline int64_t v_groups_of(int64_t heads) {
  return (heads + kV - 1) / kV;
}
// V heads per block of the cache writer once a launch fills the device (heads_per_block.h's top
// band): fp8 caches take 4 rather than tile::kVHeadsPerBlock's 2, so that the run search and its
// barriers serve twice the heads. Measured on the H200 (Qwen3-8B, per-token fp8 writer, gpu_bench
// --quick, alternated; bench/results/h200-2026-11-30-stores/): 103.0 -> 90.2 us at T=32768, 17.0
// -> 16.3 us at T=4096 (decode slots: +0.8% and +2.8%), but 2.9 -> 3.5 us at T=1 and 6.6 -> 7.9 us
// at T=1024, hence only in the top band (tile::fills_device).
// The fused kernel takes 4 only in longer launches, and only where 4 fit its registers
// (fused_qk_norm_rope_cache_tiled.hip, kVHeadsWide and launch_with).
template <int D, CacheType C>
inline constexpr int kCacheVHeadsFull =
    C != CacheType::kActivation && D != 256 ? 4 : tile::kVHeadsPerBlock<D, C>;
// Only that instance, which only launches that fill the device take, maps the fp8 V rows to the
// tile's run (v_cache_tile_writer.h, kRowsTakeRun): per-token writer -1.9% at T=32768, -1.6% at
// T=4096 (H200); in every instance it cost T <= 256 1.3-3.2%
// (bench/results/h200-2026-12-01-twelfth/).
template <int D, CacheType C, int kV>
inline constexpr bool kCacheRowsTakeRun = kV > tile::kVHeadsPerBlock<D, C>;
using tile::tiles_of;

// Unconditional head loads (last_or): rms_norm and rotary load every head of a block whether or
// not it exists, so that the loads share one basic block with the per-token loads (rotary -6.5%,
// rms_norm -0.5 to -4% on an H200, bench/results/h200-2026-11-30-mirrored/, call 4). Heads past
// `count` (the last group of an uneven head count) re-read the last head and are never used. The
// fused kernel and the cache writer keep `if (h < count)`: there the same change was 0.2-5% slower.
__device__ __forceinline__ int64_t last_or(int h, int64_t count) {
  return h < count ? h : count - 1;
}

template <typename T>
__device__ __forceinline__ T* head_ptr(const HeadsView& v, int64_t token, int64_t head, int first) {
  return static_cast<T*>(v.data) + token * v.token_stride + head * v.head_stride + first;
}

// Runs K<D, A>::launch for the run-time head dim and activation type.
template <template <int, ActType> class K, typename P>
void dispatch(const P& p, hipStream_t s) {
  auto act = [&](auto d_tag) {
    constexpr int D = decltype(d_tag)::value;
    if (p.act == ActType::kBF16) {
      K<D, ActType::kBF16>::launch(p, s);
    } else {
      K<D, ActType::kFP16>::launch(p, s);
    }
  };
  switch (p.head_dim) {
    case 64: act(std::integral_constant<int, 64>{}); break;
    case 128: act(std::integral_constant<int, 128>{}); break;
    case 256: act(std::integral_constant<int, 256>{}); break;
    default: break;
  }
}

// ---- rms_norm: units g = token*H + head; one rounding on store -------------------------------
template <int D, ActType A>
__global__ void __launch_bounds__(HeadMap<D>::kBlockThreads) rms_norm_tiled(RmsNormParams p) {
  tile::start_after_previous_grid();
  using M = HeadMap<D>;
  using Dims = tile::NonRotatingDims<D>;  // qk_thread_dims.h
  const int64_t tile_start = tile::block_tile_start();  // grid: tile::tile_grid
  const int64_t head0 = static_cast<int64_t>(tile::block_group()) * kHeadsPerBlock;
  const int64_t count = p.num_heads - head0 < kHeadsPerBlock ? p.num_heads - head0 : kHeadsPerBlock;
  const int tid = static_cast<int>(threadIdx.x);
  const int t = tid % M::kThreadsPerHead;
  const int64_t token = tile_start + tid / M::kThreadsPerHead;
  const bool in_batch = token < p.num_tokens;
  const int64_t tc = in_batch ? token : p.num_tokens - 1;
  Vec16 raw[kHeadsPerBlock];
#pragma unroll
  for (int h = 0; h < kHeadsPerBlock; ++h) {  // unconditional: see last_or
    raw[h] = Dims::load(head_ptr<const uint16_t>(p.in, tc, head0 + last_or(h, count), 0), t);
  }
  float w[kElems];
  tile::unpack<A>(Dims::load(static_cast<const uint16_t*>(p.weight), t), w);
#pragma unroll
  for (int h = 0; h < kHeadsPerBlock; ++h) {
    if (h >= count) break;
    float v[kElems];
    tile::unpack<A>(raw[h], v);
    const float rcp = qk_math::rms_inverse(Dims::sum_squares(v), D, p.eps);
#pragma unroll
    for (int i = 0; i < kElems; ++i) v[i] = qk_math::rms_normalise(v[i], rcp, w[i]);
    const Vec16 out = tile::pack<A>(v);
    if (in_batch && unit_allowed(token * p.num_heads + head0 + h, p.max_units)) {
      Dims::store(head_ptr<uint16_t>(p.out, token, head0 + h, 0), t, out);
    }
  }
}
template <int D, ActType A>
struct RmsNormLaunch {
  static void launch(const RmsNormParams& p, hipStream_t s) {
    const dim3 grid = tile::tile_grid(groups_of(p.num_heads), p.num_tokens);
    tile::launch_tiled(p.programmatic_launch, rms_norm_tiled<D, A>, grid,
                       dim3(HeadMap<D>::kBlockThreads), s, p);
  }
};

// ---- rotary: q units g = token*Hq + head, then k units T*Hq + token*Hkv + head -----------------
template <int D, ActType A, bool kNeox, class Dims>
__global__ void __launch_bounds__(HeadMap<D>::kBlockThreads, kRotaryMinBlocksPerSm<D>)
    rotary_tiled(RotaryParams p) {
  tile::start_after_previous_grid();
  using M = HeadMap<D>;
  const int64_t q_groups = groups_of(p.num_heads_q);
  const int64_t k_heads = p.k.data != nullptr ? p.num_heads_kv : 0;
  const int64_t tile_start = tile::block_tile_start();  // grid: tile::tile_grid
  const int64_t group = tile::block_group();
  const bool is_q = group < q_groups;
  const int64_t heads = is_q ? p.num_heads_q : k_heads;
  const int64_t head0 = (is_q ? group : group - q_groups) * kHeadsPerBlock;
  const int64_t count = heads - head0 < kHeadsPerBlock ? heads - head0 : kHeadsPerBlock;
  const HeadsView view = is_q ? p.q : p.k;  // by value: a reference picked at run time would copy the params to local memory
  const int tid = static_cast<int>(threadIdx.x);
  const int t = tid % M::kThreadsPerHead;
  const int64_t token = tile_start + tid / M::kThreadsPerHead;
  const bool in_batch = token < p.num_tokens;
  const int64_t tc = in_batch ? token : p.num_tokens - 1;
  Vec16 raw[kHeadsPerBlock];
#pragma unroll
  for (int h = 0; h < kHeadsPerBlock; ++h) {
    if constexpr (Dims::kMirrored) {  // unconditional: see last_or
      raw[h] = Dims::load(head_ptr<const uint16_t>(view, tc, head0 + last_or(h, count), 0), t);
    } else if (h < count) {  // here unconditional loads spilled 24 more bytes (ptxas -v)
      raw[h] = Dims::load(head_ptr<const uint16_t>(view, tc, head0 + h, 0), t);
    }
  }
  const int rot = static_cast<int>(p.rotary_dim);
  const tile::RopeCoeffs rc =
      Dims::template rope_coeffs<A, kNeox>(p.cos_sin, p.positions[tc], rot, t);
#pragma unroll
  for (int h = 0; h < kHeadsPerBlock; ++h) {
    if (h >= count) break;
    float v[kElems];
    tile::unpack<A>(raw[h], v);
    Dims::template rotate<A, kNeox>(v, raw[h], rc, rot, t);
    const Vec16 out = tile::pack<A>(v);
    const int64_t g = is_q ? token * p.num_heads_q + head0 + h
                           : p.num_tokens * p.num_heads_q + token * p.num_heads_kv + head0 + h;
    if (in_batch && unit_allowed(g, p.max_units)) {
      Dims::store(head_ptr<uint16_t>(view, token, head0 + h, 0), t, out);
    }
  }
}
template <int D, ActType A>
struct RotaryLaunch {
  static void launch(const RotaryParams& p, hipStream_t s) {
    const int64_t k_heads = p.k.data != nullptr ? p.num_heads_kv : 0;
    const dim3 grid = tile::tile_grid(groups_of(p.num_heads_q) + groups_of(k_heads), p.num_tokens);
    const dim3 block(HeadMap<D>::kBlockThreads);
    if (p.is_neox) {
      launch_dims<true>(p, grid, block, s);
    } else {
      launch_dims<false>(p, grid, block, s);
    }
  }
  // A thread's dims: qk_thread_dims.h's choice for a rotating kernel.
  template <bool kNeox>
  static void launch_dims(const RotaryParams& p, dim3 grid, dim3 block, hipStream_t s) {
    tile::with_rotating_dims<D>(p.rotary_dim, [&](auto dims) {
      tile::launch_tiled(p.programmatic_launch, rotary_tiled<D, A, kNeox, decltype(dims)>, grid,
                         block, s, p);
    });
  }
};

// ---- cache writers: K heads in groups, then one V head per block -----------------------------
// Per-tensor (reshape_and_cache, units = tokens) and per-token (units = token*Hkv + head) fp8
// differ in the scale and the unit of the work limit; "auto" copies the bits.
struct CacheJob {
  HeadsView key, value;
  const int64_t* slots;
  CacheParams cache;
  int64_t num_tokens, num_heads_kv;
  bool per_token;     // scale = amax/fp8_max per (token, head), stored; else the fixed scales
  bool amax_floor;
  float k_scale, v_scale;  // per-tensor
  int64_t max_units;
  ActType act;
  int64_t head_dim;
  FastDivisor page;  // cache.block_size, prepared (tile::page_slot)
  // Set by launch_cache_blocks: heads per K / V block (at most kHeadsPerBlock and the kernel's
  // kV), the K groups and all groups of a tile. Computed on the host:
  // divided in the kernel by the run-time head counts, they cost the issue-bound per-token fp8
  // writer 5% on the H200 (64-bit divisions in every thread).
  int k_per_block = 0;
  int v_per_block = 0;
  int64_t k_groups = 0;
  int64_t groups = 0;
  bool programmatic_launch = true;  // the writer's params' field (gpu_params.h)
};

// The thread's 8 cache elements of one head (bits, or fp8 codes of v * (1/scale)); stores the
// per-token scale when `store_scale`.
template <int D, ActType A, CacheType C>
__device__ __forceinline__ Vec16 cache_elements(const CacheJob& j, const Vec16& raw, bool is_key,
                                                bool store_scale, int64_t scale_index, int t) {
  if constexpr (C == CacheType::kActivation) {
    return raw;
  } else {
    float v[kElems];
    tile::unpack<A>(raw, v);
    float scale = is_key ? j.k_scale : j.v_scale;
    // Callers pass store_scale = false exactly when these codes are not stored.
    if (j.per_token) scale = tile::per_token_scale<D, C>(v, store_scale, j.amax_floor);
    const float rcp = tile::reciprocal(scale);  // qk_math::scale_reciprocal's bits
    float q[kElems];
#pragma unroll
    for (int i = 0; i < kElems; ++i) q[i] = qk_math::fp8_multiply_quotient(v[i], rcp);
    // No NaN test (encode_fp8<C, false>) where every NaN a product returns is the canonical +NaN
    // (kArithmeticNanIsCanonical): both encodings give it 0x7F.
    const Vec16 codes = tile::encode_fp8<C, false>(q);
    if (j.per_token && store_scale && t == 0) {
      (is_key ? j.cache.k_scale : j.cache.v_scale)[scale_index] = scale;
    }
    return codes;
  }
}

// The K heads [group * k_per_block, ...) of the tile's tokens: one token per row of threads.
template <int D, ActType A, CacheType C>
__device__ __forceinline__ void write_k_heads(const CacheJob& j, int64_t tile_start, int64_t group) {
  using M = HeadMap<D>;
  constexpr int X = tile::kCacheX<C>;
  const int tid = static_cast<int>(threadIdx.x);
  const int t = tid % M::kThreadsPerHead;
  const int first = t * kElems;
  const int64_t bs = j.cache.block_size;
  const int64_t head0 = group * j.k_per_block;
  const int64_t count = j.num_heads_kv - head0 < j.k_per_block ? j.num_heads_kv - head0 : j.k_per_block;
  const int64_t token = tile_start + tid / M::kThreadsPerHead;
  const bool in_batch = token < j.num_tokens;
  const int64_t tc = in_batch ? token : j.num_tokens - 1;
  const int64_t slot = j.slots[tc];
  const tile::PageSlot ps = tile::page_slot(slot, j.page);
  // Head h's row is h head strides past head0's: one 64-bit product per thread, not one per head.
  const uint16_t* row0 = head_ptr<const uint16_t>(j.key, tc, head0, first);
  Vec16 raw[kHeadsPerBlock];
#pragma unroll
  for (int h = 0; h < kHeadsPerBlock; ++h) {
    if (h < count) raw[h] = tile::load16(row0 + h * j.key.head_stride);
  }
  // Head head0's cache offset, scale index and work unit, each computed once: the next head's
  // are one stride on (cache_head_stride; bs; one unit with per-token fp8, whose units are
  // (token, head), and none where units are tokens). Computed per head, their 64-bit products
  // were the largest opcode of the per-token fp8 writer (IMAD 19% of its instructions, Nsight
  // Compute).
  const int64_t block_head0 = ps.page * j.num_heads_kv + head0;
  const int64_t off0 = tile::k_cache_offset<D, X>(block_head0, bs, ps.offset, first);
  const int64_t scale_at0 = block_head0 * bs + ps.offset;
  const int64_t unit0 = j.per_token ? token * j.num_heads_kv + head0 : token;
  const int unit_per_head = j.per_token ? 1 : 0;
  const int64_t head_stride = tile::cache_head_stride<D>(bs);
#pragma unroll
  for (int h = 0; h < kHeadsPerBlock; ++h) {
    if (h >= count) break;
    const bool store = in_batch && slot >= 0 && unit_allowed(unit0 + h * unit_per_head, j.max_units);
    const Vec16 e = cache_elements<D, A, C>(j, raw[h], true, store, scale_at0 + h * bs, t);
    if (!store) continue;
    const int64_t off = off0 + h * head_stride;
    if constexpr (C == CacheType::kActivation) {
      tile::store16_global(static_cast<uint16_t*>(j.cache.k_cache) + off, e);
    } else {
      store_global_8(static_cast<uint8_t*>(j.cache.k_cache) + off, e.w[0], e.w[1]);
    }
  }
}

template <int D, ActType A, CacheType C, int kV>
__global__ void __launch_bounds__(HeadMap<D>::kBlockThreads, kCacheMinBlocksPerSm<D>)
    cache_tiled(CacheJob j) {
  tile::start_after_previous_grid();
  using M = HeadMap<D>;
  const int64_t k_groups = j.k_groups;
  const int64_t tile_start = tile::block_tile_start();  // grid: tile::tile_grid
  const int64_t group = tile::block_group();
  const int tid = static_cast<int>(threadIdx.x);
  const int t = tid % M::kThreadsPerHead;
  const int first = t * kElems;
  const int64_t bs = j.cache.block_size;
  if (group < k_groups) {
    write_k_heads<D, A, C>(j, tile_start, group);
    return;
  }
  const int64_t kv0 = (group - k_groups) * j.v_per_block;
  const int count = static_cast<int>(j.num_heads_kv - kv0 < j.v_per_block ? j.num_heads_kv - kv0
                                                                           : j.v_per_block);
  tile::VTileArgs a;
  a.slots = j.slots;
  a.num_tokens = j.num_tokens;
  a.tile_start = tile_start;
  a.head0 = kv0;
  a.count = count;
  a.num_heads_kv = j.num_heads_kv;
  a.block_size = bs;
  a.page = j.page;
  a.cache = j.cache.v_cache;
  a.shuffle = j.cache.v_shuffle;
  // Units: token*Hkv + head (per-token quant) or the token (reshape_and_cache).
  a.unit_token_stride = j.per_token ? j.num_heads_kv : 1;
  a.unit_base = j.per_token ? kv0 : 0;
  a.unit_head_stride = j.per_token ? 1 : 0;
  a.max_units = j.max_units;
  const uint16_t* rows = head_ptr<const uint16_t>(j.value, 0, kv0, first);  // token 0, head kv0
  const auto load = [&](int64_t token, int h) {
    return tile::load16(rows + token * j.value.token_stride + h * j.value.head_stride);
  };
  // fp8 only (write_v_tile): own rows loaded before the run search (H200: per-token fp8 writer
  // -4%, reshape_and_cache bf16 +2.4%) and the pass-0 vote (-4.3% at T=32768; bf16 +3% at T<=256).
  constexpr bool kFp8 = C != CacheType::kActivation;
  constexpr bool kRowsTakeRun = kCacheRowsTakeRun<D, C, kV>;
  tile::write_v_tile<D, C, kV, kFp8, kFp8, kRowsTakeRun>(a, load, [&](unsigned need, int64_t slot,
                                                                     Vec16 (&e)[kV]) {
    const tile::PageSlot ps = tile::page_slot(slot, j.page);
    const int64_t scale_at = (ps.page * j.num_heads_kv + kv0) * bs + ps.offset;
#pragma unroll
    for (int h = 0; h < kV; ++h) {
      e[h] = cache_elements<D, A, C>(j, e[h], false, (need >> h) & 1u, scale_at + h * bs, t);
    }
  });
}

template <int D, ActType A, CacheType C, int kV>
void launch_cache_blocks(CacheJob j, int64_t blocks_at_max, hipStream_t s) {
  j.k_per_block = tile::heads_per_block(kHeadsPerBlock, 2, blocks_at_max);
  j.v_per_block = tile::heads_per_block(kV, 2, blocks_at_max);
  j.k_groups = (j.num_heads_kv + j.k_per_block - 1) / j.k_per_block;
  j.groups = j.k_groups + (j.num_heads_kv + j.v_per_block - 1) / j.v_per_block;
  tile::launch_tiled(j.programmatic_launch, cache_tiled<D, A, C, kV>,
                     tile::tile_grid(j.groups, j.num_tokens), dim3(HeadMap<D>::kBlockThreads), s, j);
}
template <int D, ActType A, CacheType C>
void launch_cache_job(const CacheJob& j, hipStream_t s) {
  constexpr int kV = tile::kVHeadsPerBlock<D, C>;
  constexpr int kVFull = kCacheVHeadsFull<D, C>;
  // Small batches take fewer heads per block (heads_per_block.h); full launches, more V heads.
  const int64_t blocks_at_max =
      tiles_of(j.num_tokens) * (groups_of(j.num_heads_kv) + v_groups_of<kV>(j.num_heads_kv));
  if (kVFull != kV && tile::fills_device(blocks_at_max)) {
    launch_cache_blocks<D, A, C, kVFull>(j, blocks_at_max, s);
  } else {
    launch_cache_blocks<D, A, C, kV>(j, blocks_at_max, s);
  }
}
template <int D, ActType A>
struct CacheLaunch {
  static void launch(const CacheJob& j, hipStream_t s) {
    switch (j.cache.type) {
      case CacheType::kActivation: launch_cache_job<D, A, CacheType::kActivation>(j, s); break;
      case CacheType::kFp8E4M3FN: launch_cache_job<D, A, CacheType::kFp8E4M3FN>(j, s); break;
      case CacheType::kFp8E4M3FNUZ: launch_cache_job<D, A, CacheType::kFp8E4M3FNUZ>(j, s); break;
    }
  }
};
bool cache_ok(const CacheParams& c, const HeadsView& key, const HeadsView& value, int64_t d) {
  const int64_t x = c.type == CacheType::kActivation ? 8 : 16;
  return dim_ok(d) && c.x == x && c.block_size % x == 0 && fast_divisor_admits(c.block_size) &&
         aligned16(c.k_cache) && aligned16(c.v_cache) && view_ok(key) && view_ok(value);
}

}  // namespace

bool launch_rms_norm_tiled(const RmsNormParams& p, void* stream) {
  if (!dim_ok(p.head_dim) || !view_ok(p.in) || !view_ok(p.out) || !aligned16(p.weight) ||
      !tile::grid_fits(p.num_tokens, groups_of(p.num_heads))) {
    return false;
  }
  dispatch<RmsNormLaunch>(p, static_cast<hipStream_t>(stream));
  return true;
}

bool launch_rotary_tiled(const RotaryParams& p, void* stream) {
  const bool rot_ok = p.is_neox ? p.rotary_dim % 16 == 0 : p.rotary_dim % 8 == 0;
  if (!dim_ok(p.head_dim) || !rot_ok || !view_ok(p.q) || !view_ok(p.k) || !aligned16(p.cos_sin) ||
      !tile::grid_fits(p.num_tokens, groups_of(p.num_heads_q) + groups_of(p.num_heads_kv))) {
    return false;
  }
  dispatch<RotaryLaunch>(p, static_cast<hipStream_t>(stream));
  return true;
}

bool launch_reshape_and_cache_tiled(const ReshapeCacheParams& p, void* stream) {
  if (!cache_ok(p.cache, p.key, p.value, p.head_dim) || !tile::grid_fits(p.num_tokens, 2 * p.num_heads_kv)) {
    return false;
  }
  CacheJob j{p.key,  p.value,     p.slots,     p.cache,     p.num_tokens,
                   p.num_heads_kv, false, false,   p.k_scale,   p.v_scale,
                   p.max_units, p.act, p.head_dim, make_fast_divisor(static_cast<uint32_t>(p.cache.block_size))};
  j.programmatic_launch = p.programmatic_launch;
  dispatch<CacheLaunch>(j, static_cast<hipStream_t>(stream));
  return true;
}

bool launch_per_token_quant_cache_tiled(const PerTokenQuantParams& p, void* stream) {
  if (!cache_ok(p.cache, p.key, p.value, p.head_dim) || !tile::grid_fits(p.num_tokens, 2 * p.num_heads_kv)) {
    return false;
  }
  CacheJob j{p.key,  p.value,     p.slots,       p.cache,    p.num_tokens,
                   p.num_heads_kv, true, p.amax_floor, 1.0f,       1.0f,
                   p.max_units, p.act, p.head_dim, make_fast_divisor(static_cast<uint32_t>(p.cache.block_size))};
  j.programmatic_launch = p.programmatic_launch;
  dispatch<CacheLaunch>(j, static_cast<hipStream_t>(stream));
  return true;
}

}  // namespace rcsim::gpu
