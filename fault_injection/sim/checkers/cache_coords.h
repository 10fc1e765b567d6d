// Element-level helpers the data checkers share: which (block, kv head, token, dim) a flat cache
// element index belongs to under a V layout, and the first differing element of two tensors.
#pragma once

#include <cstdint>
#include <string_view>

#include "core/attention_config.h"
#include "core/nan_class.h"
#include "core/tensor.h"

namespace rcsim::sim {

struct CacheCoord {
  int64_t block, head, token, dim;  // dim is -1 for a per-token scale
};
enum class CachePart : uint8_t { kK, kV, kKScale, kVScale };
std::string_view part_name(CachePart p);

CacheCoord unravel(const AttentionConfig& a, CachePart part, VCacheLayout v_layout, int64_t e);

// How a cache part compares across backends (core/nan_class.h): the K cache and the fp8 codes
// and scales are computed (rotated k, quantised by a division), so any NaN equals any NaN; a
// bf16/fp16 V cache is V copied, bit-exact with its NaN payloads.
NanRule cache_part_nan_rule(CachePart part, KvCacheDtype cache_dtype);

// First differing element (element units) of two same-shape contiguous views at or after
// `from`, under `rule`; -1 if equal.
int64_t first_difference(const TensorView& a, const TensorView& b, int64_t from = 0,
                         NanRule rule = NanRule::kBitExact);
uint64_t element_bits(const TensorView& t, int64_t i);

}  // namespace rcsim::sim
