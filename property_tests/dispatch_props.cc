// Goal (issue 5, properties 2 and 3): the dispatcher's observable decisions.
//  2. Once-only log: any sequence of calls over any number of layer instances and threads, with
//     any mix of recoverable faults, logs exactly one warning per (kernel, failure class) per
//     process, none without a failure; the fallback counters equal the number of fallbacks, per
//     failure class and in total.
//  3. Branch invariant: the branch taken equals the ATOM decision table (semantics.md 1.2 before
//     the PR, 1.3 with it) for every configuration (rotary / q_norm / k_norm present or not,
//     sliding window, head dim, qkv passed or not, logic, policy, fault or not); after a failed
//     fused attempt branch B is never taken; with q_norm absent the fused kernel is never tried.
// Method: the real dispatcher on the CPU backend behind FaultyKernelSet (support/dispatch_run.h).
// The expected branch comes from an independent transcription of the table below, not from
// RopeCacheDispatcher::decide. Negative tests: warn-per-call must falsify 2, and
// branch-b-after-failure must falsify 3.
#include <map>
#include <set>
#include <thread>

#include <fmt/format.h>

#include "core/mutants.h"
#include "fault_injection/plan/fault_plan.h"
#include "property_tests/generators/call_case.h"
#include "property_tests/harness/prop_harness.h"
#include "property_tests/support/dispatch_run.h"

namespace rcsim {
inline void showValue(FallbackPolicy p, std::ostream& os) { os << policy_name(p); }
}  // namespace rcsim

