// Writes one KV head of a tile of tokens into the V cache as whole 16-byte chunks wherever the
// layout allows (device code, included by .hip files only).
//
// Why: in both V layouts one 16-byte chunk holds dim d of x consecutive tokens of a page
// (shuffle [NB,H,BS/x,D,x] by construction; plain [NB,H,D,BS] because tokens are innermost), so a
// token-at-a-time writer issues 2-byte (bf16) or 1-byte (fp8) stores at a 16-byte stride. Here a
// block stages the tile's values in shared memory and stores each full chunk once.
//
// A "run" is x tokens with consecutive slots starting at a multiple of x (so one page, one chunk
// row). Runs are found from the slot mapping itself, so any slot pattern is handled: prefill
// (sequences in consecutive slots) becomes almost all runs; decode (one token per page) none, and
// those "loose" tokens are staged too and stored element by element, consecutive threads taking
// consecutive dims (store_loose_elements). A run belongs to the tile holding its first token
// (its leader); that tile also reads the run's up to x-1 tokens past its end (V is only read by
// these kernels, so reading a neighbour tile's rows is race-free). Each token's V head is thus
// loaded, quantised and written by exactly one block.
//
// Torn writes: a run must lie wholly inside every head's allowed prefix of tokens; tokens of a
// cut run are stored element by element where their own unit is allowed, and not at all past it.
#pragma once

#include <cstdint>
#include <type_traits>

#include "kernels/hip/tile_common.h"

