// The dispatcher's policy vocabulary: branch and policy names, the fallback order each policy
// promises, ATOM's static kv scale, and the branch decision before and after a fused failure.
#include "core/dispatch/rope_cache_dispatcher.h"

#include <array>
#include <new>
#include <utility>

#include <fmt/format.h>

#include "core/check.h"
#include "core/limits.h"
#include "core/mutants.h"

namespace rcsim {

// ---- names ---------------------------------------------------------------------------------
namespace {
constexpr std::array<std::pair<FallbackPolicy, std::string_view>, 6> kPolicyNames = {{
    {FallbackPolicy::kPr279, "pr279"},
    {FallbackPolicy::kPr279ModelOrder, "pr279-model-order"},
    {FallbackPolicy::kSticky, "sticky"},
    {FallbackPolicy::kQkSliceBackup, "qk-slice-backup"},
    {FallbackPolicy::kOutOfPlace, "out-of-place"},
    {FallbackPolicy::kPrevalidate, "prevalidate"},
}};
constexpr auto kPolicies = [] {
  std::array<FallbackPolicy, kPolicyNames.size()> out{};
  for (std::size_t i = 0; i < kPolicyNames.size(); ++i) out[i] = kPolicyNames[i].first;
  return out;
}();
}  // namespace

std::string_view branch_name(Branch b) {
  switch (b) {
    case Branch::kFused: return "A-fused";
    case Branch::kRopeCache: return "B-rope-cache";
    case Branch::kNonFused: return "C-non-fused";
  }
  return "?";
}

std::string_view policy_name(FallbackPolicy p) {
  for (const auto& [policy, name] : kPolicyNames) {
    if (policy == p) return name;
  }
  return "?";
}
std::optional<FallbackPolicy> policy_from_name(std::string_view name) {
  for (const auto& [policy, n] : kPolicyNames) {
    if (n == name) return policy;
  }
  return std::nullopt;
}
std::span<const FallbackPolicy> all_policies() { return kPolicies; }

// The policies that only change *how* the fused attempt is guarded (sticky, slice backup, out of
// place) keep the PR's fallback order, so that comparing them with pr279 isolates that one change.
FallbackOrder fallback_order_of(FallbackPolicy p) {
  switch (p) {
    case FallbackPolicy::kPr279ModelOrder:
    case FallbackPolicy::kPrevalidate: return FallbackOrder::kNormThenRope;
    case FallbackPolicy::kPr279:
    case FallbackPolicy::kSticky:
    case FallbackPolicy::kQkSliceBackup:
    case FallbackPolicy::kOutOfPlace: return FallbackOrder::kRopeThenNorm;
  }
  return FallbackOrder::kRopeThenNorm;
}

float atom_static_kv_scale(KvCacheDtype kv_cache_dtype) {
  if (!is_fp8(kv_cache_dtype)) return 1.0f;
  return numeric::fp8_max(numeric::Fp8Format::kE4M3FN) / numeric::fp8_max(fp8_format(kv_cache_dtype));
}

// ---- decision logic ------------------------------------------------------------------------
Branch RopeCacheDispatcher::decide(const LayerSpec& spec, bool qkv_present) {
  const bool all_three = spec.has_rotary && spec.has_q_norm && spec.has_k_norm;
  // The review's edge: with qkv absent there is nothing for the fused kernel to work on in place,
  // so it is never attempted (ATOM would have crashed on None), under either logic.
  if (all_three && qkv_present) return Branch::kFused;
  if (spec.logic == DecisionLogic::kPrBase) {
    return spec.use_triton_attn() && spec.has_rotary ? Branch::kRopeCache : Branch::kNonFused;
  }
  // PR #279: B additionally requires q_norm is None.
  return spec.use_triton_attn() && spec.has_rotary && !spec.has_q_norm ? Branch::kRopeCache
                                                                       : Branch::kNonFused;
}

Branch RopeCacheDispatcher::decide_after_failure(const LayerSpec& spec) {
  const bool q_norm_guard = !spec.has_q_norm || mutant_active(Mutant::kBranchBAfterFailure);
  return spec.use_triton_attn() && spec.has_rotary && q_norm_guard ? Branch::kRopeCache
                                                                   : Branch::kNonFused;
}


}  // namespace rcsim
