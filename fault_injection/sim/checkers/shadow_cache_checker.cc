#include "fault_injection/sim/checkers/shadow_cache_checker.h"

#include <fmt/format.h>

#include "core/dispatch/rope_cache_dispatcher.h"
#include "core/nan_class.h"
#include "kernels/common/cache_layout.h"

namespace rcsim::sim {

void check_live_cache_vs_shadow(const CheckContext& ctx, std::span<const LayerCachePair> layers,
                                std::span<const Request> requests) {
  const AttentionConfig& attn = ctx.attn;
  if (is_fp8(attn.kv_cache_dtype) || ctx.cfg.sliding_window >= 0) return;
  const bool enforce = fallback_order_of(ctx.cfg.policy) == FallbackOrder::kNormThenRope;
  const layout::PagedCacheShape shape = attn.cache_shape();
  for (std::size_t l = 0; l < layers.size(); ++l) {
    const auto* sut_k = layers[l].sut.k_cache.data_as<const uint16_t>();
    const auto* sh_k = layers[l].shadow.k_cache.data_as<const uint16_t>();
    const auto* sut_v = layers[l].sut.v_cache.data_as<const uint16_t>();
    const auto* sh_v = layers[l].shadow.v_cache.data_as<const uint16_t>();
    for (const Request& r : requests) {
      if (r.finished || r.processed_tokens == 0) continue;
      for (int64_t p = 0; p < r.processed_tokens; ++p) {
        const int64_t page = r.block_table[static_cast<std::size_t>(p / attn.block_size)];
        const int64_t tok = p % attn.block_size;
        ++ctx.result.shadow_cache_positions_checked;
        bool differs = false;
        for (int64_t h = 0; h < attn.num_heads_kv; ++h) {
          for (int64_t d = 0; d < attn.head_dim; ++d) {
            const int64_t ko = layout::k_xpacked_offset(shape, page, h, tok, d);
            const int64_t vo = layout::v_shuffle_offset(shape, page, h, tok, d);
            // K is computed (NaN class, core/nan_class.h); V is copied (bit-exact).
            const bool k_same =
                element_bits_equal(attn.cache_storage_dtype(), sut_k[ko], sh_k[ko], NanRule::kNanClass);
            const bool v_same = sut_v[vo] == sh_v[vo];
            if (!k_same || !v_same) differs = true;
            if (enforce && (!k_same || !v_same)) {
              fail(RunVerdict::kCorrectness,
                   fmt::format("step {} layer {}: request {} position {} (kv head {}, dim {}): "
                               "the cache after a mixed fused/fallback history differs from "
                               "the all-fused shadow (K 0x{:04x} vs 0x{:04x}, V 0x{:04x} vs "
                               "0x{:04x}) under a model-order fallback",
                               ctx.step, l, r.id, p, h, d, sut_k[ko], sh_k[ko], sut_v[vo],
                               sh_v[vo]));
            }
          }
        }
        if (differs) ++ctx.result.shadow_cache_positions_differing;
      }
    }
  }
  if (enforce) ctx.result.checks_passed += 1;
}

}  // namespace rcsim::sim
