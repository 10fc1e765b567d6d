#include "fault_injection/sim/checkers/record_checker.h"

#include <fmt/format.h>

namespace rcsim::sim {

namespace {
bool policy_backs_up(FallbackPolicy p) { return p != FallbackPolicy::kOutOfPlace; }
}  // namespace

void check_record(const CheckContext& ctx, const DispatchRecord& r, int64_t injected,
                  bool fused_disabled) {
  const FallbackPolicy policy = ctx.cfg.policy;
  auto bad = [&](std::string_view what) {
    fail(RunVerdict::kCorrectness,
         fmt::format("step {} layer {}: dispatch record contradicts policy {}: {} (branch {}, "
                     "failure {}, injected here {})",
                     ctx.step, ctx.layer, policy_name(policy), what, branch_name(r.branch),
                     r.failure ? failure_class_name(*r.failure) : "none", injected));
  };
  // Qwen3 layers have q_norm and k_norm: after a failed fused attempt PR #279 goes to C, never
  // B (B does not normalise). B is only right for norm-less layers, which the engine has none of.
  if (r.branch == Branch::kRopeCache) bad("branch B taken although q_norm is set");
  if (r.fused_skipped_by_policy) {
    // Only two policies may skip the fused attempt: sticky (after 'unavailable' in this
    // process) and prevalidate (a precondition fails, which the engine's inputs never do).
    if (policy != FallbackPolicy::kSticky || !fused_disabled) {
      bad("fused attempt skipped without the policy's reason");
    }
    if (r.fused_attempted || r.backup_taken) bad("a skipped fused attempt still ran or backed up");
  } else {
    if (r.failure && !r.fused_attempted) bad("a fused failure without a fused attempt");
    if (r.failure && !r.failure_injected) bad("failure not tagged as injected (a real bug)");
    if (r.failure && injected == 0) bad("a failure although no fault fired in this call");
  }
  if (r.failure && r.branch == Branch::kFused) bad("fused branch reported after a failure");
  if (r.branch == Branch::kFused && !r.fused_attempted) bad("fused branch without an attempt");
  if (!r.failure && r.branch != Branch::kFused && !r.fused_skipped_by_policy) {
    bad("fell back without a failure and without a policy skip");
  }
  if (r.fused_attempted && policy_backs_up(policy) && !r.backup_taken) {
    bad("fused attempted without the backup the policy promises");
  }
  if (r.failure && r.backup_taken && !r.restored) bad("backup taken but qkv not restored");
  ctx.result.checks_passed += 1;
}

}  // namespace rcsim::sim
