// Branch A on the GPU, bandwidth-bound form: fused_qk_norm_rope_cache_quant_shuffle with the
// tiled mapping of kernels/hip/tile_common.h. Must match rcsim::cpu::CpuFusedQkNormRopeCache bit
// for bit, as the reference-mapping kernel (fused_qk_norm_rope_cache.hip) does; the launcher there
// picks this one whenever `tiled_fused_supported` holds.
//
// Why this shape (BENCHMARKS.md has the profile): the kernel moves ~26.9 kB per token and does
// almost no arithmetic, so it is bound by instructions per byte unless each instruction moves
// 16 bytes and per-token work is shared. Here:
//  * 8 elements per thread per head: half the warp instructions per head of AITER's 32 lanes x
//    8 bytes for D = 128. Which 8 is qk_thread_dims.h's choice: where the whole head is rotated
//    (D 64 or 128), a thread holds two mirrored halves, so the NeoX partner and the first
//    butterfly step are inside the thread (H200, Qwen3-8B: fused bf16 -3.7%, fp8 -5.8% at
//    T=32768, 10% fewer instructions, against 8 consecutive dims);
//  * a block is 16 tokens x one head group; a Q/K thread processes several heads of its token, so
//    the position, the weights and the cos/sin values are loaded and converted once per token, and
//    every head's load is issued before the first reduction;
//  * dtype, cache type, head dim and rotary style are template parameters (no run-time switches
//    in the loop); rounding to bf16/fp16 uses the packed convert instruction where there is one;
//  * V goes through v_cache_tile_writer.h: whole 16-byte chunks of x tokens instead of 2-byte
//    stores at a 16-byte stride;
//  * fp8 stores divide by the head's scale through one reciprocal per head and a two-fma
//    correction (tile::divide_by_scale, proved against the true division), instead of a full
//    IEEE division per element;
//  * rare software paths (NaN packs and encodes) are out of line, so the hot code stays compact
//    (tile_common.h, Floats8);
//  * a launch of fewer blocks than SMs (one head per block) takes a kernel compiled for one head,
//    whose chain is shorter (kOneHeadKernel);
//  * with a bf16/fp16 cache, in launches of four waves or more, a block first asks L2 for what the
//    block of its head group half a wave later reads (prefetch_tiles_of): the kernel waits on
//    its loads at half the warps resident, and this hides part of that wait.
// Work units and torn writes are unchanged: unit g = token*(Hq+2Hkv) + head is written iff
// g < max_units, whichever block runs it.
#include "kernels/hip/fused_tiled.h"
#include "kernels/hip/gpu_runtime.h"
#include "kernels/hip/heads_per_block.h"
#include "kernels/hip/qk_thread_dims.h"
#include "kernels/hip/v_cache_tile_writer.h"

