// Element offsets of the paged KV-cache layouts (semantics.md 2.3). All arithmetic is 64-bit:
// slot x stride exceeds 2^31 for caches beyond a few GiB (aiter #4680 wrapped at 32 bits).
//   NB = blocks, H = KV heads, BS = tokens per block, D = head dim, x = 16 / sizeof(cache element).
#pragma once

#include <cstdint>

#include "kernels/common/host_device.h"
#include "kernels/common/shared_math_mutants.h"

namespace rcsim::layout {

struct PagedCacheShape {
  int64_t num_blocks;
  int64_t num_heads_kv;
  int64_t block_size;  // tokens per page
  int64_t head_dim;
  int64_t x;  // elements per 16 bytes of the cache dtype
};

// (b * H + h), the block-major row of (block, head) every paged layout starts with; the planted
// "head-major" changes (shared_math_mutants.h) use (h * NB + b), a permutation of the same range.
RCSIM_HD int64_t block_head_row(const PagedCacheShape& s, int64_t b, int64_t h,
                                shared_mutants::SharedBug head_major_bug) {
  if (shared_mutants::active(head_major_bug)) return h * s.num_blocks + b;
  return b * s.num_heads_kv + h;
}

// K "x-packed" [NB, H, D/x, BS, x].
RCSIM_HD int64_t k_xpacked_offset(const PagedCacheShape& s, int64_t b, int64_t h, int64_t tok,
                                  int64_t d) {
  const int64_t row = block_head_row(s, b, h, shared_mutants::SharedBug::kKOffsetHeadMajor);
  return (row * (s.head_dim / s.x) + d / s.x) * s.block_size * s.x +
         tok * s.x + d % s.x;
}
// V "shuffle" (asm layout) [NB, H, BS/x, D, x].
RCSIM_HD int64_t v_shuffle_offset(const PagedCacheShape& s, int64_t b, int64_t h, int64_t tok,
                                  int64_t d) {
  const int64_t tile = (b * s.num_heads_kv + h) * (s.block_size / s.x) + tok / s.x;
  if (shared_mutants::active(shared_mutants::SharedBug::kVShuffleInnerSwapped)) {
    return tile * s.head_dim * s.x + (tok % s.x) * s.head_dim + d;
  }
  return tile * s.head_dim * s.x + d * s.x + tok % s.x;
}
// V plain [NB, H, D, BS].
RCSIM_HD int64_t v_plain_offset(const PagedCacheShape& s, int64_t b, int64_t h, int64_t tok,
                                int64_t d) {
  const int64_t row = block_head_row(s, b, h, shared_mutants::SharedBug::kVPlainHeadMajor);
  return (row * s.head_dim + d) * s.block_size + tok;
}
// Flash / NHD [NB, BS, H, D].
RCSIM_HD int64_t flash_offset(const PagedCacheShape& s, int64_t b, int64_t h, int64_t tok,
                              int64_t d) {
  if (shared_mutants::active(shared_mutants::SharedBug::kFlashHeadTokenSwapped)) {
    return ((b * s.num_heads_kv + h) * s.block_size + tok) * s.head_dim + d;
  }
  return ((b * s.block_size + tok) * s.num_heads_kv + h) * s.head_dim + d;
}
// Per-token scale, asm layout [NB, H, BS] (fp32).
RCSIM_HD int64_t scale_offset(const PagedCacheShape& s, int64_t b, int64_t h, int64_t tok) {
  const int64_t row = block_head_row(s, b, h, shared_mutants::SharedBug::kScaleIndexHeadMajor);
  return row * s.block_size + tok;
}
RCSIM_HD int64_t cache_elements(const PagedCacheShape& s) {
  if (shared_mutants::active(shared_mutants::SharedBug::kCacheElementsDropsHeads)) {
    return s.num_blocks * s.block_size * s.head_dim;
  }
  return s.num_blocks * s.num_heads_kv * s.block_size * s.head_dim;
}
RCSIM_HD int64_t scale_elements(const PagedCacheShape& s) {
  if (shared_mutants::active(shared_mutants::SharedBug::kScaleElementsDropsHeads)) {
    return s.num_blocks * s.block_size;
  }
  return s.num_blocks * s.num_heads_kv * s.block_size;
}

}  // namespace rcsim::layout
