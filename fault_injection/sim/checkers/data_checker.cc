#include "fault_injection/sim/checkers/data_checker.h"

#include <fmt/format.h>

#include "core/check.h"
#include "fault_injection/sim/checkers/cache_coords.h"

namespace rcsim::sim {

std::optional<std::string> compare_heads(const TensorView& got, const TensorView& want,
                                         std::string_view what, NanRule rule) {
  RCSIM_ASSERT(got.rank == 3 && want.rank == 3, "compare_heads ranks");
  if (got.size(0) != want.size(0) || got.size(1) != want.size(1) || got.size(2) != want.size(2)) {
    return fmt::format("{}: shape {} but expected {}", what, got.describe(), want.describe());
  }
  const auto* pg = got.data_as<const uint16_t>();
  const auto* pw = want.data_as<const uint16_t>();
  for (int64_t t = 0; t < got.size(0); ++t) {
    for (int64_t h = 0; h < got.size(1); ++h) {
      for (int64_t d = 0; d < got.size(2); ++d) {
        const uint16_t g = pg[t * got.stride(0) + h * got.stride(1) + d * got.stride(2)];
        const uint16_t w = pw[t * want.stride(0) + h * want.stride(1) + d * want.stride(2)];
        if (!element_bits_equal(got.dtype, g, w, rule)) {
          return fmt::format(
              "{} differs at (token {}, head {}, dim {}): got 0x{:04x} expected 0x{:04x}", what, t,
              h, d, g, w);
        }
      }
    }
  }
  return std::nullopt;
}

std::optional<std::string> compare_cache(const AttentionConfig& attn, const KvCacheViews& got,
                                         const KvCacheViews& want, VCacheLayout v_layout) {
  const std::pair<CachePart, std::pair<const TensorView*, const TensorView*>> parts[] = {
      {CachePart::kK, {&got.k_cache, &want.k_cache}},
      {CachePart::kV, {&got.v_cache, &want.v_cache}},
      {CachePart::kKScale, {&got.k_scale, &want.k_scale}},
      {CachePart::kVScale, {&got.v_scale, &want.v_scale}},
  };
  for (const auto& [part, tensors] : parts) {
    if (tensors.first->is_null()) continue;
    const int64_t e = first_difference(*tensors.first, *tensors.second, 0,
                                       cache_part_nan_rule(part, attn.kv_cache_dtype));
    if (e < 0) continue;
    const CacheCoord c = unravel(attn, part, v_layout, e);
    return fmt::format(
        "{} differs at (block {}, kv head {}, token-in-block {}, dim {}) = slot {}: got 0x{:x} "
        "expected 0x{:x}",
        part_name(part), c.block, c.head, c.token, c.dim, c.block * attn.block_size + c.token,
        element_bits(*tensors.first, e), element_bits(*tensors.second, e));
  }
  return std::nullopt;
}

std::vector<std::string> data_problems(const AttentionConfig& attn, const CallData& d,
                                       VCacheLayout written_v_layout) {
  std::vector<std::string> problems;
  if (auto m = compare_heads(d.q_returned, d.q_expected, "q", NanRule::kNanClass)) problems.push_back(*m);
  if (auto m = compare_heads(d.k_returned, d.k_expected, "k", NanRule::kNanClass)) problems.push_back(*m);
  const QkvViews original =
      split_qkv(d.qkv_original, attn.num_heads_q, attn.num_heads_kv, attn.head_dim);
  if (auto m = compare_heads(d.v_returned, original.v, "v (returned)", NanRule::kBitExact)) problems.push_back(*m);
  const QkvViews after = split_qkv(d.qkv_after, attn.num_heads_q, attn.num_heads_kv, attn.head_dim);
  if (auto m = compare_heads(after.v, original.v, "V region of qkv (must stay untouched)",
                             NanRule::kBitExact)) {
    problems.push_back(*m);
  }
  if (auto m = compare_cache(attn, d.cache_got, d.cache_expected, written_v_layout)) {
    problems.push_back(*m);
  }
  return problems;
}

void judge_data_problems(const CheckContext& ctx, const DispatchRecord& rec,
                         const std::vector<std::string>& problems, const FaultStats& before,
                         const FaultStats& after) {
  const FallbackPolicy policy = ctx.cfg.policy;
  const int64_t garbage = after.injection_count(FaultSite::kFused, FaultKind::kGarbage) -
                          before.injection_count(FaultSite::kFused, FaultKind::kGarbage);
  const int64_t nan = after.injection_count(FaultSite::kFused, FaultKind::kNan) -
                      before.injection_count(FaultSite::kFused, FaultKind::kNan);
  if (garbage + nan > 0 && rec.failure &&
      (policy == FallbackPolicy::kQkSliceBackup || policy == FallbackPolicy::kOutOfPlace)) {
    // These policies rest on "the fused kernel writes only q/k (or only its scratch)"; a
    // kernel that scribbles over the rest of its footprint breaks that promise. Shown, not
    // failed: it is the policy matrix's finding, not a bug in the code under test.
    throw HazardStop{fmt::format(
        "step {} layer {}: policy {} left corrupted data after a {} fault at the fused kernel: {}",
        ctx.step, ctx.layer, policy_name(policy), garbage > 0 ? "garbage" : "nan",
        problems.front())};
  }
  fail(RunVerdict::kCorrectness,
       fmt::format("step {} layer {}: branch {} (policy {}, failure {}): {}", ctx.step, ctx.layer,
                   branch_name(rec.branch), policy_name(policy),
                   rec.failure ? failure_class_name(*rec.failure) : "none", problems.front()));
}

}  // namespace rcsim::sim
