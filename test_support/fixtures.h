// The layer shape most unit tests start from: 4 query heads over 2 KV heads (GQA), full NeoX
// rotary, 16-token pages, the other AttentionConfig fields at their defaults. What the suites
// vary (head dim, cache dtype, pages, positions) is a field of SmallConfig.
#pragma once

#include <cstdint>

#include "core/attention_config.h"

namespace rcsim::test_support {

struct SmallConfig {
  int64_t head_dim = 64;  // rotary_dim = head_dim
  KvCacheDtype kv = KvCacheDtype::kAuto;
  int64_t num_blocks = 4;
  int64_t max_position = 64;
};

inline AttentionConfig small_config(const SmallConfig& s) {
  AttentionConfig c;
  c.num_heads_q = 4;
  c.num_heads_kv = 2;
  c.head_dim = s.head_dim;
  c.rotary_dim = s.head_dim;
  c.kv_cache_dtype = s.kv;
  c.block_size = 16;
  c.num_blocks = s.num_blocks;
  c.max_position = s.max_position;
  return c;
}

}  // namespace rcsim::test_support