namespace rcsim::gpu::tile {

// KV heads per V block: the run search and the leader list are made once per tile and serve
// every head of the block; all heads' loads are in flight together (bounded by shared memory).
// fp8 caches take two heads per block: each head's amax reduction, division and encode form a
// dependent chain, and with four heads chained per thread Nsight Compute measured the fp8 paths
// latency-bound (issue 36%, DRAM 11%); once the division became one reciprocal per head
// (exact_quotient.h), two heads beat one on the H200 (Qwen3-8B fp8 T=32768: fused 344 -> 316 us,
// per-token cache writer 135 -> 106 us; bench/results/h200-2026-11-30-fp8/).
template <int D, CacheType C>
inline constexpr int kVHeadsPerBlock = C != CacheType::kActivation ? 2 : D == 256 ? 2 : 4;

struct VTileArgs {
  const int64_t* slots = nullptr;
  int64_t num_tokens = 0;
  int64_t tile_start = 0;
  int64_t head0 = 0;  // first KV head of the block
  int count = 0;      // heads [head0, head0 + count)
  int64_t num_heads_kv = 0;
  int64_t block_size = 0;
  FastDivisor page;  // block_size, prepared (tile::page_slot)
  void* cache = nullptr;  // V cache
  bool shuffle = true;
  bool planted_v_index_bug = false;  // test-only (gpu_params.h FusedParams::planted_v_index_bug)
  // The work unit of (token j, KV head h) is j*unit_token_stride + unit_base + h*unit_head_stride;
  // units at or past max_units (>= 0) write nothing (device-side torn writes).
  int64_t unit_token_stride = 1;
  int64_t unit_base = 0;  // the unit of (token 0, head0)
  int64_t unit_head_stride = 0;
  int64_t max_units = -1;
};

// Tokens [0, end) are the ones whose unit for the block's head h (0 = head0) is below the limit.
__device__ __forceinline__ int64_t allowed_end(const VTileArgs& a, int h) {
  if (a.max_units < 0) return a.num_tokens;
  const int64_t first = a.unit_base + h * a.unit_head_stride;
  if (a.max_units <= first) return 0;
  const int64_t end = (a.max_units - first + a.unit_token_stride - 1) / a.unit_token_stride;
  return end < a.num_tokens ? end : a.num_tokens;
}

// Shapes of a V tile for an x of X cache elements per 16 bytes.
template <CacheType C>
struct VTileShape {
  static constexpr int X = kCacheX<C>;
  static constexpr bool kFp8 = C != CacheType::kActivation;
  // Slots of tokens [start-(X-1), end+(X-1)); staged tokens [start, end+(X-1)).
  static constexpr int kSpan = kTileTokens + 2 * (X - 1);
  static constexpr int kStage = kTileTokens + X - 1;
  static constexpr int kMaxLeaders = (kTileTokens + X - 1) / X;
  static constexpr int kNoRun = -1000;
  using Elem = std::conditional_t<kFp8, uint8_t, uint16_t>;
};

// The block's shared state: the slots around the tile, each staged token's run leader, the runs
// this tile leads with their cache offsets, and the staged values of every head.
template <int D, CacheType C, int kHeads>
struct VTileShared {
  using S = VTileShape<C>;
  int32_t slot[S::kSpan];
  int32_t lead[S::kStage];  // leader (tile-relative) of the token's run, or kNoRun
  int32_t leaders[S::kMaxLeaders];
  int64_t leader_base[S::kMaxLeaders];  // cache offset of (leader's page, head0, dim 0)
  int32_t num_leaders;
  int32_t loose[kTileTokens];        // tile-relative tokens of the tile in no run
  int64_t loose_base[kTileTokens];   // cache offset of (its page, head0, its offset, dim 0)
  int32_t num_loose;
  alignas(16) typename S::Elem stage[kHeads][S::kStage * D];
};

// Step 1: load the slots around the tile and find the runs it leads. A run needs every token it
// holds written for every head of the block; `run_end` is the last head's allowed end, the
// shortest (units grow with the head).
template <int D, CacheType C, int kHeads>
__device__ __forceinline__ void find_runs(const VTileArgs& a, VTileShared<D, C, kHeads>& sh,
                                          int64_t run_end) {
  using S = VTileShape<C>;
  constexpr int X = S::X;
  static_assert(S::kSpan <= HeadMap<D>::kBlockThreads, "one slot per thread");
  const int tid = static_cast<int>(threadIdx.x);
  if (tid < S::kSpan) {
    const int64_t j = a.tile_start - (X - 1) + tid;
    sh.slot[tid] = j >= 0 && j < a.num_tokens ? static_cast<int32_t>(a.slots[j]) : -2;
  }
  if (tid == 0) {
    sh.num_leaders = 0;
    sh.num_loose = 0;
  }
  __syncthreads();
  if (tid < S::kStage) {
    const int32_t s = sh.slot[tid + X - 1];
    int32_t lead = S::kNoRun;
    if (s >= 0) {
      const int r = s % X;
      const int l = tid - r;  // tile-relative leader; >= -(X-1)
      // Runs led past the tile are the next tile's; runs cut by the work limit are no runs.
      if ((tid < kTileTokens || l < kTileTokens) && a.tile_start + l + X <= run_end) {
        bool run = true;
#pragma unroll
        for (int m = 0; m < X; ++m) run = run && sh.slot[l + m + X - 1] == s - r + m;
        if (run) lead = l;
      }
    }
    sh.lead[tid] = lead;
    // The cache offset of (the slot's page, head0, its offset, dim 0): the slot is divided once
    // per run or loose token here rather than once per chunk or element.
    const auto slot_base = [&] {
      const PageSlot ps = page_slot(s, a.page);
      return v_cache_offset<D, X>(a.shuffle, ps.page * a.num_heads_kv + a.head0, a.block_size,
                                  ps.offset, 0);
    };
    if (lead == tid && tid < kTileTokens) {
      const int k = atomicAdd(&sh.num_leaders, 1);
      sh.leaders[k] = tid;
      sh.leader_base[k] = slot_base();
    }
    if (s >= 0 && lead == S::kNoRun && tid < kTileTokens) {
      const int k = atomicAdd(&sh.num_loose, 1);
      sh.loose[k] = tid;
      sh.loose_base[k] = slot_base();
    }
  }
  __syncthreads();
}

// Step 2: every token's values through finish(), staged in shared memory: the tokens of the runs
// this tile leads and the tile's loose tokens. Which token a thread's row (tok_local) takes in
// each pass:
//  * by default pass 0 is the tile's own tokens; pass 1 the tokens past its end that its last run
//    needs. Where runs start at rows other than 0 (prefill: sequences start anywhere in the
//    batch), rows before the run's leader work twice in fp8: in pass 0 on tokens of the previous
//    tile's run, whose codes are discarded, then in pass 1 on the ones they store;
//  * kRowsTakeRun, where a tile leads one run at most (x = kTileTokens: the fp8 caches): pass 0
//    takes the run [l, l + x) whole, one token per row: rows at or past l their own, rows before
//    l the token x on (l + x - 1 < kStage). Pass 1 is only the loose tokens before l. With no
//    run (l = 0) this is the default's pass 0.
// kRowsTakeRun: measured on the H200 (Qwen3-8B, gpu_bench --quick, three alternated runs each,
// medians; bench/results/h200-2026-12-01-twelfth/): in every launch it took the fused fp8 kernel
// from 255.08 to 249.01 us at T=32768 (-2.4%), 37.73 -> 37.16 at T=4096, and the per-token fp8
// writer 82.22 -> 80.59 at T=32768; but launches of one block's chain lost: fused 4.23 -> 4.33 us
// at T=64, writer +1.8% there. The row's token is then chosen at run time, after the search (a
// shared-memory read of the leader and a chosen load); choosing it from the row's own and tail
// slots instead, read side by side, kept T=64 nearer (4.28 us) but made the wide fused kernel
// 1.5% slower at T=32768. Callers choose: the instances that only long launches take.
template <int D, CacheType C, int kHeads, bool kLoadOwnRowsFirst, bool kVoteInPass0,
          bool kRowsTakeRun, typename Load, typename Finish>
__device__ __forceinline__ void stage_tokens(const VTileArgs& a, VTileShared<D, C, kHeads>& sh,
                                             const Vec16 (&own_rows)[kHeads], Load&& load,
                                             Finish&& finish) {
  using M = HeadMap<D>;
  using S = VTileShape<C>;
  const int tid = static_cast<int>(threadIdx.x);
  const int tok_local = tid / M::kThreadsPerHead;
  const int first = (tid % M::kThreadsPerHead) * kElems;
  int64_t head_end[kHeads];
#pragma unroll
  for (int h = 0; h < kHeads; ++h) head_end[h] = h < a.count ? allowed_end(a, h) : 0;
  constexpr bool kOneRun = kRowsTakeRun && S::kMaxLeaders == 1;
  const int run_leader = kOneRun && sh.num_leaders == 1 ? sh.leaders[0] : 0;
  // Warps with no token in pass 1 skip it whole (their shuffles stay convergent).
  constexpr int kWarpTokens = kWarpSizeLanes / M::kThreadsPerHead;
  const int warp_first_row = (tid / kWarpSizeLanes) * kWarpTokens;
#pragma unroll
  for (int pass = 0; pass < 2; ++pass) {
    if (pass == 1 && warp_first_row >= (kOneRun ? run_leader : S::X - 1)) break;
    int i = pass * kTileTokens + tok_local;
    bool row_works = true;
    if constexpr (kOneRun) {
      i = pass == 0 && tok_local < run_leader ? tok_local + kTileTokens : tok_local;
      row_works = pass == 0 || tok_local < run_leader;  // pass 1: the rows before the run only
    }
    const bool staged_index = i < S::kStage;
    const int64_t token = a.tile_start + i;
    const int32_t slot = staged_index ? sh.slot[i + S::X - 1] : -2;
    const int32_t lead = staged_index ? sh.lead[i] : S::kNoRun;
    const bool staged = row_works && slot >= 0 && lead >= 0 && lead < kTileTokens;
    // in sh.loose: the tile's own tokens only
    const bool loose = row_works && i < kTileTokens && slot >= 0 && lead == S::kNoRun;
    unsigned need = 0;
#pragma unroll
    for (int h = 0; h < kHeads; ++h) {
      // head_end is 0 for h >= count, so a block's missing heads are never loaded or stored.
      if (token < head_end[h] && (staged || loose)) need |= 1u << h;
    }
    // A warp with nothing to stage skips the pass whole; the vote keeps finish()'s shuffles
    // convergent. Nothing is lost: a token of a run this tile leads has every head's bit (find_runs
    // admits only runs inside the last head's allowed end), and store_loose_elements checks the
    // limit itself. Such warps are common wherever a sequence's first token is not at a multiple
    // of X in the batch (prefill pages start runs; tiles start at multiples of 16):
    //  * pass 1 serves only the run that crosses the tile's end (kRowsTakeRun: the loose tokens
    //    before the run). Nsight Compute showed fp8 tiles spending half their V work quantising
    //    absent tokens there before this vote, and 41% of the fused fp8 kernel's V warps still
    //    run it (Qwen3-8B T=32768, prefill, ninth pass);
    //  * in pass 0 the tile's first tokens may belong to a run that the previous tile leads. The
    //    vote there (kVoteInPass0) measured (H200, Qwen3-8B, three alternated runs, medians,
    //    bench/results/h200-2026-11-30-final8/ab/call3_*): the per-token fp8 writer 86.30 ->
    //    82.58 us at T=32768 and 16.06 -> 15.72 at T=4096; but the fused fp8 kernel 256.53 ->
    //    258.52 at T=32768 and reshape_and_cache bf16 +3% at T <= 256. Callers choose.
    // (continue, not break: hipcc cannot fully unroll a loop whose exit depends on data.)
    if ((pass == 1 || kVoteInPass0) && !warp_any(need != 0)) continue;
    Vec16 e[kHeads];
#pragma unroll
    for (int h = 0; h < kHeads; ++h) {
      e[h] = Vec16{{0, 0, 0, 0}};  // heads not needed carry zeros (their codes are never stored)
      if (need & (1u << h)) {
        e[h] = kLoadOwnRowsFirst && i == tok_local ? own_rows[h] : load(token, h);
      }
    }
    finish(need, static_cast<int64_t>(slot), e);
    if (staged || loose) {
#pragma unroll
      for (int h = 0; h < kHeads; ++h) {
        typename S::Elem* dst = sh.stage[h] + i * D + first;
        if constexpr (S::kFp8) {
          *reinterpret_cast<uint2*>(dst) = uint2{e[h].w[0], e[h].w[1]};
        } else {
          store16(dst, e[h]);
        }
      }
    }
  }
}

// Step 3: whole chunks: work item c -> (head, leader, dim d), d fastest, so that a warp's stores
// are consecutive 16-byte chunks (fully coalesced). A chunk is gathered from the x staged rows
// with narrow shared loads merged by byte permutes; the page offset of each run was divided once,
// in find_runs. Measured on the H200 (Nsight Compute source counters): the earlier form divided
// the slot per chunk in 64-bit, ~140 instructions per chunk and 9% of the fused kernel; a variant
// that transposed 8 chunks per thread in registers issued fewer instructions but stored at a
// 128-byte lane stride, and the bf16 cache writer fell from 79% to 21% of copy bandwidth.
// The block is two rows of D threads (kTileTokens * D / kElems threads); `leaders` is 1 or 2,
// so (head, leader) comes from shifts, not a run-time division (~20 instructions each).
template <int D, CacheType C, int kHeads>
__device__ __forceinline__ void store_run_chunks(const VTileArgs& a,
                                                 const VTileShared<D, C, kHeads>& sh) {
  using S = VTileShape<C>;
  using Elem = typename S::Elem;
  static_assert(HeadMap<D>::kBlockThreads == 2 * D && S::kMaxLeaders <= 2, "chunk loop shape");
  const int tid = static_cast<int>(threadIdx.x);
  const int leaders = sh.num_leaders;
  const int64_t head_stride = cache_head_stride<D>(a.block_size);
  const int64_t dim_stride = v_dim_stride<S::X>(a.shuffle, a.block_size);
  const int d = tid % D;
  for (int hk = tid / D; hk < a.count * leaders; hk += 2) {
    const int h = leaders == 2 ? hk >> 1 : hk;
    const int k = hk - h * leaders;
    const Elem* rows = sh.stage[h] + sh.leaders[k] * D + d;
    Vec16 chunk;
    constexpr int kPerWord = S::kFp8 ? 4 : 2;
#pragma unroll
    for (int w = 0; w < 4; ++w) {
      uint32_t word = 0;
#pragma unroll
      for (int b = 0; b < kPerWord; ++b) {
        const uint32_t v = rows[(w * kPerWord + b) * D];
        word |= v << ((32 / kPerWord) * b);
      }
      chunk.w[w] = word;
    }
    const int dst_d = a.planted_v_index_bug ? d ^ 1 : d;
    store16_global(static_cast<Elem*>(a.cache) + sh.leader_base[k] + h * head_stride + dst_d * dim_stride,
            chunk);
  }
}

// Step 3b: the loose tokens, one element per store, work item (head, loose token, dim d) with d
// fastest, so that a warp's 32 stores fall in 32 consecutive dims of one token: 512 contiguous
// bytes in the shuffle layout. Storing each thread's own 8 dims instead (d = 8t + k) spread a
// warp's stores over 32 cache lines; on the H200 in decode (every token loose), Nsight Compute
// showed those stores backing up the SM's load/store path: long-scoreboard waits on the stores'
// registers and on the shuffles of the Q warps beside them.
// A loose token's head h is stored iff its unit is below the work limit (allowed_end).
template <int D, CacheType C, int kHeads>
__device__ __forceinline__ void store_loose_elements(const VTileArgs& a,
                                                     const VTileShared<D, C, kHeads>& sh) {
  using S = VTileShape<C>;
  using Elem = typename S::Elem;
  static_assert(HeadMap<D>::kBlockThreads == 2 * D, "two rows of D threads");
  const int tid = static_cast<int>(threadIdx.x);
  const int loose = sh.num_loose;
  if (loose == 0) return;  // uniform: prefill tiles usually have none
  const int d = tid % D;
  const int64_t head_stride = cache_head_stride<D>(a.block_size);
  const int dst_d = a.planted_v_index_bug ? d ^ 1 : d;
  const int64_t dim_off = dst_d * v_dim_stride<S::X>(a.shuffle, a.block_size);
  Elem* cache = static_cast<Elem*>(a.cache);
  // Rolled loops: unrolled, they held enough addresses to make the fused kernels spill under
  // their 64-register bound (ptxas -v).
#pragma unroll 1
  for (int h = 0; h < a.count; ++h) {  // count <= kHeads
    const int64_t end = allowed_end(a, h);
#pragma unroll 1
    for (int k = tid / D; k < loose; k += 2) {  // loose <= kTileTokens
      const int i = sh.loose[k];
      if (a.tile_start + i >= end) continue;
      cache[sh.loose_base[k] + h * head_stride + dim_off] = sh.stage[h][i * D + d];
    }
  }
}

// load(token, h) returns the thread's 16 bytes of KV head head0 + h of `token` (a token of the
// batch, h < count). finish(need_mask, slot, e) is called by every thread of the block (it
// may shuffle inside a head) with e[h] loaded for each head whose bit is set in need_mask (zeros
// elsewhere); it turns them into the thread's 8 cache elements (activation bits in all four words,
// or fp8 codes in w[0..1]), storing the token's scale itself where it has one.
//
// kLoadOwnRowsFirst: the tile's own rows are loaded before the run search, which waits on the
// slots, so that the two DRAM round trips overlap instead of following each other across the
// search's barriers (Nsight Compute: barrier waits were the largest stall of the fused fp8 kernel,
// 17.9% of samples). It holds the rows in registers across the search: callers choose it where
// it measured faster (H200: fused kernels, the per-token fp8 writer; not reshape_and_cache bf16).
// kVoteInPass0: warps none of whose tokens the tile stores skip pass 0 too (stage_tokens).
// kRowsTakeRun: with fp8 caches, pass 0 takes the tile's run whole, one token per row
// (stage_tokens); elsewhere it has no effect.
template <int D, CacheType C, int kHeads, bool kLoadOwnRowsFirst, bool kVoteInPass0,
          bool kRowsTakeRun, typename Load, typename Finish>
__device__ __forceinline__ void write_v_tile(const VTileArgs& a, Load&& load, Finish&& finish) {
  __shared__ VTileShared<D, C, kHeads> sh;
  const int64_t own_token =
      a.tile_start + static_cast<int>(threadIdx.x) / HeadMap<D>::kThreadsPerHead;
  Vec16 own_rows[kHeads];
#pragma unroll
  for (int h = 0; h < kHeads; ++h) {
    own_rows[h] = Vec16{{0, 0, 0, 0}};
    if (kLoadOwnRowsFirst && own_token < a.num_tokens && h < a.count) {
      own_rows[h] = load(own_token, h);
    }
  }
  find_runs<D, C, kHeads>(a, sh, allowed_end(a, a.count - 1));
  stage_tokens<D, C, kHeads, kLoadOwnRowsFirst, kVoteInPass0, kRowsTakeRun>(a, sh, own_rows, load,
                                                                           finish);
  __syncthreads();
  store_run_chunks<D, C, kHeads>(a, sh);
  store_loose_elements<D, C, kHeads>(a, sh);
}

}  // namespace rcsim::gpu::tile
