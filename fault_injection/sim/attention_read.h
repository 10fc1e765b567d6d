// The reference paged-attention read of the simulator: what the decode/prefill attention kernel
// that follows rope_cache would compute from the KV cache. It reads the cache through the layout
// it *declares* (K x-packed, V shuffle or plain, per-token fp8 scales), independently of whoever
// wrote it, so a writer/reader disagreement (issue 10 item 6) changes its output.
//
// Math: for each query head h (KV head h / (Hq/Hkv)), scores s_p = (q_h . k_p) / sqrt(D) over the
// positions p in [0, context_tokens) of one request, softmax in fp32 (max-subtracted, fixed order),
// out_h = sum_p softmax_p * v_p. Sequential and single-threaded, so bit-reproducible.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "core/attention_config.h"
#include "core/kernel_interfaces.h"
#include "core/tensor.h"

namespace rcsim::sim {

struct CacheReadSpec {
  AttentionConfig cfg;
  VCacheLayout v_layout = VCacheLayout::kShuffle;  // the layout the reader assumes
};

// Dequantised cache element of (page, kv head, token-in-page, dim) for K (is_v false) or V.
float read_cache_element(const CacheReadSpec& spec, const KvCacheViews& cache, bool is_v,
                         int64_t page, int64_t head, int64_t token_in_page, int64_t dim);

// out has Hq * D floats. q_row is the query token's q, [Hq, D] (any strides) in the act dtype.
// Honours Mutant::kReaderLayoutMismatch (the reader swaps the V layout it declared).
void paged_attention_read(const CacheReadSpec& spec, const KvCacheViews& cache,
                          std::span<const int64_t> block_table, int64_t context_tokens,
                          const TensorView& q_row, std::span<float> out);

}  // namespace rcsim::sim
