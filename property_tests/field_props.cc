// Goal (issue 10, item 7): stale or out-of-range positions. CUDA-graph buffers padded with stale
// positions can index outside the cos/sin table, and the kernel does not clamp. rcsim's contract:
// validation rejects such a batch before anything is written, under every policy, whichever token
// (a real one or a padded one with slot -1) carries the stale position; and in-range stale
// positions on padded tokens are harmless (they are normalised and rotated, never cached).
// Method: the real dispatcher on the CPU backend; a generated case gets one position replaced by
// max_position + r (r >= 0) or by -1 - r; the call must throw InvalidInput, leave qkv, caches and
// scales byte-identical, and log nothing. The in-range half: a padded token's position is moved
// to another in-range value and the cache must not change.
#include <fmt/format.h>

#include "core/dispatch/rope_cache_dispatcher.h"
#include "core/mutants.h"
#include "kernels/cpu/cpu_backend.h"
#include "property_tests/support/prop_backend.h"
#include "property_tests/generators/call_case.h"
#include "property_tests/harness/prop_harness.h"
#include "property_tests/support/dispatch_run.h"

namespace rcsim::props {
namespace {

RopeCacheInputs inputs_of(const CallTensors& t) {
  RopeCacheInputs in;
  in.qkv = t.qkv.view();
  const QkvViews v = t.split();
  in.q = v.q;
  in.k = v.k;
  in.v = v.v;
  in.positions = t.positions.view();
  in.slot_mapping = t.slots.view();
  in.cos_sin_cache = t.cos_sin.view();
  in.q_weight = t.q_weight.view();
  in.k_weight = t.k_weight.view();
  in.cache = t.cache_views();
  return in;
}

bool same_bytes(const CallTensors& a, const CallTensors& b) {
  return a.qkv.bytes_equal(b.qkv) && a.k_cache.bytes_equal(b.k_cache) &&
         a.v_cache.bytes_equal(b.v_cache) && a.k_scale.bytes_equal(b.k_scale) &&
         a.v_scale.bytes_equal(b.v_scale);
}

CaseOptions field_case() {
  CaseOptions o;
  o.allow_partial_rotary = false;
  o.tokens_max = 16;
  return o;
}

RCSIM_PROP(FieldProps, StalePositionOutsideTheTableIsRejectedWritingNothing, ()) {
  const CallCase c = *gen_call_case(field_case());
  const FallbackPolicy policy = *rc::gen::elementOf(
      std::vector<FallbackPolicy>(all_policies().begin(), all_policies().end()));
  const auto token = static_cast<std::size_t>(*rc::gen::inRange<int64_t>(0, c.num_tokens));
  const bool above = *rc::gen::arbitrary<bool>();
  const int64_t r = *rc::gen::inRange<int64_t>(0, 1 << 20);
  CallTensors t = make_call_tensors(c);
  t.positions.as<int64_t>()[token] = above ? c.cfg.max_position + r : -1 - r;
  const bool padded = t.slots.as<int64_t>()[token] < 0;
  classify("stale", above ? "beyond max_position" : "negative");
  classify("token", padded ? "padded (slot -1)" : "mapped");
  classify("policy", policy_name(policy));
  const CallTensors before = t;

  PropBackend backend;
  DispatchProcess process;
  RopeCacheDispatcher dispatcher(layer_spec_for(c, policy), backend.kernels(), process);
  bool rejected = false;
  try {
    dispatcher.rope_cache(inputs_of(t));
  } catch (const InvalidInput&) {
    rejected = true;
  }
  RC_ASSERT(rejected);
  RC_ASSERT(same_bytes(t, before));
  RC_ASSERT(process.log_lines().empty());
}

RCSIM_PROP(FieldProps, InRangeStalePositionOnAPaddedTokenChangesNoCacheByte, ()) {
  const CallCase c = *gen_call_case(field_case());
  CallTensors t = make_call_tensors(c);
  std::vector<std::size_t> padded;
  for (std::size_t i = 0; i < static_cast<std::size_t>(c.num_tokens); ++i) {
    if (t.slots.as<int64_t>()[i] < 0) padded.push_back(i);
  }
  RC_PRE(!padded.empty());
  const std::size_t token = *rc::gen::elementOf(padded);
  CallTensors stale = t;
  stale.positions.as<int64_t>()[token] = *rc::gen::inRange<int64_t>(0, c.cfg.max_position);
  const FallbackPolicy policy = *rc::gen::elementOf(
      std::vector<FallbackPolicy>(all_policies().begin(), all_policies().end()));
  classify("policy", policy_name(policy));
  for (CallTensors* run : {&t, &stale}) {
    PropBackend backend;
    DispatchProcess process;
    RopeCacheDispatcher dispatcher(layer_spec_for(c, policy), backend.kernels(), process);
    dispatcher.rope_cache(inputs_of(*run));
  }
  RC_ASSERT(t.k_cache.bytes_equal(stale.k_cache));
  RC_ASSERT(t.v_cache.bytes_equal(stale.v_cache));
  RC_ASSERT(t.k_scale.bytes_equal(stale.k_scale));
  RC_ASSERT(t.v_scale.bytes_equal(stale.v_scale));
}

// The second property must be able to fail: with the padded-tokens-cached mutant a padded token's
// stale position reaches the cache, and the property must find the changed byte.
TEST(FieldPropsNegative, PaddedTokensCachedFalsifiesStalePositionHarmlessness) {
  ScopedMutant mutant(Mutant::kPaddedTokensCached);
  RunOptions options;
  options.disable_shrinking = true;
  options.replay_regressions = false;
  options.quiet = true;
  const Outcome outcome =
      check("FieldProps/InRangeStalePosition[padded-tokens-cached]",
            &rcsimPropImpl_FieldProps_InRangeStalePositionOnAPaddedTokenChangesNoCacheByte, options);
  expect_failed(outcome, "padded-tokens-cached");
}

}  // namespace
}  // namespace rcsim::props
