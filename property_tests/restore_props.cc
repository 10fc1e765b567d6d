// Goal (issue 5, properties 1 and 5): the restore promise of PR #279's fallback and of the
// review's alternative policies, under injected faults.
//  1. Restore: for every policy and every fault a fused call can recover from, after the call qkv,
//     the returned q/k, both caches and both scale buffers are byte-identical to what the fallback
//     alone computes from the pristine input. Whole-buffer byte equality with sentinel-filled
//     caches means: every mapped slot holds the fallback's value, every other byte is untouched,
//     -1 slots wrote nothing, and all partial writes of the failed fused call were overwritten.
//  5. Policy safety matrix: for every (policy, fault kind) cell the expected outcome - restored,
//     surfaces (DispatchError, nothing hidden) or CORRUPTS (RapidCheck finds a silent corruption)
//     - is written below and asserted cell by cell; plus the sticky policy's "stop attempting
//     after unavailable" and out-of-place's "no backup".
// Method: the real RopeCacheDispatcher over the CPU backend behind FaultyKernelSet with a fault
// plan from the generator; two oracles (the same dispatcher with the fused module missing, and
// the CPU non-fused composition in the policy's promised order; support/dispatch_run.h).
// Negative tests: dispatcher mutants (restore skipped, only q restored, fallback order swapped)
// must falsify property 1; a dispatcher that falls back after a sticky device error
// (sticky-error-falls-back) must fail the matrix's zero-fallback assertion.
#include <array>
#include <atomic>
#include <map>

#include <fmt/format.h>

#include "core/mutants.h"
#include "fault_injection/plan/fault_plan.h"
#include "property_tests/generators/call_case.h"
#include "property_tests/harness/prop_harness.h"
#include "property_tests/support/compare.h"
#include "property_tests/support/dispatch_run.h"

namespace rcsim {
// RapidCheck prints generated values through showValue (found by ADL).
inline void showValue(FallbackPolicy p, std::ostream& os) { os << policy_name(p); }
}  // namespace rcsim