namespace rcsim::props {
namespace {

CaseOptions small_full_rotary_case() {
  CaseOptions o;
  o.allow_partial_rotary = false;  // the March kernel's precondition; prevalidate then attempts
  o.tokens_max = 8;
  return o;
}

// ---- property 3 ------------------------------------------------------------------------------
struct BranchScenario {
  bool has_rotary, has_q_norm, has_k_norm, qkv_present;
  int64_t sliding_window;
  DecisionLogic logic;
  FallbackPolicy policy;
  std::string fault;  // "" = none
};
void showValue(const BranchScenario& s, std::ostream& os) {
  os << "rotary=" << s.has_rotary << " q_norm=" << s.has_q_norm << " k_norm=" << s.has_k_norm
     << " qkv=" << s.qkv_present << " sliding_window=" << s.sliding_window
     << " logic=" << (s.logic == DecisionLogic::kPr279 ? "pr279" : "pr-base")
     << " policy=" << policy_name(s.policy) << " fault='" << s.fault << "'";
}

enum class Expect : uint8_t { kA, kB, kC, kSurfaces };
std::string_view expect_name(Expect e) {
  switch (e) {
    case Expect::kA: return "A";
    case Expect::kB: return "B";
    case Expect::kC: return "C";
    case Expect::kSurfaces: return "surfaces";
  }
  return "?";
}

// The decision table, transcribed from semantics.md 1.2 / 1.3 (and the dispatcher header's one
// documented edge: with qkv absent the fused kernel has nothing to work on and is not attempted).
Expect expected_branch(const BranchScenario& s, int64_t head_dim) {
  const bool use_triton_attn = s.sliding_window != -1 || head_dim != 128;
  const bool all_three = s.has_rotary && s.has_q_norm && s.has_k_norm;
  if (all_three && s.qkv_present) {
    if (s.fault.empty()) return Expect::kA;
    if (s.logic == DecisionLogic::kPrBase) return Expect::kSurfaces;  // no try/except before
    // PR #279 after a failure: B needs q_norm is None, which a fused attempt rules out.
    return Expect::kC;
  }
  if (s.logic == DecisionLogic::kPrBase) {
    return use_triton_attn && s.has_rotary ? Expect::kB : Expect::kC;
  }
  return use_triton_attn && s.has_rotary && !s.has_q_norm ? Expect::kB : Expect::kC;
}

void prop_branch_invariant() {
  const CallCase c = *gen_call_case(small_full_rotary_case());
  // ATOM with the fusion flag passes all of rotary, q_norm, k_norm and qkv: each present with
  // chance 3/4, so the fused attempt (and failures after it) are common.
  const auto mostly_true = [] {
    return *rc::gen::resize(rc::kNominalSize, rc::gen::inRange(0, 4)) != 0;
  };
  BranchScenario s{mostly_true(), mostly_true(), mostly_true(), mostly_true(),
                   *rc::gen::element<int64_t>(-1, 4096),
                   *rc::gen::element(DecisionLogic::kPr279, DecisionLogic::kPrBase),
                   *rc::gen::elementOf(std::vector<FallbackPolicy>(all_policies().begin(),
                                                                   all_policies().end())),
                   *rc::gen::element<std::string>("", "", "fused:unavailable", "fused:launch",
                                                  "fused:torn(k=mid)", "fused:invalid")};
  RC_LOG() << rc::toString(s) << "\n";
  LayerSpec spec = layer_spec_for(c, s.policy);
  spec.has_rotary = s.has_rotary;
  spec.has_q_norm = s.has_q_norm;
  spec.has_k_norm = s.has_k_norm;
  spec.sliding_window = s.sliding_window;
  spec.logic = s.logic;
  const Expect want = expected_branch(s, c.cfg.head_dim);
  classify("expected", expect_name(want));
  classify("logic", s.logic == DecisionLogic::kPr279 ? "pr279" : "pr-base");
  classify("fault", s.fault.empty() ? "none" : s.fault);
  DispatchSession session(parse_fault_plan(s.fault), 1);
  const DispatchRun run = session.call(session.add_layer(spec), c, s.qkv_present);
  if (want == Expect::kSurfaces) {
    RC_ASSERT(run.surfaced.has_value());
    return;
  }
  if (run.surfaced) RC_FAIL("unexpected DispatchError: " + run.surfaced_what);
  const DispatchRecord& rec = *run.record;
  const Branch want_branch = want == Expect::kA   ? Branch::kFused
                             : want == Expect::kB ? Branch::kRopeCache
                                                  : Branch::kNonFused;
  if (rec.branch != want_branch) {
    RC_FAIL(fmt::format("branch {} taken, the table says {}", branch_name(rec.branch),
                        branch_name(want_branch)));
  }
  if (rec.failure) RC_ASSERT(rec.branch != Branch::kRopeCache);  // B never normalises
  if (!s.has_q_norm) RC_ASSERT(!rec.fused_attempted);
}

RCSIM_PROP(DispatchProps, BranchEqualsAtomDecisionTable, ()) { prop_branch_invariant(); }

TEST(DispatchPropsNegative, BranchBAfterFailureFalsifiesBranchInvariant) {
  ScopedMutant mutant(Mutant::kBranchBAfterFailure);
  RunOptions options;
  options.disable_shrinking = true;
  options.replay_regressions = false;
  options.quiet = true;
  expect_failed(check("DispatchProps/Branch[branch-b-after-failure]", &prop_branch_invariant,
                      options),
                "branch-b-after-failure");
}

// ---- property 2 ------------------------------------------------------------------------------
// Rules that fire on some calls only (integer ratios), all recoverable, all at the fused site.
rc::Gen<std::string> gen_mixed_fault_plan() {
  return rc::gen::exec([] {
    const std::vector<std::string> rules = {
        "fused:unavailable(ratio=1/4)", "fused:launch(ratio=1/3)", "fused:invalid(ratio=1/4)",
        "fused:torn(k=mid,ratio=1/3)", "fused:oom(ratio=1/5)"};
    std::string plan;
    for (const std::string& rule : rules) {
      if (*rc::gen::arbitrary<bool>()) plan += (plan.empty() ? "" : ";") + rule;
    }
    return plan;
  });
}

void prop_once_only_log() {
  const CallCase c = *gen_call_case(small_full_rotary_case());
  const std::string plan = *gen_mixed_fault_plan();
  const int layers = *rc::gen::inRange(1, 5);
  const int threads = *rc::gen::inRange(1, 5);
  const int calls_per_thread = *rc::gen::inRange(1, 7);
  std::vector<FallbackPolicy> policies;
  for (int l = 0; l < layers; ++l) {
    // Every policy that falls back for these faults (all of them do).
    policies.push_back(*rc::gen::elementOf(
        std::vector<FallbackPolicy>(all_policies().begin(), all_policies().end())));
  }
  const uint64_t fault_seed = *rc::gen::arbitrary<uint64_t>();
  classify("fault_plan", plan.empty() ? "none" : std::to_string(std::count(plan.begin(), plan.end(), ';') + 1) + "-rules");
  classify("threads", std::to_string(threads));
  classify("layers", std::to_string(layers));
  RC_LOG() << "plan '" << plan << "' layers " << layers << " threads " << threads << " calls "
           << calls_per_thread << "\n";

  DispatchSession session(parse_fault_plan(plan), fault_seed);
  for (int l = 0; l < layers; ++l) session.add_layer(layer_spec_for(c, policies[static_cast<std::size_t>(l)]));
  std::vector<std::vector<DispatchRun>> per_thread(static_cast<std::size_t>(threads));
  {
    std::vector<std::thread> pool;
    for (int th = 0; th < threads; ++th) {
      pool.emplace_back([&, th] {
        for (int i = 0; i < calls_per_thread; ++i) {
          per_thread[static_cast<std::size_t>(th)].push_back(
              session.call((th + i) % layers, c));
        }
      });
    }
    for (auto& t : pool) t.join();
  }
  std::set<FailureClass> fallback_classes;
  std::map<FailureClass, int64_t> fallbacks_by_class;
  int64_t fallbacks = 0, warnings_in_records = 0;
  std::map<FailureClass, int64_t> warned_records;
  for (const auto& runs : per_thread) {
    for (const DispatchRun& run : runs) {
      if (run.surfaced) RC_FAIL("a recoverable fault surfaced: " + run.surfaced_what);
      const DispatchRecord& rec = *run.record;
      if (rec.branch != Branch::kFused) {
        RC_ASSERT(rec.failure.has_value());
        ++fallbacks;
        ++fallbacks_by_class[*rec.failure];
        fallback_classes.insert(*rec.failure);
      }
      if (rec.warning_logged) {
        RC_ASSERT(rec.failure.has_value());
        ++warnings_in_records;
        ++warned_records[*rec.failure];
      }
    }
  }
  const std::vector<std::string> lines = session.process().log_lines();
  int64_t warning_lines = 0;
  for (const std::string& line : lines) {
    if (line.find("falling back") != std::string::npos) ++warning_lines;
  }
  // Exactly one warning per failure class that caused a fallback; none otherwise.
  if (warning_lines != static_cast<int64_t>(fallback_classes.size())) {
    RC_FAIL(fmt::format("{} warning lines for {} failure classes that fell back ({} fallbacks)",
                        warning_lines, fallback_classes.size(), fallbacks));
  }
  RC_ASSERT(warnings_in_records == static_cast<int64_t>(fallback_classes.size()));
  for (const auto& [cls, count] : warned_records) RC_ASSERT(count == 1);
  RC_ASSERT(session.process().fallback_count_total() == fallbacks);
  for (FailureClass cls : kAllFailureClasses) {
    const auto it = fallbacks_by_class.find(cls);
    RC_ASSERT(session.process().fallback_count(cls) == (it == fallbacks_by_class.end() ? 0 : it->second));
  }
}

RCSIM_PROP(DispatchProps, OneWarningPerFailureClassAcrossCallsLayersThreads, ()) {
  prop_once_only_log();
}

TEST(DispatchPropsNegative, WarnPerCallFalsifiesOnceOnlyLog) {
  ScopedMutant mutant(Mutant::kWarnPerCall);
  RunOptions options;
  options.disable_shrinking = true;
  options.replay_regressions = false;
  options.quiet = true;
  expect_failed(check("DispatchProps/OnceOnly[warn-per-call]", &prop_once_only_log, options),
                "warn-per-call");
}

}  // namespace
}  // namespace rcsim::props
