// Element-level helpers the data checkers share: which (block, kv head, token, dim) a flat cache
// element index belongs to under a V layout, and the first differing element of two tensors.
#pragma once

#include <cstdint>
#include <string_view>

#include "core/attention_config.h"
#include "core/tensor.h"

namespace rcsim::sim {

struct CacheCoord {
  int64_t block, head, token, dim;  // dim is -1 for a per-token scale
};
enum class CachePart : uint8_t { kK, kV, kKScale, kVScale };
std::string_view part_name(CachePart p);

CacheCoord unravel(const AttentionConfig& a, CachePart part, VCacheLayout v_layout, int64_t e);

// First differing element (element units) of two same-shape contiguous views at or after
// `from`; -1 if equal.
int64_t first_difference(const TensorView& a, const TensorView& b, int64_t from = 0);
uint64_t element_bits(const TensorView& t, int64_t i);

}  // namespace rcsim::sim
