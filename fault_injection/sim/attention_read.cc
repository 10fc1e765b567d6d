#include "fault_injection/sim/attention_read.h"

#include <cmath>

#include "core/check.h"
#include "core/mutants.h"
#include "kernels/common/cache_layout.h"
#include "kernels/common/numeric.h"

namespace rcsim::sim {
namespace {

float load_activation(const TensorView& v, int64_t element) {
  const auto bits = v.data_as<const uint16_t>()[element];
  return activation_to_float(bits, v.dtype);
}

float load_storage(const TensorView& cache, int64_t element) {
  if (is_fp8(cache.dtype)) {
    return numeric::fp8_bits_to_float(cache.data_as<const uint8_t>()[element],
                                      fp8_format(cache.dtype));
  }
  return load_activation(cache, element);
}

}  // namespace

float read_cache_element(const CacheReadSpec& spec, const KvCacheViews& cache, bool is_v,
                         int64_t page, int64_t head, int64_t token_in_page, int64_t dim) {
  const layout::PagedCacheShape shape = spec.cfg.cache_shape();
  int64_t element = 0;
  if (!is_v) {
    element = layout::k_xpacked_offset(shape, page, head, token_in_page, dim);
  } else {
    VCacheLayout v_layout = spec.v_layout;
    if (mutant_active(Mutant::kReaderLayoutMismatch)) {
      // The mutant: the reader believes the other V layout than the one it declared.
      v_layout = v_layout == VCacheLayout::kShuffle ? VCacheLayout::kPlain : VCacheLayout::kShuffle;
    }
    element = v_layout == VCacheLayout::kShuffle
                  ? layout::v_shuffle_offset(shape, page, head, token_in_page, dim)
                  : layout::v_plain_offset(shape, page, head, token_in_page, dim);
  }
  const TensorView& data = is_v ? cache.v_cache : cache.k_cache;
  float value = load_storage(data, element);
  if (is_fp8(spec.cfg.kv_cache_dtype)) {
    // Per-token dequant scale [NB, Hkv, BS]: stored = fp8(x / s), so x ~ stored * s.
    const TensorView& scale = is_v ? cache.v_scale : cache.k_scale;
    RCSIM_ASSERT(!scale.is_null(), "fp8 cache without scales");
    value *= scale.data_as<const float>()[layout::scale_offset(shape, page, head, token_in_page)];
  }
  return value;
}

void paged_attention_read(const CacheReadSpec& spec, const KvCacheViews& cache,
                          std::span<const int64_t> block_table, int64_t context_tokens,
                          const TensorView& q_row, std::span<float> out) {
  const AttentionConfig& cfg = spec.cfg;
  const int64_t hq = cfg.num_heads_q;
  const int64_t d_max = cfg.head_dim;
  const int64_t group = hq / cfg.num_heads_kv;
  RCSIM_ASSERT(static_cast<int64_t>(out.size()) == hq * d_max, "output size");
  RCSIM_ASSERT(context_tokens >= 1 &&
                   context_tokens <= static_cast<int64_t>(block_table.size()) * cfg.block_size,
               "context {} beyond the block table", context_tokens);
  RCSIM_ASSERT(q_row.rank == 2 && q_row.size(0) == hq && q_row.size(1) == d_max, "q_row shape");
  const float scale = 1.0f / std::sqrt(static_cast<float>(d_max));
  const auto ctx = static_cast<std::size_t>(context_tokens);
  const auto dim = static_cast<std::size_t>(d_max);
  // Dequantised K and V rows of one KV head over the context, gathered once per KV head and
  // shared by its GQA group of q heads.
  std::vector<float> keys(ctx * dim), values(ctx * dim), scores(ctx), q(dim);
  for (int64_t kv_head = 0; kv_head < cfg.num_heads_kv; ++kv_head) {
    for (int64_t p = 0; p < context_tokens; ++p) {
      const int64_t page = block_table[static_cast<std::size_t>(p / cfg.block_size)];
      const int64_t tok = p % cfg.block_size;
      for (int64_t d = 0; d < d_max; ++d) {
        const auto i = static_cast<std::size_t>(p) * dim + static_cast<std::size_t>(d);
        keys[i] = read_cache_element(spec, cache, false, page, kv_head, tok, d);
        values[i] = read_cache_element(spec, cache, true, page, kv_head, tok, d);
      }
    }
    for (int64_t h = kv_head * group; h < (kv_head + 1) * group; ++h) {
      for (int64_t d = 0; d < d_max; ++d) {
        q[static_cast<std::size_t>(d)] =
            load_activation(q_row, h * q_row.stride(0) + d * q_row.stride(1));
      }
      float score_max = -INFINITY;
      for (std::size_t p = 0; p < ctx; ++p) {
        float dot = 0.0f;
        for (std::size_t d = 0; d < dim; ++d) dot += q[d] * keys[p * dim + d];
        scores[p] = dot * scale;
        score_max = std::fmax(score_max, scores[p]);
      }
      float denom = 0.0f;
      for (float& s : scores) {
        s = std::exp(s - score_max);
        denom += s;
      }
      float* o = out.data() + h * d_max;
      for (std::size_t d = 0; d < dim; ++d) o[d] = 0.0f;
      for (std::size_t p = 0; p < ctx; ++p) {
        const float w = scores[p] / denom;
        for (std::size_t d = 0; d < dim; ++d) o[d] += w * values[p * dim + d];
      }
    }
  }
}

}  // namespace rcsim::sim
