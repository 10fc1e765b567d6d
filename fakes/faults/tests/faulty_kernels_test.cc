// Goal: every decorator of FaultyKernelSet does exactly what its fault kind promises, against the
// real CPU reference kernels: a torn write at k leaves exactly the first k units written (bit-equal
// to a full run) and everything else untouched, at every unit boundary and at head, token and tile
// granularity; garbage and NaN land only in the footprint and region the plan names, the same seed
// gives the same bytes; cacheonly leaves qkv intact; intermittent, sticky and late faults fire on
// exactly the calls they should; the recovery-path faults (oom, partial restore) and rebuild /
// invalid behave as documented; abort kills the process (death test).
// Method: a small layer (fault_test_support.h) with sentinel-filled outputs; expected memory is
// built from a fault-free full run plus the tests' own per-unit footprint model, and compared
// byte for byte over every output buffer (untouched memory included).
#include <algorithm>
#include <cstring>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "core/errors.h"
#include "fakes/faults/faulty_kernels.h"
#include "fault_injection/plan/fault_plan.h"
#include "fakes/faults/tests/fault_test_support.h"
#include "kernels/cpu/cpu_backend.h"

namespace rcsim {
namespace {

using namespace fault_testing;

struct KernelCase {
  Which which;
  FaultSite site;
  KvCacheDtype kv;
};
const KernelCase kKernelCases[] = {
    {Which::kFused, FaultSite::kFused, KvCacheDtype::kAuto},
    {Which::kFused, FaultSite::kFused, KvCacheDtype::kFp8E4M3FN},
    {Which::kRopeCache, FaultSite::kRopeCache, KvCacheDtype::kAuto},
    {Which::kRotary, FaultSite::kFallbackRope, KvCacheDtype::kAuto},
    {Which::kNorm, FaultSite::kFallbackNorm, KvCacheDtype::kAuto},
    {Which::kCache, FaultSite::kFallbackCache, KvCacheDtype::kAuto},
    {Which::kPerToken, FaultSite::kFallbackCache, KvCacheDtype::kFp8E4M3FNUZ},
};
constexpr int64_t kTokens = 5;
// Printed before any test runs, so a failing run always shows its seed.
const uint64_t kSeedAtStartup = test_seed();

std::string case_name(const KernelCase& c) {
  return which_name(c.which) + "/" + std::string(kv_cache_dtype_name(c.kv));
}

// Runs `w` under `plan`; returns the KernelError it threw (asserting it was injected) or nullopt.
std::optional<KernelError> run_faulty(const Layer& layer, Which w, const FaultPlan& plan,
                                      uint64_t seed, cpu::CpuBackend& cpu,
                                      FaultStats* stats_out = nullptr) {
  FaultyKernelSet faulty(cpu.kernels(), plan, seed);
  std::optional<KernelError> error;
  try {
    layer.run(w, faulty.kernels());
  } catch (const KernelError& e) {
    EXPECT_TRUE(e.injected()) << e.what();
    error = e;
  }
  if (stats_out) *stats_out = faulty.stats();
  return error;
}

// The fault-free reference: snapshots before and after a full run, and N, T as the decorator saw.
struct Reference {
  Snapshot before, full;
  int64_t units_total = 0;
};
Reference reference(const KernelCase& c, uint64_t stream, cpu::CpuBackend& cpu) {
  Layer layer(small_config(c.kv), kTokens, stream);
  Reference r;
  r.before = layer.snapshot();
  FaultyKernelSet clean(cpu.kernels(), {}, 0);
  const KernelRun run = layer.run(c.which, clean.kernels());
  EXPECT_EQ(run.units_total, run.units_completed);
  EXPECT_EQ(clean.stats().last_units_total[static_cast<std::size_t>(c.site)], run.units_total);
  EXPECT_EQ(clean.stats().last_tokens[static_cast<std::size_t>(c.site)], kTokens);
  r.full = layer.snapshot();
  r.units_total = run.units_total;
  return r;
}

TEST(FaultyKernels, FootprintModelCoversExactlyAFullRun) {
  // The checker's own model must be right before it can judge the decorators: a full run equals
  // "before + every unit's footprint", and every unit with a footprint changed something.
  cpu::CpuBackend cpu;
  for (const KernelCase& c : kKernelCases) {
    SCOPED_TRACE(case_name(c));
    const Reference r = reference(c, 1, cpu);
    Layer layer(small_config(c.kv), kTokens, 1);
    const Snapshot expected = expected_after_units(layer, c.which, r.before, r.full, r.units_total);
    EXPECT_EQ(first_difference(expected, r.full), "");
    int64_t units_writing = 0;
    for (int64_t g = 0; g < r.units_total; ++g) {
      bool changed = false;
      for (const Loc& l : layer.unit_locs(c.which, g, false)) {
        changed |= !elem_equal(r.before[static_cast<std::size_t>(l.buf)],
                               r.full[static_cast<std::size_t>(l.buf)], l.elem);
      }
      units_writing += changed;
    }
    EXPECT_GT(units_writing, r.units_total / 2) << "a full run changed too little to test with";
  }
}

TEST(FaultyKernels, TornWriteAtEveryBoundaryAndGranularity) {
  cpu::CpuBackend cpu;
  for (const KernelCase& c : kKernelCases) {
    const Reference r = reference(c, 2, cpu);
    for (TornUnit unit : {TornUnit::kHead, TornUnit::kToken, TornUnit::kTile}) {
      FaultRule rule;
      rule.site = c.site;
      rule.kind = FaultKind::kTorn;
      rule.unit = unit;
      rule.tile_tokens = 2;
      const int64_t n = units_at_granularity(unit, rule.tile_tokens, r.units_total, kTokens);
      const std::vector<FaultPlan> plans = enumerate_fail_at_every_step(rule, n);
      ASSERT_EQ(static_cast<int64_t>(plans.size()), n + 1);
      for (int64_t k = 0; k <= n; ++k) {
        const FaultPlan& plan = plans[static_cast<std::size_t>(k)];
        SCOPED_TRACE(case_name(c) + " " + to_string(plan));
        Layer layer(small_config(c.kv), kTokens, 2);
        FaultStats stats;
        const auto error = run_faulty(layer, c.which, plan, test_seed(), cpu, &stats);
        ASSERT_TRUE(error.has_value());
        EXPECT_EQ(error->failure_class(), FailureClass::kLaunchFailure);
        EXPECT_EQ(stats.injection_count(c.site, FaultKind::kTorn), 1);
        const int64_t native = native_units_for(unit, rule.tile_tokens, k, r.units_total, kTokens);
        const Snapshot expected = expected_after_units(layer, c.which, r.before, r.full, native);
        ASSERT_EQ(first_difference(expected, layer.snapshot()), "") << "native k " << native;
      }
    }
  }
}

TEST(FaultyKernels, TornNamedBoundariesAndClamping) {
  cpu::CpuBackend cpu;
  const KernelCase c = kKernelCases[0];
  const Reference r = reference(c, 3, cpu);
  const int64_t n = r.units_total;
  const std::pair<std::string, int64_t> cases[] = {
      {"fused:torn(k=0)", 0},          {"fused:torn(k=1)", 1},
      {"fused:torn(k=mid)", n / 2},    {"fused:torn(k=last)", n - 1},
      {"fused:torn(k=all)", n},        {"fused:torn(k=100000)", n},
      {"fused:torn(unit=token,k=last)", (kTokens - 1) * (n / kTokens)}};
  for (const auto& [spec, k] : cases) {
    SCOPED_TRACE(spec);
    Layer layer(small_config(c.kv), kTokens, 3);
    FaultStats stats;
    ASSERT_TRUE(run_faulty(layer, c.which, parse_fault_plan(spec), test_seed(), cpu, &stats));
    EXPECT_EQ(first_difference(expected_after_units(layer, c.which, r.before, r.full, k),
                               layer.snapshot()),
              "");
    EXPECT_EQ(stats.k_clamped, spec == "fused:torn(k=100000)" ? 1 : 0);
  }
  // k=seed: deterministic per seed, and lands on a unit boundary in [0, N].
  std::set<int64_t> outcomes;
  for (uint64_t s = 0; s < 12; ++s) {
    Layer a(small_config(c.kv), kTokens, 3), b(small_config(c.kv), kTokens, 3);
    run_faulty(a, c.which, parse_fault_plan("fused:torn(k=seed)"), test_seed() + s, cpu);
    run_faulty(b, c.which, parse_fault_plan("fused:torn(k=seed)"), test_seed() + s, cpu);
    ASSERT_EQ(first_difference(a.snapshot(), b.snapshot()), "");
    int64_t matched = -1;
    for (int64_t k = 0; k <= n && matched < 0; ++k) {
      if (first_difference(expected_after_units(a, c.which, r.before, r.full, k), a.snapshot()) ==
          "") {
        matched = k;
      }
    }
    EXPECT_GE(matched, 0) << "k=seed left memory that matches no boundary";
    outcomes.insert(matched);
  }
  EXPECT_GT(outcomes.size(), 2u) << "k=seed did not vary with the seed";
}

TEST(FaultyKernels, NothingWrittenKindsLeaveEveryByteAndThrowTheirClass) {
  cpu::CpuBackend cpu;
  const std::pair<std::string, FailureClass> cases[] = {
      {"fused:unavailable", FailureClass::kUnavailable},
      {"fused:launch", FailureClass::kLaunchFailure},
      {"fused:throw", FailureClass::kLaunchFailure},
      {"fused:invalid", FailureClass::kInvalidArgument},
      {"fused:oom", FailureClass::kOutOfMemory},
      {"fused:rebuild(cost_us=7)", FailureClass::kUnavailable},
      {"fused:sticky", FailureClass::kStickyDevice},
  };
  for (const auto& [spec, failure] : cases) {
    SCOPED_TRACE(spec);
    Layer layer(small_config(KvCacheDtype::kFp8E4M3FN), kTokens, 4);
    const Snapshot before = layer.snapshot();
    const auto error = run_faulty(layer, Which::kFused, parse_fault_plan(spec), test_seed(), cpu);
    ASSERT_TRUE(error.has_value());
    EXPECT_EQ(error->failure_class(), failure) << error->what();
    EXPECT_EQ(error->kernel(), FusedQkNormRopeCacheKernel::kName);
    EXPECT_EQ(first_difference(before, layer.snapshot()), "");
  }
  // Bad input is the caller's bug, not an injected fault: InvalidInput, even under a rule.
  Layer layer(small_config(), kTokens, 4);
  FaultyKernelSet faulty(cpu.kernels(), parse_fault_plan("fused:torn(k=1)"), test_seed());
  FusedQkNormRopeCacheArgs bad = layer.fused_args();
  bad.positions = {};
  EXPECT_THROW(faulty.kernels().fused->run(bad), InvalidInput);
}

// Garbage and NaN: outside the payload set nothing moves; inside it the payload is there.
void check_payload(const KernelCase& c, const std::string& spec, int64_t k0, FaultRegion region,
                   bool nan, cpu::CpuBackend& cpu) {
  SCOPED_TRACE(case_name(c) + " " + spec);
  const Reference r = reference(c, 5, cpu);
  Layer layer(small_config(c.kv), kTokens, 5);
  FaultStats stats;
  const auto error = run_faulty(layer, c.which, parse_fault_plan(spec), test_seed(), cpu, &stats);
  ASSERT_TRUE(error.has_value());
  EXPECT_EQ(error->failure_class(), FailureClass::kLaunchFailure);
  Snapshot expected = expected_after_units(layer, c.which, r.before, r.full, k0);
  // The payload set, from the tests' footprint model filtered by region.
  std::array<std::vector<bool>, kBufCount> mask;
  for (int b = 0; b < kBufCount; ++b) {
    mask[static_cast<std::size_t>(b)].assign(static_cast<std::size_t>(layer.buffer(b).numel()), false);
  }
  const int64_t hq = layer.cfg.num_heads_q, hkv = layer.cfg.num_heads_kv, d = layer.cfg.head_dim;
  int64_t payload_elements = 0;
  for (int64_t g = k0; g < r.units_total; ++g) {
    for (const Loc& l : layer.unit_locs(c.which, g, true)) {
      FaultRegion part = FaultRegion::kCache;
      if (l.buf == kQkv) {
        const int64_t head = (l.elem % layer.cfg.qkv_width()) / d;
        part = head < hq ? FaultRegion::kQ : (head < hq + hkv ? FaultRegion::kK : FaultRegion::kV);
      } else if (l.buf == kNormOut) {
        part = FaultRegion::kOut;
      }
      if (region != FaultRegion::kAll && region != part) continue;
      mask[static_cast<std::size_t>(l.buf)][static_cast<std::size_t>(l.elem)] = true;
      ++payload_elements;
    }
  }
  ASSERT_GT(payload_elements, 0);
  const Snapshot after = layer.snapshot();
  int64_t changed = 0;
  for (int b = 0; b < kBufCount; ++b) {
    const auto bi = static_cast<std::size_t>(b);
    for (int64_t e = 0; e < after[bi].numel(); ++e) {
      if (!mask[bi][static_cast<std::size_t>(e)]) {
        ASSERT_TRUE(elem_equal(expected[bi], after[bi], e))
            << "payload outside its region: " << buf_name(b) << " element " << e;
        continue;
      }
      if (nan) {
        uint32_t bits = 0;
        std::memcpy(&bits, after[bi].data() + e * elem_bytes(after[bi]),
                    static_cast<std::size_t>(elem_bytes(after[bi])));
        const DType t = after[bi].dtype();
        const uint32_t want = t == DType::kFP32 ? 0x7FC00000u
                              : t == DType::kBF16 ? 0x7FC0u
                              : t == DType::kFP8E4M3FN ? 0x7Fu : 0x80u;
        ASSERT_EQ(bits, want) << buf_name(b) << " element " << e << " is not the dtype's NaN";
      }
      changed += !elem_equal(r.before[bi], after[bi], e);
    }
  }
  // Random bits equal the old element with probability 2^-8 (fp8) to 2^-32: allow 5%.
  EXPECT_GE(changed * 100, payload_elements * 95) << changed << " of " << payload_elements;
  EXPECT_GT(stats.units_corrupted, 0);
  // Same seed, same bytes; another seed, other bytes (garbage only: NaN is seed-free).
  Layer again(small_config(c.kv), kTokens, 5);
  run_faulty(again, c.which, parse_fault_plan(spec), test_seed(), cpu);
  EXPECT_EQ(first_difference(after, again.snapshot()), "");
  if (!nan) {
    Layer other(small_config(c.kv), kTokens, 5);
    run_faulty(other, c.which, parse_fault_plan(spec), test_seed() + 1, cpu);
    EXPECT_NE(first_difference(after, other.snapshot()), "");
  }
}

TEST(FaultyKernels, GarbageLandsOnlyWhereThePlanSays) {
  cpu::CpuBackend cpu;
  const KernelCase fused_fp8 = kKernelCases[1];
  check_payload(fused_fp8, "fused:garbage", 0, FaultRegion::kAll, false, cpu);
  check_payload(fused_fp8, "fused:garbage(k=17)", 17, FaultRegion::kAll, false, cpu);
  check_payload(fused_fp8, "fused:garbage(k=3,region=q)", 3, FaultRegion::kQ, false, cpu);
  check_payload(fused_fp8, "fused:garbage(k=3,region=k)", 3, FaultRegion::kK, false, cpu);
  check_payload(fused_fp8, "fused:garbage(k=3,region=v)", 3, FaultRegion::kV, false, cpu);
  check_payload(fused_fp8, "fused:garbage(k=3,region=cache)", 3, FaultRegion::kCache, false, cpu);
  check_payload(kKernelCases[2], "rope_cache:garbage(k=5,region=cache)", 5, FaultRegion::kCache,
                false, cpu);
  check_payload(kKernelCases[3], "fallback.rope:garbage(k=6,region=k)", 6, FaultRegion::kK, false,
                cpu);
  check_payload(kKernelCases[4], "fallback.norm:garbage(k=2)", 2, FaultRegion::kAll, false, cpu);
  check_payload(kKernelCases[5], "fallback.cache:garbage(unit=token,k=2)", 2, FaultRegion::kAll,
                false, cpu);
  check_payload(kKernelCases[6], "fallback.cache:garbage(k=1)", 1, FaultRegion::kAll, false, cpu);
}

TEST(FaultyKernels, NanPoisoningHitsOnlyItsRegion) {
  cpu::CpuBackend cpu;
  check_payload(kKernelCases[0], "fused:nan(region=q)", 0, FaultRegion::kQ, true, cpu);
  check_payload(kKernelCases[0], "fused:nan(k=9,region=v)", 9, FaultRegion::kV, true, cpu);
  check_payload(kKernelCases[1], "fused:nan(k=4,region=cache)", 4, FaultRegion::kCache, true, cpu);
  check_payload(kKernelCases[6], "fallback.cache:nan", 0, FaultRegion::kAll, true, cpu);
  check_payload(kKernelCases[4], "fallback.norm:nan(region=out)", 0, FaultRegion::kOut, true, cpu);
}

TEST(FaultyKernels, GarbageShareIsSeededAndPartial) {
  cpu::CpuBackend cpu;
  Layer layer(small_config(), kTokens, 6);
  FaultStats stats;
  ASSERT_TRUE(run_faulty(layer, Which::kFused, parse_fault_plan("fused:garbage(p=1/2,region=q)"),
                         test_seed(), cpu, &stats));
  // 20 Q units, each hit with chance 1/2: all-or-nothing has probability 2^-19.
  EXPECT_GT(stats.units_corrupted, 0);
  EXPECT_LT(stats.units_corrupted, 20);
}

TEST(FaultyKernels, CacheOnlyLeavesQkvIntact) {
  cpu::CpuBackend cpu;
  for (const KernelCase& c : {kKernelCases[0], kKernelCases[1], kKernelCases[2]}) {
    const Reference r = reference(c, 7, cpu);
    for (const std::string k : {"0", "1", "mid", "all"}) {
      const std::string spec = fmt::format("{}:cacheonly(k={})", fault_site_name(c.site), k);
      SCOPED_TRACE(case_name(c) + " " + spec);
      Layer layer(small_config(c.kv), kTokens, 7);
      const auto error = run_faulty(layer, c.which, parse_fault_plan(spec), test_seed(), cpu);
      ASSERT_TRUE(error.has_value());
      Prng unused(0);
      const int64_t native =
          parse_fault_plan(spec).rules[0].k_or_default().resolve(r.units_total, unused);
      Snapshot expected = expected_after_units(layer, c.which, r.before, r.full, native);
      expected[kQkv] = r.before[kQkv];  // q/k went to scratch
      EXPECT_EQ(first_difference(expected, layer.snapshot()), "");
      // Unit 0 is a Q head (no cache write); from mid on, cache slots must have changed.
      if (native >= r.units_total / 2) {
        EXPECT_NE(first_difference(r.before, layer.snapshot()), "") << "no cache write";
      }
    }
  }
}

TEST(FaultyKernels, IntermittentFiresOnExactlyTheRightCalls) {
  cpu::CpuBackend cpu;
  Layer layer(small_config(), kTokens, 8);
  {
    FaultyKernelSet faulty(cpu.kernels(), parse_fault_plan("fallback.norm:launch(call=3)"), 1);
    for (int call = 1; call <= 6; ++call) {
      if (call == 3) {
        EXPECT_THROW(layer.run(Which::kNorm, faulty.kernels()), KernelError);
      } else {
        EXPECT_NO_THROW(layer.run(Which::kNorm, faulty.kernels())) << "call " << call;
      }
    }
    EXPECT_EQ(faulty.stats().call_count(FaultSite::kFallbackNorm), 6);
    EXPECT_EQ(faulty.stats().injection_count(FaultSite::kFallbackNorm, FaultKind::kLaunch), 1);
  }
  // ratio=a/b: a seeded per-call pattern; same seed same pattern, sensible frequency.
  auto pattern = [&](const std::string& spec, uint64_t seed) {
    FaultyKernelSet faulty(cpu.kernels(), parse_fault_plan(spec), seed);
    std::string fired;
    for (int call = 0; call < 90; ++call) {
      try {
        layer.run(Which::kNorm, faulty.kernels());
        fired += '.';
      } catch (const KernelError&) {
        fired += 'X';
      }
    }
    return fired;
  };
  const std::string a = pattern("fallback.norm:launch(ratio=1/3)", test_seed());
  EXPECT_EQ(a, pattern("fallback.norm:launch(ratio=1/3)", test_seed()));
  EXPECT_NE(a, pattern("fallback.norm:launch(ratio=1/3)", test_seed() + 1));
  const auto hits = std::count(a.begin(), a.end(), 'X');
  EXPECT_GT(hits, 10) << a;  // expectation 30; bounds are > 5 sigma away
  EXPECT_LT(hits, 55) << a;
  EXPECT_EQ(pattern("fallback.norm:launch(ratio=0/1)", test_seed()), std::string(90, '.'));
  EXPECT_EQ(pattern("fallback.norm:launch(ratio=1/1)", test_seed()), std::string(90, 'X'));
  // Both modifiers: only call 4 is eligible.
  const std::string both = pattern("fallback.norm:launch(call=4,ratio=1/1)", test_seed());
  EXPECT_EQ(both, std::string(3, '.') + "X" + std::string(86, '.'));
  // First rule that fires wins; a rule of another site never fires here.
  const std::string two = pattern("fused:launch;fallback.norm:unavailable(call=2);fallback.norm:invalid(call=2)", 1);
  EXPECT_EQ(two.substr(0, 3), ".X.");
}

TEST(FaultyKernels, StickyFailsThisAndEveryLaterCallOnTheDevice) {
  cpu::CpuBackend cpu;
  Layer layer(small_config(), kTokens, 9);
  FaultyKernelSet faulty(cpu.kernels(), parse_fault_plan("fallback.norm:sticky(call=2)"), 1);
  EXPECT_NO_THROW(layer.run(Which::kNorm, faulty.kernels()));
  EXPECT_FALSE(faulty.device_poisoned());
  try {
    layer.run(Which::kNorm, faulty.kernels());
    ADD_FAILURE() << "sticky did not fire on call 2";
  } catch (const KernelError& e) {
    EXPECT_EQ(e.failure_class(), FailureClass::kStickyDevice);
    EXPECT_TRUE(e.injected());
  }
  EXPECT_TRUE(faulty.device_poisoned());
  const Snapshot poisoned = layer.snapshot();
  for (Which w : {Which::kFused, Which::kRotary, Which::kNorm, Which::kCache, Which::kRopeCache}) {
    try {
      layer.run(w, faulty.kernels());
      ADD_FAILURE() << which_name(w) << " ran on a poisoned device";
    } catch (const KernelError& e) {
      EXPECT_EQ(e.failure_class(), FailureClass::kStickyDevice) << which_name(w);
    }
  }
  const int64_t shape[] = {4};
  EXPECT_THROW(faulty.kernels().memory->allocate(DType::kBF16, shape), KernelError);
  EXPECT_EQ(first_difference(poisoned, layer.snapshot()), "") << "a poisoned device wrote";
  EXPECT_EQ(faulty.stats().injection_count(FaultSite::kFused, FaultKind::kSticky), 1);
  EXPECT_EQ(faulty.stats().injection_count(FaultSite::kBackup, FaultKind::kSticky), 1);
}

TEST(FaultyKernels, LateErrorSurfacesNCallsLaterAtAnotherSite) {
  cpu::CpuBackend cpu;
  const KernelCase c = kKernelCases[0];
  const Reference r = reference(c, 10, cpu);
  for (const bool sticky : {true, false}) {
    SCOPED_TRACE(sticky ? "error=sticky" : "error=launch");
    Layer layer(small_config(), kTokens, 10);
    const std::string spec =
        std::string("fused:late(k=mid,after=2") + (sticky ? "" : ",error=launch") + ")";
    FaultyKernelSet faulty(cpu.kernels(), parse_fault_plan(spec), 1);
    // The faulting call "succeeds" but wrote only the first N/2 units.
    const KernelRun run = layer.run(Which::kFused, faulty.kernels());
    EXPECT_EQ(run.units_completed, run.units_total);
    EXPECT_EQ(first_difference(expected_after_units(layer, c.which, r.before, r.full,
                                                    r.units_total / 2),
                               layer.snapshot()),
              "");
    EXPECT_NO_THROW(layer.run(Which::kNorm, faulty.kernels()));  // 1st later call
    try {
      layer.run(Which::kCache, faulty.kernels());  // 2nd later call, another site
      ADD_FAILURE() << "late error did not surface";
    } catch (const KernelError& e) {
      EXPECT_EQ(e.failure_class(), sticky ? FailureClass::kStickyDevice : FailureClass::kLaunchFailure);
      EXPECT_NE(std::string(e.what()).find("earlier fused call"), std::string::npos) << e.what();
    }
    EXPECT_EQ(faulty.stats().injection_count(FaultSite::kFallbackCache, FaultKind::kLate), 1);
    EXPECT_EQ(faulty.device_poisoned(), sticky);
    if (sticky) {
      EXPECT_THROW(layer.run(Which::kNorm, faulty.kernels()), KernelError);
    } else {
      EXPECT_NO_THROW(layer.run(Which::kNorm, faulty.kernels()));
    }
  }
}

TEST(FaultyKernels, RebuildCountsAttemptsCostAndLogsEachAttempt) {
  cpu::CpuBackend cpu;
  Layer layer(small_config(), kTokens, 11);
  const Snapshot before = layer.snapshot();
  FaultyKernelSet faulty(cpu.kernels(), parse_fault_plan("fused:rebuild(cost_us=1500)"), 1);
  std::vector<std::string> lines;
  faulty.set_log_sink([&lines](std::string_view line) { lines.emplace_back(line); });
  for (int i = 0; i < 3; ++i) {
    try {
      layer.run(Which::kFused, faulty.kernels());
      ADD_FAILURE() << "rebuild did not throw";
    } catch (const KernelError& e) {
      EXPECT_EQ(e.failure_class(), FailureClass::kUnavailable);
    }
  }
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_NE(lines[2].find("attempt 3"), std::string::npos) << lines[2];
  EXPECT_EQ(lines[0].rfind("ERROR", 0), 0u) << lines[0];
  EXPECT_EQ(faulty.stats().rebuild_attempts, 3);
  EXPECT_EQ(faulty.stats().rebuild_cost_us, 4500);
  EXPECT_EQ(first_difference(before, layer.snapshot()), "");
}

TEST(FaultyKernels, RecoveryPathOomAndPartialRestore) {
  cpu::CpuBackend cpu;
  Layer layer(small_config(), kTokens, 12);
  const HostTensor original = layer.qkv;
  const int64_t shape[] = {layer.tokens, layer.cfg.qkv_width()};
  {
    FaultyKernelSet faulty(cpu.kernels(), parse_fault_plan("backup:oom(call=2)"), 1);
    EXPECT_NO_THROW(faulty.kernels().memory->allocate(DType::kBF16, shape));
    try {
      faulty.kernels().memory->allocate(DType::kBF16, shape);
      ADD_FAILURE() << "oom did not fire";
    } catch (const KernelError& e) {
      EXPECT_EQ(e.failure_class(), FailureClass::kOutOfMemory);
      EXPECT_TRUE(e.injected());
    }
  }
  for (const int64_t k : {int64_t{0}, int64_t{1}, int64_t{37}, int64_t{-1}}) {
    const int64_t n = layer.qkv.numel();
    const int64_t elements = k < 0 ? n - 1 : k;
    SCOPED_TRACE(elements);
    const std::string spec = k < 0 ? "restore:partial(k=last)" : fmt::format("restore:partial(k={})", k);
    FaultyKernelSet faulty(cpu.kernels(), parse_fault_plan(spec), 1);
    MemoryBackend& mem = *faulty.kernels().memory;
    auto backup = mem.allocate(DType::kBF16, shape);
    mem.copy(layer.qkv.view(), backup->view());  // taking the backup is not a restore
    for (uint16_t& e : layer.qkv.as<uint16_t>()) e = static_cast<uint16_t>(e ^ 0x5555u);
    const HostTensor scribbled = layer.qkv;
    try {
      mem.copy(backup->view(), layer.qkv.view());
      ADD_FAILURE() << "partial restore did not throw";
    } catch (const KernelError& e) {
      EXPECT_EQ(e.failure_class(), FailureClass::kLaunchFailure);
    }
    const auto got = layer.qkv.as<uint16_t>();
    for (int64_t i = 0; i < n; ++i) {
      const HostTensor& want = i < elements ? original : scribbled;
      ASSERT_EQ(got[static_cast<std::size_t>(i)], want.as<uint16_t>()[static_cast<std::size_t>(i)])
          << "element " << i;
    }
    EXPECT_EQ(faulty.stats().injection_count(FaultSite::kRestore, FaultKind::kPartial), 1);
    EXPECT_EQ(faulty.stats().call_count(FaultSite::kRestore), 1);
    layer.qkv = original;
  }
}

TEST(FaultyKernels, NullKernelsStayNull) {
  cpu::CpuBackend cpu;
  KernelSet partial = cpu.kernels();
  partial.fused = nullptr;  // a CK-free build without the module
  FaultyKernelSet faulty(partial, {}, 1);
  EXPECT_EQ(faulty.kernels().fused, nullptr);
  EXPECT_NE(faulty.kernels().rotary, nullptr);
  EXPECT_NE(faulty.kernels().memory, nullptr);
}

// A row-copy "norm" that accepts views of any device tag: an honest implementation of the
// RmsNormKernel contract (units (t, h) in order, WorkLimit respected) for memory the test can still
// inspect, standing in for a GPU kernel to exercise the decorators' device payload path.
class AnyDeviceRowCopy final : public RmsNormKernel {
 public:
  KernelRun run(const RmsNormArgs& a) override {
    const int64_t heads = a.input.size(1), dim = a.input.size(2);
    const int64_t n = a.input.size(0) * heads;
    const int64_t k = a.limit.unlimited() || a.limit.max_units > n ? n : a.limit.max_units;
    for (int64_t g = 0; g < k; ++g) {
      for (int64_t d = 0; d < dim; ++d) {
        const int64_t in = a.input.element_offset({g / heads, g % heads, d});
        const int64_t out = a.output.element_offset({g / heads, g % heads, d});
        std::memcpy(a.output.data() + out * 2, a.input.data() + in * 2, 2);
      }
    }
    return {n, k};
  }
};

TEST(FaultyKernels, DevicePayloadsGoThroughTheMemoryAccessHooks) {
  AnyDeviceRowCopy kernel;
  KernelSet inner;
  inner.rms_norm = &kernel;
  auto run = [&](bool device, bool hooks, const std::string& spec, int* transfers) {
    Layer layer(small_config(), kTokens, 14);
    RmsNormArgs args = layer.norm_args();
    HostTensor input = layer.out[kNormOut];  // a contiguous [T, Hq, D] input
    Prng rng = Prng::stream(test_seed(), "device-rows");
    for (uint16_t& e : input.as<uint16_t>()) e = float_to_activation(rng.nonzero_float(0.5f, 2.0f), DType::kBF16);
    HostTensor output(DType::kBF16, {kTokens, 4, 64});
    output.fill_pattern(kOutSentinel);
    args.input = input.view();
    args.output = output.view();
    if (device) {
      args.input.device = DeviceTag::kGpu;
      args.output.device = DeviceTag::kGpu;
    }
    FaultyKernelSet faulty(inner, parse_fault_plan(spec), test_seed());
    if (hooks) {
      DeviceMemoryAccess access;
      access.download = [transfers](const TensorView& v) {
        ++*transfers;
        HostTensor h(v.dtype, std::vector<int64_t>(v.shape.begin(), v.shape.begin() + v.rank));
        std::memcpy(h.data(), v.data(), static_cast<std::size_t>(h.bytes()));
        return h;
      };
      access.upload = [transfers](const HostTensor& h, const TensorView& v) {
        ++*transfers;
        std::memcpy(v.data(), h.data(), static_cast<std::size_t>(h.bytes()));
      };
      faulty.set_device_memory_access(access);
    }
    EXPECT_THROW(faulty.kernels().rms_norm->run(args), KernelError);
    return std::make_pair(input, output);
  };
  int transfers = 0;
  const auto [host_in, host_out] = run(false, false, "fallback.norm:garbage(k=2)", &transfers);
  EXPECT_EQ(transfers, 0);
  const auto [dev_in, dev_out] = run(true, true, "fallback.norm:garbage(k=2)", &transfers);
  EXPECT_EQ(transfers, 2) << "one download and one upload of the output view";
  // Same seed, same bytes on either path; rows 0, 1 copied, the rest garbage.
  EXPECT_TRUE(host_out.bytes_equal(dev_out));
  const auto in = dev_in.as<uint16_t>(), out = dev_out.as<uint16_t>();
  int64_t garbage_differs = 0;
  for (int64_t i = 0; i < dev_out.numel(); ++i) {
    const auto u = static_cast<std::size_t>(i);
    if (i < 2 * 64) {
      ASSERT_EQ(out[u], in[u]) << "element " << i;
    } else {
      garbage_differs += out[u] != 0x5A5A;
    }
  }
  EXPECT_GT(garbage_differs, (dev_out.numel() - 128) * 95 / 100);
  // NaN through the hooks; and without hooks a clear error instead of a host write to a device.
  transfers = 0;
  const auto [nan_in, nan_out] = run(true, true, "fallback.norm:nan(k=1)", &transfers);
  for (int64_t i = 64; i < nan_out.numel(); ++i) {
    ASSERT_EQ(nan_out.as<uint16_t>()[static_cast<std::size_t>(i)], 0x7FC0) << "element " << i;
  }
  Layer layer(small_config(), kTokens, 14);
  RmsNormArgs args = layer.norm_args();
  HostTensor output(DType::kBF16, {kTokens, 4, 64});
  args.input = layer.out[kNormOut].view();
  args.output = output.view();
  args.output.device = DeviceTag::kGpu;
  FaultyKernelSet no_hooks(inner, parse_fault_plan("fallback.norm:garbage"), test_seed());
  try {
    no_hooks.kernels().rms_norm->run(args);
    ADD_FAILURE() << "payload into a device view without hooks";
  } catch (const InvalidInput& e) {
    EXPECT_NE(std::string(e.what()).find("DeviceMemoryAccess"), std::string::npos) << e.what();
  }
}

TEST(FaultyKernelsDeathTest, AbortKillsTheProcessNeverFallsBack) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  cpu::CpuBackend cpu;
  Layer layer(small_config(), kTokens, 13);
  EXPECT_DEATH(
      {
        FaultyKernelSet faulty(cpu.kernels(), parse_fault_plan("fused:abort"), 1);
        try {
          layer.run(Which::kFused, faulty.kernels());
        } catch (...) {
          // A fallback would land here; an abort never does.
          std::fprintf(stderr, "caught: fell back\n");
          std::exit(0);
        }
      },
      "injected abort in fused_qk_norm_rope_cache_quant_shuffle");
}

}  // namespace
}  // namespace rcsim