namespace rcsim::gpu {
namespace {

using tile::HeadMap;
using tile::kElems;
using tile::kTileTokens;
using tile::Vec16;

// Heads per block at most: Q heads share one block's per-token loads four at a time; K heads also
// write the cache, kKHeadsWide at a time in launches of kKWideMinWaves waves or more and
// kKHeadsMid at a time below; V heads tile::kVHeadsPerBlock at a time (shared-memory staging),
// or kVHeadsWide in long launches (launch_with). Small batches take fewer (tiling_of,
// heads_per_block.h).
//
// Four K heads (H200, Qwen3-8B, gpu_bench --quick, three alternated runs each, medians;
// bench/results/h200-2026-12-02-sixteenth/ab/call2_*): the fused fp8 kernel went from 35.41 to
// 34.48 us at T=4096 (-2.6%) and from 238.08 to 235.06 at T=32768 (-1.3%), bf16 T=32768 -0.9%,
// 2.6% (fp8) and 4.1% (bf16) fewer warp instructions: the K heads' per-token work (weights,
// position, cos/sin, slot, addresses) is shared by four. But at T=1024 (1.5 waves) fp8 went from
// 11.67 to 12.06 us (+3.3%), hence two K heads below four waves, as before. With that band
// (call3_*, against two K heads): fp8 T=4096 -2.2%, T=32768 -1.0%, T=1024 unchanged, bf16 T=32768
// -0.8%; fp8 T=1 and T=8 +1.6% and +2.6% (the kernel is compiled for four). Only where a thread
// holds mirrored halves (the whole head rotated, as in Qwen3): with 8 consecutive dims (partial
// rotary) four K heads spill 44-84 bytes under the 64-register bound (ptxas -v, sm_90; 0-16
// before), and those shapes were not timed.
inline constexpr int kQHeadsPerBlock = 4;
inline constexpr int kKHeadsMid = 2;
template <class Dims>
inline constexpr int kKHeadsWide = Dims::kMirrored ? 4 : kKHeadsMid;
inline constexpr int64_t kKWideMinWaves = 4;
// Which instances have a second kernel, compiled for four fp8 V heads per block, that long
// launches take (launch_with): those of the measured shape (head dim 128, NeoX, bf16 activations,
// the whole head rotated, as in every Qwen3 model). Four fit the 64-register bound there (ptxas -v,
// sm_90); with 8 consecutive dims per thread (partial rotary) they spill 24-68 bytes. Other shapes
// keep one kernel: each second one is another instance to compile for every architecture CI
// builds, and this file is the longest compile of the GPU stage.
template <int D, ActType A, CacheType C, bool kNeox, class Dims>
inline constexpr int kVHeadsWide =
    C != CacheType::kActivation && D == 128 && A == ActType::kBF16 && kNeox && Dims::kMirrored
        ? 4
        : tile::kVHeadsPerBlock<D, C>;

struct Tiling {
  int q_per_block, k_per_block, v_per_block;  // at most kQHeadsPerBlock, kKHeadsWide, kVHeadsWide
  int64_t q_groups;
  int64_t k_groups;
  int64_t groups;  // q_groups + k_groups + V groups
  int64_t prefetch_tiles = 0;  // a block prefetches its group's rows this many tiles on (0: none)
  FastDivisor page;            // the cache's block_size, prepared (tile::page_slot)
};

Tiling tiling_with(const FusedParams& p, int q, int k, int v) {  // heads per block of each kind
  Tiling t;
  t.q_per_block = q;
  t.k_per_block = k;
  t.v_per_block = v;
  t.q_groups = (p.num_heads_q + q - 1) / q;
  t.k_groups = (p.num_heads_kv + k - 1) / k;
  t.groups = t.q_groups + t.k_groups + (p.num_heads_kv + v - 1) / v;
  t.page = make_fast_divisor(static_cast<uint32_t>(p.cache.block_size));  // admitted: tiled_fused_supported
  return t;
}
// Small batches take fewer heads per block (heads_per_block.h); k_max, v_max: K and V heads at most;
// `resident`: the instance's blocks resident on the device at once (0 if unknown).
Tiling tiling_of(const FusedParams& p, int k_max, int v_max, int64_t resident) {
  const Tiling full = tiling_with(p, kQHeadsPerBlock, kKHeadsMid, v_max);
  const int64_t blocks = tile::tiles_of(p.num_tokens) * full.groups;
  const bool k_wide = resident > 0 && blocks >= kKWideMinWaves * resident;
  return tiling_with(p, tile::heads_per_block(kQHeadsPerBlock, 2, blocks),
                     k_wide ? k_max : tile::heads_per_block(kKHeadsMid, 1, blocks),
                     tile::heads_per_block(v_max, 2, blocks));
}

// Before its own work, a block asks L2 for what the block of the same head group `prefetch_tiles`
// tiles on will read: the qkv rows of heads [head0, head0 + count) of those tokens (contiguous in
// each token's row), their positions and their slots. The launcher's rule and its measurements:
// prefetch_tiles_of.
template <int D>
__device__ __forceinline__ void prefetch_group_rows(const FusedParams& p, int64_t tile_start,
                                                   int64_t head0, int count) {
  const int i = static_cast<int>(threadIdx.x);
  const int64_t heads_total = p.num_heads_q + 2 * p.num_heads_kv;
  if (i < kTileTokens) {
    const int64_t token = tile_start + i;
    if (token < p.num_tokens) {
      prefetch_l2(static_cast<const uint16_t*>(p.qkv) + (token * heads_total + head0) * D,
                  static_cast<uint32_t>(count * D * 2));
    }
    return;
  }
  // A tile's positions or slots are 128 bytes; a bulk prefetch needs a 16-byte-aligned start.
  const int64_t* index = i == kTileTokens ? p.positions : i == kTileTokens + 1 ? p.slots : nullptr;
  if (index != nullptr && reinterpret_cast<uintptr_t>(index) % 16 == 0 &&
      tile_start + kTileTokens <= p.num_tokens) {
    prefetch_l2(index + tile_start, kTileTokens * 8);
  }
}

// Whether a kernel instance may prefetch at all (the rule and why: prefetch_tiles_of).
template <CacheType C>
inline constexpr bool kPrefetches = C == CacheType::kActivation && kHasL2Prefetch;

// Q or K heads [head0, head0 + count) of the tile's tokens: norm, round, RoPE, round, write back;
// K heads also go to the K cache.
//
// Instruction count is what bounds this kernel (Nsight Compute: issue slots ~77% busy), so
// everything that is the same for all heads of a thread is computed once, in 32-bit where the
// launcher guarantees it fits: the source/destination pointers and the K-cache offset of the
// first head (later heads are a constant stride away), and how many of the heads the work limit
// lets this token write (`writable`), instead of 64-bit unit arithmetic per head.
template <int D, ActType A, CacheType C, bool kNeox, class Dims, int kHeads, bool kIsKey>
__device__ __forceinline__ void qk_heads(const FusedParams& p, const FastDivisor& page,
                                         int64_t tile_start, int head0, int count) {
  using M = HeadMap<D>;
  const int tid = static_cast<int>(threadIdx.x);
  const int t = tid % M::kThreadsPerHead;
  const int64_t token = tile_start + tid / M::kThreadsPerHead;
  const bool in_batch = token < p.num_tokens;
  // Tokens past the batch compute on the last token's data and store nothing, so that every
  // thread of a warp reaches every shuffle.
  const int64_t tc = in_batch ? token : p.num_tokens - 1;
  const int heads_total = static_cast<int>(p.num_heads_q + 2 * p.num_heads_kv);
  const uint16_t* src = static_cast<const uint16_t*>(p.qkv) + (tc * heads_total + head0) * D;

  Vec16 raw[kHeads];
#pragma unroll
  for (int h = 0; h < kHeads; ++h) {
    raw[h] = Vec16{{0, 0, 0, 0}};  // heads past `count` reduce zeros and are never stored
    if (h < count) raw[h] = Dims::load(src + h * D, t);
  }
  const Vec16 wbits =
      Dims::load(static_cast<const uint16_t*>(kIsKey ? p.k_weight : p.q_weight), t);
  const int64_t pos = p.positions[tc];
  const int rot = static_cast<int>(p.rotary_dim);
  const tile::RopeCoeffs rc = Dims::template rope_coeffs<A, kNeox>(p.cos_sin, pos, rot, t);
  float w[kElems];
  tile::unpack<A>(wbits, w);

  // Heads [0, writable) of this token may be stored: unit g = token*(Hq+2Hkv) + head is written
  // iff g < max_units (dev::unit_allowed), and units grow with the head.
  int writable = in_batch ? count : 0;
  if (in_batch && p.max_units >= 0) {
    const int64_t room = p.max_units - (token * heads_total + head0);
    writable = room <= 0 ? 0 : room < count ? static_cast<int>(room) : count;
  }
  const int local0 = kIsKey ? head0 - static_cast<int>(p.num_heads_q) : head0;
  const HeadsView& out = kIsKey ? p.k_out : p.q_out;
  uint16_t* dst = static_cast<uint16_t*>(p.qkv) + (token * heads_total + head0) * D;
  int64_t dst_head_stride = D;
  if (out.data != nullptr) {
    dst = static_cast<uint16_t*>(out.data) + token * out.token_stride + local0 * out.head_stride;
    dst_head_stride = out.head_stride;
  }
  // K cache, x-packed [NB, Hkv, D/x, BS, x]: the first head's offset; head h is h*D*BS further.
  constexpr int X = tile::kCacheX<C>;
  int64_t k_off = 0;
  int64_t k_scale_at = 0;
  bool cache_row = false;
  if constexpr (kIsKey) {
    const int64_t slot = p.slots[tc];
    cache_row = slot >= 0;
    const int64_t bs = p.cache.block_size;
    const tile::PageSlot ps = tile::page_slot(slot, page);
    const int64_t block_head = ps.page * p.num_heads_kv + local0;
    k_off = tile::k_cache_offset<D, X>(block_head, bs, ps.offset, Dims::first_dim(t));
    k_scale_at = block_head * bs + ps.offset;
  }

#pragma unroll
  for (int h = 0; h < kHeads; ++h) {
    // Uniform across the block. `continue`, not `break`: hipcc cannot fully unroll a loop whose
    // exit depends on a run-time value (heads past `count` are all skipped either way).
    if (h >= count) continue;
    float v[kElems];
    tile::unpack<A>(raw[h], v);
    const float rcp = tile::rms_inverse<D>(Dims::sum_squares(v), p.eps);
#pragma unroll
    for (int i = 0; i < kElems; ++i) v[i] = qk_math::rms_normalise(v[i], rcp, w[i]);
    Vec16 bits = tile::pack_computed<A>(v);  // round after norm
    tile::unpack<A>(bits, v);
    Dims::template rotate<A, kNeox>(v, bits, rc, rot, t);
    bits = tile::pack_computed<A>(v);  // round after RoPE
    const bool allowed = h < writable;
    if (allowed) Dims::store(dst + h * dst_head_stride, t, bits);
    if constexpr (!kIsKey) continue;

    const int64_t head_off = k_off + h * tile::cache_head_stride<D>(p.cache.block_size);
    if constexpr (C == CacheType::kActivation) {
      if (allowed && cache_row) {
        Dims::store_k(static_cast<uint16_t*>(p.cache.k_cache), head_off, p.cache.block_size, bits);
      }
    } else {
      tile::unpack<A>(bits, v);
      const float scale = tile::fp8_scale<C>(tile::head_amax<D>(v), p.amax_floor);
      if (allowed && cache_row) {
        float q[kElems];
        tile::divide_by_scale(v, scale, q);
        const Vec16 codes = tile::encode_fp8<C, false>(q);  // NaNs here are positive
        Dims::store_k_codes(static_cast<uint8_t*>(p.cache.k_cache), head_off, p.cache.block_size,
                            codes);
        if (t == 0) p.cache.k_scale[k_scale_at + static_cast<int64_t>(h) * p.cache.block_size] = scale;
      }
    }
  }
}

// V heads [kv0, kv0 + count) of the tile's tokens: only the cache (V is not written back).
template <int D, ActType A, CacheType C, int kHeads>
__device__ __forceinline__ void v_heads(const FusedParams& p, const FastDivisor& page,
                                        int64_t tile_start, int64_t kv0, int count) {
  using M = HeadMap<D>;
  const int t = static_cast<int>(threadIdx.x) % M::kThreadsPerHead;
  const int64_t heads_total = p.num_heads_q + 2 * p.num_heads_kv;
  const int64_t head0 = p.num_heads_q + p.num_heads_kv + kv0;  // first V head within qkv
  tile::VTileArgs a;
  a.slots = p.slots;
  a.num_tokens = p.num_tokens;
  a.tile_start = tile_start;
  a.head0 = kv0;
  a.count = count;
  a.num_heads_kv = p.num_heads_kv;
  a.block_size = p.cache.block_size;
  a.page = page;
  a.cache = p.cache.v_cache;
  a.shuffle = p.cache.v_shuffle;
  a.planted_v_index_bug = p.planted_v_index_bug;
  a.unit_token_stride = heads_total;  // unit g = token*(Hq+2Hkv) + head
  a.unit_base = head0;
  a.unit_head_stride = 1;
  a.max_units = p.max_units;
  const uint16_t* v_rows = static_cast<const uint16_t*>(p.qkv) + head0 * D + t * kElems;
  const auto load = [&](int64_t token, int h) {
    return tile::load16(v_rows + (token * heads_total + h) * D);
  };
  // No pass-0 vote: it made the fp8 instance 0.8% slower at T=32768 (v_cache_tile_writer.h).
  // Rows take the tile's run (kRowsTakeRun) in the wide-V instance only: launches of 16 waves or
  // more (launch_with), where it measured faster; in short launches it lengthened the chain.
  constexpr bool kRowsTakeRun = kHeads > tile::kVHeadsPerBlock<D, C>;
  tile::write_v_tile<D, C, kHeads, true, false, kRowsTakeRun>(a, load, [&](unsigned need,
                                                                         int64_t slot,
                                                                         Vec16 (&e)[kHeads]) {
    if constexpr (C != CacheType::kActivation) {
      const tile::PageSlot ps = tile::page_slot(slot, page);
      const int64_t scale_at = (ps.page * p.num_heads_kv + kv0) * p.cache.block_size + ps.offset;
#pragma unroll
      for (int h = 0; h < kHeads; ++h) {
        float v[kElems];
        tile::unpack<A>(e[h], v);
        const bool needed = (need & (1u << h)) != 0;
        const float scale = tile::per_token_scale<D, C>(v, needed, p.amax_floor);
        float q[kElems];
        tile::divide_by_scale(v, scale, q);
        e[h] = tile::encode_fp8<C>(q);
        if (needed && t == 0) p.cache.v_scale[scale_at + h * p.cache.block_size] = scale;
      }
    }
  });
}

// Whether a kernel instance is the one-head one: compiled for one Q, one K and one V head per
// block, which launch_with takes whenever a launch's Tiling asks for no more (heads_per_block.h's
// one-head band: fewer blocks than SMs, T <= 64 for Qwen3-8B). Such a launch is one block's
// dependent chain, and the instance compiled for four heads carries the loops, predicates and
// registers of the heads it skips, and the prefetch code a launch under one wave never runs
// (prefetch_tiles_of). H200, Qwen3-8B, gpu_bench --quick, three alternated runs each, medians
// (bench/results/h200-2026-12-02-eighteenth/ab/call2_*): fused bf16 T=1 2.15 -> 1.97 us, T=8
// 2.27 -> 2.06, T=64 3.09 -> 2.89; fp8 2.54 -> 2.25, 2.78 -> 2.51, 4.00 -> 3.62; T >= 256
// unchanged (within 0.3%). The instance's SASS: ab/call2_sass_*.txt.gz.
template <int kQHeads, int kKHeads, int kVHeads>
inline constexpr bool kOneHeadKernel = kQHeads == 1 && kKHeads == 1 && kVHeads == 1;

// Occupancy: at least 1024 resident threads per SM (64 registers a thread) so that enough 16-byte
// loads are in flight. Without the bound nvcc took 74 registers for the bf16 kernel (35% achieved
// occupancy) and 80 for fp8; on the H200 the bound made fp8 T=32768 13% faster (500 -> 443 us,
// bench/results/h200-2026-11-30-fp8/). A bound of 1280 threads (48 registers) spills, and so
// does 1024 for fp16 activations with an fp8 cache (108 bytes, ptxas -v), which keeps no bound.
template <int D, ActType A, CacheType C>
inline constexpr int kMinBlocksPerSm =
    A == ActType::kFP16 && C != CacheType::kActivation ? 1 : 1024 / HeadMap<D>::kBlockThreads;

// kQHeads, kKHeads, kVHeads: the heads per block of each kind the code is compiled for (the
// launch's Tiling asks for as many or fewer).
template <int D, ActType A, CacheType C, bool kNeox, class Dims, int kVHeads,
          int kQHeads = kQHeadsPerBlock, int kKHeads = kKHeadsWide<Dims>>
__global__ void __launch_bounds__(HeadMap<D>::kBlockThreads, (kMinBlocksPerSm<D, A, C>))
    fused_tiled_kernel(FusedParams p, Tiling tl) {
  tile::start_after_previous_grid();
  // The block's tile and head group come from its two grid indices (tile::tile_grid), not from
  // a division of one index.
  const int group = tile::block_group();
  const int64_t tile_start = tile::block_tile_start();
  const int q_groups = static_cast<int>(tl.q_groups);
  const int k_groups = static_cast<int>(tl.k_groups);
  // Only the first kTileTokens + 2 threads issue prefetches; the other warps skip in one branch.
  // Instances that never prefetch (kPrefetches) carry none of this code: the fp8 ones are bound
  // by instruction issue, and these few instructions per thread cost them 2% more instructions
  // (Nsight Compute, fused fp8 T=32768: 199 M -> 203 M) when they were only skipped at run time.
  int64_t ahead_start = 0;
  bool prefetch = false;
  if constexpr (kPrefetches<C> && !kOneHeadKernel<kQHeads, kKHeads, kVHeads>) {
    ahead_start = tile_start + tl.prefetch_tiles * kTileTokens;
    prefetch = tl.prefetch_tiles > 0 && threadIdx.x < kTileTokens + 2 && ahead_start < p.num_tokens;
  }
  if (group < q_groups) {
    const int head0 = group * tl.q_per_block;
    const int n = static_cast<int>(p.num_heads_q) - head0;
    const int count = n < tl.q_per_block ? n : tl.q_per_block;
    if (prefetch) prefetch_group_rows<D>(p, ahead_start, head0, count);
    qk_heads<D, A, C, kNeox, Dims, kQHeads, false>(p, tl.page, tile_start, head0, count);
  } else if (group < q_groups + k_groups) {
    const int k0 = (group - q_groups) * tl.k_per_block;
    const int n = static_cast<int>(p.num_heads_kv) - k0;
    const int count = n < tl.k_per_block ? n : tl.k_per_block;
    const int head0 = static_cast<int>(p.num_heads_q) + k0;
    if (prefetch) prefetch_group_rows<D>(p, ahead_start, head0, count);
    qk_heads<D, A, C, kNeox, Dims, kKHeads, true>(p, tl.page, tile_start, head0, count);
  } else {
    const int64_t kv0 = static_cast<int64_t>(group - q_groups - k_groups) * tl.v_per_block;
    const int64_t n = p.num_heads_kv - kv0;
    const int count = static_cast<int>(n < tl.v_per_block ? n : tl.v_per_block);
    if (prefetch) {
      prefetch_group_rows<D>(p, ahead_start, p.num_heads_q + p.num_heads_kv + kv0, count);
    }
    v_heads<D, A, C, kVHeads>(p, tl.page, tile_start, kv0, count);
  }
}

// How many tiles ahead a block prefetches (Tiling::prefetch_tiles): half a wave of resident
// blocks, in launches of at least four waves with a bf16/fp16 cache; otherwise none.
//
// Why (H200, Qwen3-8B, gpu_bench --quick, three alternated runs each, medians;
// bench/results/h200-2026-11-30-prefetch/): with the bf16 cache the kernel waits on its loads
// (long scoreboard was the largest stall reason) at half the warps resident, and a bulk L2
// prefetch of the rows a later block of the same head group reads gave, half a wave ahead,
// T=32768 -4.1% and T=4096 -2.2% (a whole wave: -3.8%, -0.7%); decode slots -0.6%. A launch under
// four waves has most of the blocks it would prefetch for already resident or about to be:
// there it cost T=1024 +1.2% (1.7 waves) and T=256 +6.2% (one wave), so it is off. Under Nsight
// Compute at the boost clock (--clock-control none) the prefetch took T=32768 from 243.6 to
// 233.2 us and DRAM from 72.8% to 76.0% busy; at ncu's default locked base clock the same launch
// was 3.2% slower (269.6 -> 278.3 us, issue 73% -> 75% busy): the kernel is then issue-bound, and
// the prefetch adds instructions. The fp8 cache instances are issue-bound at any clock, and there
// an earlier prefetch cost 6% (fifth pass); they take none (kPrefetches). Platforms without an L2
// prefetch instruction (kHasL2Prefetch) take none either.
inline constexpr int64_t kPrefetchMinWaves = 4;

// Blocks of an instance resident on the device at once: one wave (0 if the SM count is unknown).
template <int D, ActType A, CacheType C>
int64_t resident_blocks() {
  return kMinBlocksPerSm<D, A, C> * tile::device_sm_count();
}

template <int D, ActType A, CacheType C>
int64_t prefetch_tiles_of(const Tiling& tl, int64_t blocks) {
  if constexpr (!kPrefetches<C>) {
    return 0;
  } else {
    const int64_t resident = resident_blocks<D, A, C>();
    if (resident == 0 || blocks < kPrefetchMinWaves * resident) return 0;
    return resident / 2 / tl.groups;  // half a wave, in tiles of this launch
  }
}

// Which of a shape's kernels a launch takes: the one-head kernel where its Tiling asks for one
// head of each kind (kOneHeadKernel); in long launches (kWideVMinWaves waves of resident blocks or
// more) of the instances that have one (kVHeadsWide), the kernel with four V heads per block;
// otherwise the usual one.
//
// Why (H200, Qwen3-8B, fp8 e4m3fn cache, gpu_bench --quick, three alternated runs each, medians;
// bench/results/h200-2026-11-30-ninth/): four V heads per block in every launch took T=32768
// from 267.3 to 256.9 us (54 waves, -3.9%): the run search, its barriers and the staging serve
// twice the heads. At T=4096 (6.8 waves) prefill was unchanged (38.13 -> 38.04) and decode 2.4%
// slower (80.0 -> 82.0); at T=1024 (1.7 waves) 12% slower (12.37 -> 13.87), and 23% at T=1
// (2.67 -> 3.28). A kernel compiled for four V heads that ran only as many as the launch's
// Tiling asked, skipping the rest, spilled (ptxas -v: 12 bytes), hence the second kernel.
inline constexpr int64_t kWideVMinWaves = 16;

template <int D, ActType A, CacheType C, bool kNeox, class Dims, int kVHeads,
          int kQHeads = kQHeadsPerBlock, int kKHeads = kKHeadsWide<Dims>>
void launch_tiling(const FusedParams& p, Tiling tl, hipStream_t s) {
  const int64_t tiles = tile::tiles_of(p.num_tokens);
  tl.prefetch_tiles = prefetch_tiles_of<D, A, C>(tl, tiles * tl.groups);
  const dim3 grid = tile::tile_grid(tl.groups, p.num_tokens);
  const dim3 block(HeadMap<D>::kBlockThreads);
  auto* kernel = fused_tiled_kernel<D, A, C, kNeox, Dims, kVHeads, kQHeads, kKHeads>;
  tile::launch_tiled(p.programmatic_launch, kernel, grid, block, s, p, tl);
}

template <int D, ActType A, CacheType C, bool kNeox, class Dims>
void launch_with(const FusedParams& p, hipStream_t s) {
  constexpr int kNarrow = tile::kVHeadsPerBlock<D, C>;
  constexpr int kWide = kVHeadsWide<D, A, C, kNeox, Dims>;
  const int64_t resident = resident_blocks<D, A, C>();
  const Tiling narrow = tiling_of(p, kKHeadsWide<Dims>, kNarrow, resident);
  if (narrow.q_per_block == 1 && narrow.k_per_block == 1 && narrow.v_per_block == 1) {
    launch_tiling<D, A, C, kNeox, Dims, 1, 1, 1>(p, narrow, s);  // kOneHeadKernel's why
    return;
  }
  if constexpr (kWide != kNarrow) {
    const int64_t blocks = tile::tiles_of(p.num_tokens) * narrow.groups;
    if (resident > 0 && blocks >= kWideVMinWaves * resident) {
      launch_tiling<D, A, C, kNeox, Dims, kWide>(p, tiling_of(p, kKHeadsWide<Dims>, kWide, resident), s);
      return;
    }
  }
  launch_tiling<D, A, C, kNeox, Dims, kNarrow>(p, narrow, s);
}

// A thread's dims: qk_thread_dims.h's choice for a rotating kernel.
template <int D, ActType A, CacheType C, bool kNeox>
void launch_dims(const FusedParams& p, hipStream_t s) {
  tile::with_rotating_dims<D>(p.rotary_dim, [&](auto dims) {
    launch_with<D, A, C, kNeox, decltype(dims)>(p, s);
  });
}
template <int D, ActType A, CacheType C>
void launch_rotary_style(const FusedParams& p, hipStream_t s) {
  if (p.is_neox) {
    launch_dims<D, A, C, true>(p, s);
  } else {
    launch_dims<D, A, C, false>(p, s);
  }
}
template <int D, ActType A>
void launch_cache_type(const FusedParams& p, hipStream_t s) {
  switch (p.cache.type) {
    case CacheType::kActivation: launch_rotary_style<D, A, CacheType::kActivation>(p, s); break;
    case CacheType::kFp8E4M3FN: launch_rotary_style<D, A, CacheType::kFp8E4M3FN>(p, s); break;
    case CacheType::kFp8E4M3FNUZ: launch_rotary_style<D, A, CacheType::kFp8E4M3FNUZ>(p, s); break;
  }
}
template <int D>
void launch_act(const FusedParams& p, hipStream_t s) {
  if (p.act == ActType::kBF16) {
    launch_cache_type<D, ActType::kBF16>(p, s);
  } else {
    launch_cache_type<D, ActType::kFP16>(p, s);
  }
}


}  // namespace

using tile::aligned16;
using tile::view_ok;

bool tiled_fused_supported(const FusedParams& p) {
  const bool dim_ok = p.head_dim == 64 || p.head_dim == 128 || p.head_dim == 256;
  const bool rot_ok = p.is_neox ? p.rotary_dim % 16 == 0 : p.rotary_dim % 8 == 0;
  const int64_t x = p.cache.type == CacheType::kActivation ? 8 : 16;
  return dim_ok && rot_ok && p.cache.x == x && p.cache.block_size % x == 0 &&
         aligned16(p.qkv) && aligned16(p.q_weight) && aligned16(p.k_weight) &&
         aligned16(p.cos_sin) && aligned16(p.cache.k_cache) && aligned16(p.cache.v_cache) &&
         view_ok(p.q_out) && view_ok(p.k_out) && p.num_tokens <= (int64_t{1} << 31) / 64 &&
         fast_divisor_admits(p.cache.block_size) &&
         // one block per (tile, head group), at most one group per head
         tile::grid_fits(p.num_tokens, p.num_heads_q + 2 * p.num_heads_kv);
}

void launch_fused_tiled(const FusedParams& p, void* stream) {
  auto* s = static_cast<hipStream_t>(stream);
  switch (p.head_dim) {
    case 64: launch_act<64>(p, s); break;
    case 128: launch_act<128>(p, s); break;
    case 256: launch_act<256>(p, s); break;
    default: break;  // tiled_fused_supported() is false
  }
}

}  // namespace rcsim::gpu
