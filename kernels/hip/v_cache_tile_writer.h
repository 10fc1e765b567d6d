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
// those tokens are stored element by element. A run belongs to the tile holding its first token
// (its leader); that tile also reads the run's up to x-1 tokens past its end (V is only read by
// these kernels, so reading a neighbour tile's rows is race-free). Each token's V head is thus
// loaded, quantised and written by exactly one block.
//
// Torn writes: a token past `allowed_end` is treated as absent, so no run includes it and it
// writes nothing; its neighbours fall back to element stores.
#pragma once

#include <cstdint>
#include <type_traits>

#include "kernels/hip/tile_common.h"

namespace rcsim::gpu::tile {

struct VTileArgs {
  const int64_t* slots = nullptr;
  int64_t num_tokens = 0;
  int64_t tile_start = 0;
  int64_t allowed_end = 0;  // tokens >= this write nothing (device-side work limit)
  int64_t head = 0;         // KV head index
  int64_t num_heads_kv = 0;
  int64_t block_size = 0;
  void* cache = nullptr;  // V cache
  float* scales = nullptr;  // per-token scales [NB, H, BS] (fp8 per-token producers only)
  bool shuffle = true;
  bool planted_v_index_bug = false;  // test-only (gpu_params.h FusedParams::planted_v_index_bug)
};

// What a producer hands back for one token: the thread's 8 cache elements (activation bits in all
// four words, or fp8 codes in w[0..1]).
// produce(token, need, slot) is called by every thread of the block (it may shuffle inside a
// head); it loads only when `need`, and stores the token's scale itself where it has one.
template <int D, CacheType C, typename Produce>
__device__ __forceinline__ void write_v_tile(const VTileArgs& a, Produce&& produce) {
  using M = HeadMap<D>;
  constexpr int X = kCacheX<C>;
  constexpr bool kFp8 = C != CacheType::kActivation;
  constexpr int kSpan = kTileTokens + 2 * (X - 1);  // slots of tokens [start-(X-1), end+(X-1))
  constexpr int kStage = kTileTokens + X - 1;       // staged tokens [start, end+(X-1))
  constexpr int kNoRun = -1000;
  static_assert(kSpan <= M::kBlockThreads, "one slot per thread");
  using Elem = std::conditional_t<kFp8, uint8_t, uint16_t>;
  __shared__ int32_t s_slot[kSpan];
  __shared__ int32_t s_lead[kStage];  // leader (tile-relative) of the token's run, or kNoRun
  __shared__ alignas(16) Elem s_stage[kStage * D];

  const int tid = static_cast<int>(threadIdx.x);
  if (tid < kSpan) {
    const int64_t j = a.tile_start - (X - 1) + tid;
    const bool present = j >= 0 && j < a.num_tokens && j < a.allowed_end;
    s_slot[tid] = present ? static_cast<int32_t>(a.slots[j]) : -2;
  }
  __syncthreads();
  if (tid < kStage) {
    const int32_t s = s_slot[tid + X - 1];
    int32_t lead = kNoRun;
    if (s >= 0) {
      const int r = s % X;
      const int l = tid - r;  // tile-relative leader; >= -(X-1)
      if (tid < kTileTokens || l < kTileTokens) {  // runs led past the tile are the next one's
        bool run = true;
#pragma unroll
        for (int m = 0; m < X; ++m) run = run && s_slot[l + m + X - 1] == s - r + m;
        if (run) lead = l;
      }
    }
    s_lead[tid] = lead;
  }
  __syncthreads();

  const int tok_local = tid / M::kThreadsPerHead;
  const int t = tid % M::kThreadsPerHead;
  const int first = t * kElems;
  // Pass 0: the tile's own tokens; pass 1: the tokens past its end that its last run needs.
  // Warps with no token in pass 1 skip it whole (their shuffles stay convergent).
  constexpr int kWarpTokens = kWarpSizeLanes / M::kThreadsPerHead;
#pragma unroll
  for (int pass = 0; pass < 2; ++pass) {
    if (pass == 1 && (tid / kWarpSizeLanes) * kWarpTokens >= X - 1) break;
    const int i = pass * kTileTokens + tok_local;
    const bool staged_index = i < kStage;
    const int64_t token = a.tile_start + i;
    const int32_t slot = staged_index ? s_slot[i + X - 1] : -2;
    const int32_t lead = staged_index ? s_lead[i] : kNoRun;
    const bool staged = slot >= 0 && lead != kNoRun && lead >= 0 && lead < kTileTokens;
    const bool element_wise = pass == 0 && slot >= 0 && lead == kNoRun;
    const Vec16 e = produce(token, staged || element_wise, static_cast<int64_t>(slot));
    if (staged) {
      Elem* dst = s_stage + i * D + first;
      if constexpr (kFp8) {
        *reinterpret_cast<uint2*>(dst) = uint2{e.w[0], e.w[1]};
      } else {
        store16(dst, e);
      }
    } else if (element_wise) {
      const int64_t blk = slot / a.block_size;
      const int64_t off = slot % a.block_size;
      const int64_t block_head = blk * a.num_heads_kv + a.head;
      Elem* cache = static_cast<Elem*>(a.cache);
#pragma unroll
      for (int k = 0; k < kElems; ++k) {
        const uint32_t word = kFp8 ? e.w[k / 4] : e.w[k / 2];
        const Elem v = kFp8 ? static_cast<Elem>(word >> (8 * (k % 4)))
                            : static_cast<Elem>(word >> (16 * (k % 2)));
        const int d = a.planted_v_index_bug ? (first + k) ^ 1 : first + k;
        cache[v_cache_offset<D, X>(a.shuffle, block_head, a.block_size, off, d)] = v;
      }
    }
  }
  __syncthreads();

  // Whole chunks: thread -> (k-th run led in this tile, dim d).
  const int k = tid / D;
  const int d = tid % D;
  int leader = -1;
  for (int i = 0, seen = 0; i < kTileTokens; ++i) {
    if (s_lead[i] == i) {
      if (seen == k) {
        leader = i;
        break;
      }
      ++seen;
    }
  }
  if (leader < 0) return;
  const int64_t slot = s_slot[leader + X - 1];
  const int64_t block_head = (slot / a.block_size) * a.num_heads_kv + a.head;
  const int64_t off = slot % a.block_size;
  Vec16 chunk;
#pragma unroll
  for (int w = 0; w < 4; ++w) {
    uint32_t word = 0;
    constexpr int kPerWord = kFp8 ? 4 : 2;
#pragma unroll
    for (int b = 0; b < kPerWord; ++b) {
      const uint32_t v = s_stage[(leader + w * kPerWord + b) * D + d];
      word |= v << ((32 / kPerWord) * b);
    }
    chunk.w[w] = word;
  }
  const int dst_d = a.planted_v_index_bug ? d ^ 1 : d;
  store16(static_cast<Elem*>(a.cache) + v_cache_offset<D, X>(a.shuffle, block_head, a.block_size,
                                                              off, dst_d),
          chunk);
}

}  // namespace rcsim::gpu::tile