namespace rcsim::props {
namespace {

// ---- fault generators ------------------------------------------------------------------------
// Faults of the fused call a fallback can recover from: nothing written, torn at k units, garbage
// or NaN in the q / k / cache footprint, cache-only writes, API drift, the op's own OOM.
// `with_payloads`: also garbage / NaN written into the dying call's footprint of qkv. out-of-place
// does not promise to survive those (it takes no backup: a kernel scribbling on qkv itself is
// outside its fault model; the matrix below shows it).
rc::Gen<std::string> gen_recoverable_fused_fault(bool with_payloads) {
  return rc::gen::exec([with_payloads] {
    const std::string k = *rc::gen::element<std::string>("0", "1", "mid", "last", "all");
    const std::string region = *rc::gen::element<std::string>("q", "k", "cache");
    const std::string unit = *rc::gen::element<std::string>("head", "token");
    const int kinds = with_payloads ? 8 : 6;
    switch (*rc::gen::resize(rc::kNominalSize, rc::gen::inRange(0, kinds))) {
      case 0: return std::string("fused:unavailable");
      case 1: return std::string("fused:launch");
      case 2: return std::string("fused:invalid");
      case 3: return std::string("fused:oom");
      case 4: return fmt::format("fused:torn(unit={},k={})", unit, k);
      case 5: return fmt::format("fused:cacheonly(unit={},k={})", unit, k);
      case 6: return fmt::format("fused:garbage(unit={},k={},region={})", unit, k, region);
      default: return fmt::format("fused:nan(unit={},k={},region={})", unit, k, region);
    }
  });
}

std::string fault_label(const std::string& spec) {
  const auto colon = spec.find(':');
  const auto paren = spec.find('(');
  return spec.substr(colon + 1, paren == std::string::npos ? std::string::npos : paren - colon - 1);
}

rc::Gen<FallbackPolicy> gen_policy() {
  return rc::gen::elementOf(std::vector<FallbackPolicy>(all_policies().begin(), all_policies().end()));
}

// ---- property 1 ------------------------------------------------------------------------------
// Head dim 128 (no sliding window): ATOM's use_triton_attn is false, so the fallback writes V in
// the same shuffle order as the fused kernel and CAN overwrite its partial writes. For D != 128
// it cannot; that is a finding of its own (FusedShuffleVLeftBehind... below).
CaseOptions restore_case_options() {
  CaseOptions o;
  o.head_dim = 128;
  return o;
}

void prop_restore() {
  const CallCase c = *gen_call_case(restore_case_options());
  const FallbackPolicy policy = *gen_policy();
  const std::string spec =
      *gen_recoverable_fused_fault(/*with_payloads=*/policy != FallbackPolicy::kOutOfPlace);
  const uint64_t fault_seed = *rc::gen::arbitrary<uint64_t>();
  classify_case(c);
  classify("policy", policy_name(policy));
  classify("fault", fault_label(spec));
  RC_LOG() << "policy " << policy_name(policy) << ", fault plan '" << spec << "', fault seed "
           << fault_seed << "\n";
  const RestoreCheck r = check_restore(c, policy, parse_fault_plan(spec), fault_seed);
  if (r.verdict != RestoreVerdict::kRestored) {
    RC_FAIL(fmt::format("{}: {}", restore_verdict_name(r.verdict), r.detail));
  }
  const DispatchRecord& rec = *r.record;
  RC_ASSERT(rec.branch == Branch::kNonFused);  // every fault here fails the call; q_norm is set
  // out-of-place never needs a backup; every other policy backs up whenever it attempts.
  if (policy == FallbackPolicy::kOutOfPlace) {
    RC_ASSERT(!rec.backup_taken);
  } else if (rec.fused_attempted) {
    RC_ASSERT(rec.backup_taken && rec.restored);
  }
  RC_ASSERT(rec.warning_logged);  // the first fallback of a fresh process warns
}

RCSIM_PROP(RestoreProps, QkvAndCacheEqualFallbackAloneAfterRecoverableFault, ()) { prop_restore(); }

// Finding: with D != 128 (or a sliding window) ATOM sets use_triton_attn, and branch C writes V
// with asm_layout = False (plain [NB, Hkv, D, BS]) while the fused kernel always writes the
// shuffle order (semantics.md 2.1 step 7, open question 9). A fused call that dies after writing
// V leaves shuffled V bytes the plain-layout fallback never overwrites: other slots' V entries
// are silently changed. RapidCheck must find and shrink this.
void prop_restore_triton_attn_layers() {
  CaseOptions o;
  o.exclude_head_dim_128 = true;
  const CallCase c = *gen_call_case(o);
  const FallbackPolicy policy = *gen_policy();
  const std::string spec = *rc::gen::element<std::string>("fused:torn(k=all)",
                                                          "fused:cacheonly(k=all)");
  const RestoreCheck r = check_restore(c, policy, parse_fault_plan(spec), 0);
  RC_LOG() << "policy " << policy_name(policy) << ", fault plan '" << spec << "'\n";
  if (r.verdict != RestoreVerdict::kRestored) {
    RC_FAIL(fmt::format("{}: {}", restore_verdict_name(r.verdict), r.detail));
  }
}

TEST(RestoreProps, FusedShuffleVLeftBehindWhenFallbackWritesPlainV) {
  RunOptions options;
  options.replay_regressions = false;
  const Outcome outcome = check("RestoreProps/FallbackOverwritesFusedWritesOnTritonAttnLayers",
                                &prop_restore_triton_attn_layers, options);
  std::cout << outcome.report;
  EXPECT_FALSE(outcome.passed) << "expected the V-layout mismatch to leave fused writes behind";
  EXPECT_NE(outcome.description.find("v_cache"), std::string::npos) << outcome.description;
}

class RestoreNegative : public ::testing::TestWithParam<Mutant> {};

TEST_P(RestoreNegative, DispatcherMutantFalsifiesRestore) {
  ScopedMutant mutant(GetParam());
  RunOptions options;
  options.disable_shrinking = true;
  options.replay_regressions = false;
  options.quiet = true;
  const Outcome outcome =
      check(fmt::format("RestoreProps/Restore[{}]", mutant_name(GetParam())), &prop_restore, options);
  expect_failed(outcome, mutant_name(GetParam()));
}

std::string mutant_test_name(const ::testing::TestParamInfo<Mutant>& param_info) {
  std::string name(mutant_name(param_info.param));
  for (char& ch : name) {
    if (ch == '-') ch = '_';
  }
  return name;
}

INSTANTIATE_TEST_SUITE_P(DispatcherMutants, RestoreNegative,
                         ::testing::Values(Mutant::kRestoreSkipped, Mutant::kOnlyQRestored,
                                           Mutant::kFallbackOrderSwapped),
                         mutant_test_name);

// ---- property 5: the policy safety matrix -----------------------------------------------------
enum class Cell : uint8_t { kRestored, kSurfaces, kCorrupts };
std::string_view cell_name(Cell c) {
  switch (c) {
    case Cell::kRestored: return "restored";
    case Cell::kSurfaces: return "surfaces";
    case Cell::kCorrupts: return "CORRUPTS";
  }
  return "?";
}

struct FaultColumn {
  std::string_view label;
  std::string_view spec;
};
// One representative plan per fault kind. Regions name where a garbage / NaN payload may land in
// the failing fused call's footprint (fakes/faults/faulty_kernels.h).
constexpr std::array<FaultColumn, 11> kColumns = {{
    {"unavailable", "fused:unavailable"},
    {"launch", "fused:launch"},
    {"invalid", "fused:invalid"},
    {"torn", "fused:torn(k=mid)"},
    {"cacheonly", "fused:cacheonly(k=mid)"},
    {"garbage-q", "fused:garbage(k=0,region=q)"},
    {"garbage-v", "fused:garbage(k=0,region=v)"},
    {"nan-v", "fused:nan(k=0,region=v)"},
    {"backup-oom", "backup:oom"},
    {"restore-partial", "fused:torn(k=mid);restore:partial(k=mid)"},
    {"sticky", "fused:sticky(k=mid)"},
}};
constexpr int kPolicies = 6;

// The expected matrix, row = policy (all_policies() order), column = kColumns. Each cell's reason:
//  - every policy recovers from faults that touch only q, k or the cache: the backup (or, for
//    out-of-place, the scratch outputs) covers q/k, and the fallback overwrites every mapped slot;
//  - garbage / NaN in the V slice of qkv: pr279, pr279-model-order, sticky and prevalidate back up
//    all of qkv and restore it; qk-slice-backup backs up only the q/k columns (the fused kernel
//    never *writes* V, but a kernel that dies scribbling does), and out-of-place takes no backup
//    at all: both CORRUPT v silently;
//  - garbage in the q slice: out-of-place again has nothing to restore from (a dying kernel that
//    scribbles on its input, not on its declared q_out/k_out, is outside its fault model) and
//    CORRUPTS q; every backup-taking policy restores it;
//  - a backup that cannot be allocated, a restore copy that fails, and a sticky device error are
//    failures of the recovery itself: every policy surfaces them (DispatchError), none hides them.
//    out-of-place has no restore copy: a failed fused call leaves qkv untouched, so a broken
//    restore path does not matter to it;
//  - backup-oom hits out-of-place too: its scratch outputs come from the same allocator.
constexpr Cell R = Cell::kRestored, S = Cell::kSurfaces, X = Cell::kCorrupts;
constexpr std::array<std::array<Cell, kColumns.size()>, kPolicies> kExpected = {{
    //  unav launch inval torn cache garbq garbv nanv  oom  restp sticky
    {{R, R, R, R, R, R, R, R, S, S, S}},  // pr279
    {{R, R, R, R, R, R, R, R, S, S, S}},  // pr279-model-order
    {{R, R, R, R, R, R, R, R, S, S, S}},  // sticky
    {{R, R, R, R, R, R, X, X, S, S, S}},  // qk-slice-backup
    {{R, R, R, R, R, X, X, X, S, R, S}},  // out-of-place
    {{R, R, R, R, R, R, R, R, S, S, S}},  // prevalidate
}};

struct CellTally {
  std::atomic<int64_t> restored{0};
  std::atomic<int64_t> surfaced{0};
};
CellTally g_tally;
FallbackPolicy g_cell_policy = FallbackPolicy::kPr279;
std::string g_cell_spec;

// The inner property of one cell: "never a silent corruption". Surfacing and restoring both
// pass; the tally tells them apart afterwards.
void prop_cell_never_corrupts() {
  CaseOptions options = restore_case_options();
  // The March 2026 kernel is full-rotary only; with partial rotary prevalidate would skip the
  // fused call and the cell would mix two behaviours.
  options.allow_partial_rotary = false;
  options.tokens_max = 16;  // 66 cells: small batches (page edges at BS 16 still reachable)
  const CallCase c = *gen_call_case(options);
  const uint64_t fault_seed = *rc::gen::arbitrary<uint64_t>();
  classify_case(c);
  const RestoreCheck r =
      check_restore(c, g_cell_policy, parse_fault_plan(g_cell_spec), fault_seed);
  if (r.verdict == RestoreVerdict::kCorrupted) RC_FAIL("silent corruption: " + r.detail);
  if (r.verdict == RestoreVerdict::kSurfaced) {
    // Surfacing means no fallback: not one call may reach a B or C kernel (a fallback on a
    // poisoned fake device would fail with the same error class, so the class alone proves
    // nothing), and the process counts no fallback.
    RC_ASSERT(r.fallback_kernel_calls == 0);
    RC_ASSERT(r.fallbacks_counted == 0);
  }
  (r.verdict == RestoreVerdict::kSurfaced ? g_tally.surfaced : g_tally.restored)++;
}

TEST(PolicyMatrixProps, EveryCellAsExpected) {
  std::map<std::pair<int, int>, std::string> observed;
  std::string table = fmt::format("{:<20}", "policy \\ fault");
  for (const auto& col : kColumns) table += fmt::format(" {:<16}", col.label);
  table += "\n";
  const auto policies = all_policies();
  ASSERT_EQ(static_cast<int>(policies.size()), kPolicies);
  for (int p = 0; p < kPolicies; ++p) {
    table += fmt::format("{:<20}", policy_name(policies[static_cast<std::size_t>(p)]));
    for (std::size_t f = 0; f < kColumns.size(); ++f) {
      g_cell_policy = policies[static_cast<std::size_t>(p)];
      g_cell_spec = std::string(kColumns[f].spec);
      g_tally.restored = 0;
      g_tally.surfaced = 0;
      RunOptions options;
      options.cases_percent = 15;  // 66 cells: 9 cases each at the CI budget
      options.quiet = true;
      const Outcome outcome =
          check(fmt::format("PolicyMatrixProps/{}/{}", policy_name(g_cell_policy),
                            kColumns[f].label),
                &prop_cell_never_corrupts, options);
      Cell got;
      if (!outcome.passed) {
        got = Cell::kCorrupts;
      } else if (g_tally.surfaced > 0 && g_tally.restored == 0) {
        got = Cell::kSurfaces;
      } else if (g_tally.surfaced == 0) {
        got = Cell::kRestored;
      } else {
        ADD_FAILURE() << policy_name(g_cell_policy) << " x " << kColumns[f].label
                      << ": mixed outcome (" << g_tally.restored << " restored, "
                      << g_tally.surfaced << " surfaced)";
        got = Cell::kRestored;
      }
      const Cell want = kExpected[static_cast<std::size_t>(p)][f];
      table += fmt::format(" {:<16}", fmt::format("{}{}", cell_name(got), got == want ? "" : "(!)"));
      EXPECT_EQ(cell_name(got), cell_name(want))
          << "cell " << policy_name(g_cell_policy) << " x " << kColumns[f].label << " ("
          << kColumns[f].spec << ")\n"
          << outcome.report;
      if (got == Cell::kCorrupts) {
        // The counterexample RapidCheck shrank for this cell, for the docs and the report.
        std::cout << "counterexample for " << policy_name(g_cell_policy) << " x "
                  << kColumns[f].label << ":\n"
                  << outcome.report;
      }
    }
    table += "\n";
  }
  std::cout << "policy safety matrix (observed; (!) = differs from the expected matrix):\n"
            << table << std::flush;
}

// The zero-fallback assertion of the matrix bites: under sticky-error-falls-back the sticky cell
// still surfaces with the same class (the fallback fails on the poisoned device), so only the
// call counts can see it - and the property must fail on exactly that assertion.
TEST(PolicyMatrixNegative, StickyErrorFallingBackFailsTheNoFallbackAssertion) {
  ScopedMutant mutant(Mutant::kStickyErrorFallsBack);
  g_cell_policy = FallbackPolicy::kSticky;
  g_cell_spec = "fused:sticky(k=mid)";
  g_tally.restored = 0;
  g_tally.surfaced = 0;
  RunOptions options;
  options.cases_percent = 15;
  options.disable_shrinking = true;
  options.replay_regressions = false;
  options.quiet = true;
  const Outcome outcome = check("PolicyMatrixProps/sticky/sticky[sticky-error-falls-back]",
                                &prop_cell_never_corrupts, options);
  expect_failed(outcome, "sticky-error-falls-back");
  EXPECT_NE(outcome.description.find("fallback_kernel_calls == 0"), std::string::npos)
      << "failed on another assertion than the zero-fallback one: " << outcome.description;
}

// Sticky stops attempting after "unavailable": the second call of the process neither backs up
// nor calls the fused kernel, and is still served by the fallback with the same bytes.
RCSIM_PROP(PolicyMatrixProps, StickyStopsAttemptingAfterUnavailable, ()) {
  CaseOptions options = restore_case_options();
  options.allow_partial_rotary = false;
  const CallCase c = *gen_call_case(options);
  classify_case(c);
  const uint64_t fault_seed = *rc::gen::arbitrary<uint64_t>();
  // The module stays missing on every call (a CK-free build): the rule fires each time.
  DispatchSession session(parse_fault_plan("fused:unavailable"), fault_seed);
  const int layer = session.add_layer(layer_spec_for(c, FallbackPolicy::kSticky));
  const DispatchRun first = session.call(layer, c);
  const DispatchRun second = session.call(layer, c);
  RC_ASSERT(first.record && second.record);
  RC_ASSERT(first.record->fused_attempted);
  RC_ASSERT(first.record->backup_taken);
  RC_ASSERT(!second.record->fused_attempted);
  RC_ASSERT(second.record->fused_skipped_by_policy);
  RC_ASSERT(!second.record->backup_taken);
  RC_ASSERT(second.record->branch == Branch::kNonFused);
  RC_ASSERT(session.process().fused_disabled());
  // Same inputs, same fallback: the second call's bytes equal the first's.
  RC_ASSERT(!first_byte_difference(first.tensors.qkv, second.tensors.qkv, "qkv"));
  RC_ASSERT(!first_byte_difference(first.tensors.k_cache, second.tensors.k_cache, "k_cache"));
  RC_ASSERT(!first_byte_difference(first.q_result, second.q_result, "q"));
}

}  // namespace
}  // namespace rcsim::props
