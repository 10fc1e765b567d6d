#include "fault_injection/sim/checkers/write_set_checker.h"

#include <vector>

#include <fmt/format.h>

#include "fault_injection/sim/checkers/cache_coords.h"

namespace rcsim::sim {

void check_write_set(const CheckContext& ctx, const Step& step, const KvCacheViews& sut,
                     const KvCacheViews& committed) {
  const AttentionConfig& attn = ctx.attn;
  std::vector<bool> in_write_set(static_cast<std::size_t>(attn.num_slots()), false);
  for (int64_t i = 0; i < step.real_tokens; ++i) {
    in_write_set[static_cast<std::size_t>(step.rows[static_cast<std::size_t>(i)].slot)] = true;
  }
  const std::pair<CachePart, std::pair<const TensorView*, const TensorView*>> parts[] = {
      {CachePart::kK, {&sut.k_cache, &committed.k_cache}},
      {CachePart::kV, {&sut.v_cache, &committed.v_cache}},
      {CachePart::kKScale, {&sut.k_scale, &committed.k_scale}},
      {CachePart::kVScale, {&sut.v_scale, &committed.v_scale}},
  };
  for (const auto& [part, tensors] : parts) {
    if (tensors.first->is_null()) continue;
    const int64_t n = tensors.first->numel();
    // The committed state is the CPU oracle's; on a GPU backend the cache's earlier K entries
    // hold the GPU's own NaN bits (core/nan_class.h), so computed parts compare by NaN class.
    const NanRule rule = cache_part_nan_rule(part, attn.kv_cache_dtype);
    for (int64_t e = first_difference(*tensors.first, *tensors.second, 0, rule); e >= 0 && e < n;
         e = first_difference(*tensors.first, *tensors.second, e + 1, rule)) {
      const CacheCoord c = unravel(attn, part, VCacheLayout::kShuffle, e);
      const CacheCoord c2 = unravel(attn, part, VCacheLayout::kPlain, e);
      const int64_t slot = c.block * attn.block_size + c.token;
      const int64_t slot2 = c2.block * attn.block_size + c2.token;
      const bool ok = in_write_set[static_cast<std::size_t>(slot)] ||
                      (part == CachePart::kV && in_write_set[static_cast<std::size_t>(slot2)]);
      if (!ok) {
        fail(RunVerdict::kCorrectness,
             fmt::format("step {} layer {} (aborted step): {} changed outside the step's write "
                         "set at (block {}, kv head {}, token-in-block {}, dim {}) = slot {}",
                         ctx.step, ctx.layer, part_name(part), c.block, c.head, c.token, c.dim,
                         slot));
      }
    }
  }
  ctx.result.checks_passed += 1;
}

}  // namespace rcsim::sim
