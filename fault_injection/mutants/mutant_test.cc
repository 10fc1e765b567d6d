// Goal: prove the simulator's checks bite. Every deliberately broken variant of core/mutants.h
// must make a short simulation fail with a correctness verdict, while the same runs without the
// mutant pass (so the catch is the mutant's doing, not a flaky check).
// Method: per mutant, a scenario that exercises the broken code path (fault spec, policy, cache
// dtype, sliding window), run over a few fixed seeds through run_simulation. The test passes iff
// at least one seed fails with RunVerdict::kCorrectness under the mutant and every seed passes
// without it. The replay token of the catching run is printed.
#include <gtest/gtest.h>

#include <optional>
#include <string>

#include "core/mutants.h"
#include "fault_injection/sim/engine.h"
#include "fault_injection/sim/sim_config.h"

namespace rcsim::sim {
namespace {

struct Scenario {
  std::string faults = "none";
  std::optional<FallbackPolicy> policy;
  std::optional<KvCacheDtype> kv;
  std::optional<int64_t> sliding_window;
  bool symmetric_weights = false;
};

// What each mutant needs to become observable.
Scenario scenario_for(Mutant m) {
  Scenario s;
  switch (m) {
    case Mutant::kRestoreSkipped:
    case Mutant::kOnlyQRestored:
      // A torn fused write that reaches K heads, then the fallback reads the unrestored qkv.
      s.faults = "fused:torn(k=mid,ratio=1/2)";
      s.policy = FallbackPolicy::kPr279ModelOrder;
      break;
    case Mutant::kWarnPerCall:
    case Mutant::kFallbackOrderSwapped:
      s.faults = "fused:launch(ratio=1/2)";
      s.policy = FallbackPolicy::kPr279;
      break;
    case Mutant::kBranchBAfterFailure:
      // B is only eligible with use_triton_attn (a sliding window or head_dim != 128).
      s.faults = "fused:launch(ratio=1/2)";
      s.policy = FallbackPolicy::kPr279;
      s.sliding_window = 128;
      break;
    case Mutant::kStickyErrorFallsBack:
      // A sticky fused error: the fallback the mutant then runs fails on the poisoned device
      // with the same class; the engine's call-count check must still see it.
      s.faults = "fused:sticky(ratio=1/4)";
      s.policy = FallbackPolicy::kSticky;
      break;
    case Mutant::kFp8MaxOtherFormat:
    case Mutant::kScaleNotStored:
      s.kv = KvCacheDtype::kFp8E4M3FNUZ;
      break;
    case Mutant::kReaderLayoutMismatch:
      // With an "auto" (bf16) cache x = 8 < block size, so shuffle and plain V differ in memory.
      s.kv = KvCacheDtype::kAuto;
      break;
    default:
      break;  // kernel mutants show on the fault-free fused path
  }
  return s;
}

SimConfig config_for(Mutant m, uint64_t seed, bool with_mutant) {
  const Scenario s = scenario_for(m);
  SimOverrides o;
  o.campaign_shape = true;
  o.faults = s.faults;
  o.policy = s.policy;
  o.kv_cache_dtype = s.kv;
  o.sliding_window = s.sliding_window;
  o.mutant = with_mutant ? m : Mutant::kNone;
  SimConfig cfg = sample_config(seed, o);
  cfg.steps = 16;
  return cfg;
}

class MutantCaught : public ::testing::TestWithParam<Mutant> {};

TEST_P(MutantCaught, BySimulation) {
  const Mutant m = GetParam();
  constexpr uint64_t kSeeds[] = {1, 2, 3, 4, 5, 6};
  bool caught = false;
  for (uint64_t seed : kSeeds) {
    const SimConfig control = config_for(m, seed, false);
    const RunResult clean = run_simulation(control);
    ASSERT_EQ(clean.verdict, RunVerdict::kPass)
        << "control run without the mutant failed (seed " << seed << "): " << clean.failure
        << "\nREPRO: rcsim replay " << encode_token(control, "test");
    if (caught) continue;
    const SimConfig cfg = config_for(m, seed, true);
    const RunResult r = run_simulation(cfg);
    if (r.verdict == RunVerdict::kCorrectness) {
      caught = true;
      std::printf("mutant %s caught (seed %llu): %s\nREPLAY=%s\n",
                  std::string(mutant_name(m)).c_str(), static_cast<unsigned long long>(seed),
                  r.failure.c_str(), encode_token(cfg, "test").c_str());
    } else {
      ASSERT_EQ(r.verdict, RunVerdict::kPass)
          << "mutant " << mutant_name(m) << " produced " << verdict_name(r.verdict)
          << " instead of a correctness failure: " << r.failure;
    }
  }
  EXPECT_TRUE(caught) << "mutant " << mutant_name(m) << " was not caught by seeds 1..6";
}

INSTANTIATE_TEST_SUITE_P(AllMutants, MutantCaught, ::testing::ValuesIn(simulation_mutants()),
                         [](const ::testing::TestParamInfo<Mutant>& param_info) {
                           std::string name(mutant_name(param_info.param));
                           for (char& c : name) {
                             if (c == '-') c = '_';
                           }
                           return name;
                         });

// Campaign-only mutants pass every single run by design (only a campaign's recheck sees them), so
// they must stay out of the lists whose every member a single run has to catch.
TEST(CampaignOnlyMutant, NotInTheSingleRunLists) {
  ASSERT_FALSE(campaign_only_mutants().empty());
  for (Mutant m : campaign_only_mutants()) {
    for (const Mutant listed : all_mutants()) EXPECT_NE(listed, m) << mutant_name(m);
    EXPECT_TRUE(mutant_from_name(mutant_name(m)).has_value()) << "campaign-only mutant unnamed";
  }
}

// The device-only mutant (issue 14) lives in the GPU kernels alone: on the CPU backend a run with
// it is the run without it, bit for bit (same verdict, same digest). Its GPU side - the campaign
// and the property suite fail - is shown on the GPU machine by scripts/gpu_testbed_run.sh.
TEST(DeviceOnlyMutant, InvisibleToTheCpuBackend) {
  ASSERT_FALSE(device_only_mutants().empty());
  for (Mutant m : device_only_mutants()) {
    for (const Mutant listed : all_mutants()) EXPECT_NE(listed, m) << "device-only in all_mutants";
    for (uint64_t seed : {1, 2, 3}) {
      SimOverrides o;
      o.campaign_shape = true;
      o.faults = "swarm";
      o.backend = "cpu";
      const RunResult clean = run_simulation(sample_config(seed, o));
      o.mutant = m;
      const SimConfig cfg = sample_config(seed, o);
      const RunResult r = run_simulation(cfg);
      EXPECT_EQ(r.verdict, RunVerdict::kPass)
          << mutant_name(m) << " seed " << seed << ": " << r.failure
          << "\nREPRO: rcsim replay " << encode_token(cfg, "test");
      EXPECT_EQ(r.digest, clean.digest) << mutant_name(m) << " seed " << seed;
      EXPECT_GT(r.calls_fused, 0) << "seed " << seed << " never ran the fused kernel";
    }
  }
}

}  // namespace
}  // namespace rcsim::sim
