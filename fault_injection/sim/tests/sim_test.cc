// Goal: the simulated serving engine is deterministic, its replay tokens reproduce runs exactly,
// its shrinker reduces failing runs, and its building blocks (block manager, scheduler, padding,
// attention read) keep their invariants.
// Method: whole runs through run_simulation with fixed seeds (printed by gtest on failure through
// the assertion messages), compared by digest and verdict; a mutant supplies a real failure for
// replay and shrink; the building blocks are driven directly with seeded inputs.
#include <array>
#include <gtest/gtest.h>

#include <set>

#include "core/mutants.h"
#include "fault_injection/sim/attention_read.h"
#include "fault_injection/sim/campaign.h"
#include "fault_injection/sim/engine.h"
#include "fault_injection/sim/sim_config.h"
#include "fault_injection/sim/workload.h"
#include "kernels/common/cache_layout.h"
#include "kernels/common/numeric.h"

namespace rcsim::sim {
namespace {

SimConfig small_config(uint64_t seed, std::string faults = "swarm") {
  SimOverrides o;
  o.campaign_shape = true;
  o.faults = std::move(faults);
  return sample_config(seed, o);
}

TEST(SimDeterminism, SameSeedSameDigest) {
  for (uint64_t seed : {3u, 11u, 42u}) {
    const SimConfig cfg = small_config(seed);
    const RunResult a = run_simulation(cfg);
    const RunResult b = run_simulation(cfg);
    EXPECT_EQ(a.digest, b.digest) << "seed " << seed;
    EXPECT_EQ(a.verdict, b.verdict) << "seed " << seed;
    EXPECT_EQ(a.calls, b.calls) << "seed " << seed;
    EXPECT_EQ(a.faults.injection_count_total(), b.faults.injection_count_total()) << "seed " << seed;
    EXPECT_GT(a.calls, 0) << "seed " << seed << ": the run did no work";
  }
}

TEST(SimDeterminism, DifferentSeedDifferentDigest) {
  std::set<uint64_t> digests;
  for (uint64_t seed = 100; seed < 108; ++seed) digests.insert(run_simulation(small_config(seed)).digest);
  EXPECT_EQ(digests.size(), 8u) << "two of seeds 100..107 produced the same digest";
}

TEST(SimDeterminism, DigestCoversOutputs) {
  // Same seed, one changed knob that only changes numbers (symmetric norm weights): the digest
  // must change, so it really covers outputs and not just control flow.
  SimConfig cfg = small_config(5, "none");
  const uint64_t base = run_simulation(cfg).digest;
  cfg.symmetric_weights = !cfg.symmetric_weights;
  EXPECT_NE(run_simulation(cfg).digest, base);
}

TEST(SimFaultFree, EveryPolicyPassesAndStaysFused) {
  for (FallbackPolicy p : all_policies()) {
    SimConfig cfg = small_config(7, "none");
    cfg.policy = p;
    const RunResult r = run_simulation(cfg);
    EXPECT_EQ(r.verdict, RunVerdict::kPass) << policy_name(p) << ": " << r.failure;
    EXPECT_EQ(r.calls, r.calls_fused) << policy_name(p);
    EXPECT_EQ(r.faults.injection_count_total(), 0) << policy_name(p);
    EXPECT_EQ(r.log_lines, 0) << policy_name(p);
  }
}

TEST(SimFaults, LaunchFaultsFallBackRestoreAndRecover) {
  SimConfig cfg = small_config(9, "fused:launch(ratio=1/2)");
  cfg.policy = FallbackPolicy::kPr279ModelOrder;
  const RunResult r = run_simulation(cfg);
  ASSERT_EQ(r.verdict, RunVerdict::kPass) << r.failure;
  EXPECT_GT(r.fallbacks, 0);
  EXPECT_EQ(r.restores, r.fallbacks);
  EXPECT_EQ(r.fallbacks_by_class[static_cast<std::size_t>(FailureClass::kLaunchFailure)], r.fallbacks);
  EXPECT_EQ(r.liveness_steps_to_fused, 0) << "a retrying policy must be fused at once";
  // Model order with the CPU reference: the fallback is bit-identical to the fused path for
  // "auto" caches; for fp8 the quantisation arithmetic may differ slightly (measured).
  if (cfg.kv_cache_dtype == KvCacheDtype::kAuto) {
    EXPECT_EQ(r.attention_reads_differing, 0);
  }
}

TEST(SimFaults, PrOrderWithAsymmetricWeightsIsMeasured) {
  SimConfig cfg = small_config(9, "fused:launch(ratio=1/1)");
  cfg.policy = FallbackPolicy::kPr279;
  cfg.symmetric_weights = false;
  cfg.kv_cache_dtype = KvCacheDtype::kAuto;
  const RunResult r = run_simulation(cfg);
  ASSERT_EQ(r.verdict, RunVerdict::kPass) << r.failure;
  EXPECT_GT(r.attention_reads_differing, 0) << "the PR order must differ from the fused path";
  EXPECT_GT(r.attention_max_abs_diff, 0.0);
}

TEST(SimFaults, StickyDeviceErrorsSurfaceAndRestart) {
  SimConfig cfg = small_config(13, "fused:sticky(k=0,ratio=1/4)");
  const RunResult r = run_simulation(cfg);
  ASSERT_EQ(r.verdict, RunVerdict::kPass) << r.failure;
  EXPECT_GT(r.surfaced_errors, 0);
  EXPECT_GT(r.process_restarts, 0);
  EXPECT_EQ(r.fallbacks_by_class[static_cast<std::size_t>(FailureClass::kStickyDevice)], 0)
      << "a sticky device error must never be hidden by a fallback";
}

TEST(SimToken, RoundTrip) {
  SimConfig cfg = small_config(77);
  cfg.mutant = Mutant::kSlotOffByOne;
  cfg.faulty_calls_max = 5;
  const DecodedToken t = decode_token(encode_token(cfg, "abc123"));
  EXPECT_EQ(t.build_id, "abc123");
  EXPECT_EQ(encode_token(t.cfg, "abc123"), encode_token(cfg, "abc123"));
  EXPECT_EQ(t.cfg.faults, cfg.faults);
  EXPECT_EQ(t.cfg.mutant, Mutant::kSlotOffByOne);
}

TEST(SimToken, DamagedTokenIsRejected) {
  std::string token = encode_token(small_config(1), "x");
  token[10] = token[10] == 'A' ? 'B' : 'A';
  EXPECT_THROW(decode_token(token), InvalidInput);
  EXPECT_THROW(decode_token("rcsim1_"), InvalidInput);
  EXPECT_THROW(decode_token("hello"), InvalidInput);
}

TEST(SimReplay, MutantFailureReproducesFromToken) {
  SimConfig cfg = small_config(21, "none");
  cfg.mutant = Mutant::kSlotOffByOne;
  const RunResult first = run_simulation(cfg);
  ASSERT_EQ(first.verdict, RunVerdict::kCorrectness) << "the mutant was not caught";
  const DecodedToken t = decode_token(encode_token(cfg, "build"));
  const RunResult again = run_simulation(t.cfg);
  EXPECT_EQ(again.verdict, first.verdict);
  EXPECT_EQ(again.failure, first.failure);
  EXPECT_EQ(again.digest, first.digest);
  EXPECT_EQ(again.failure_step, first.failure_step);
}

TEST(SimShrink, ReducesAFailingRun) {
  SimConfig cfg = small_config(23, "fused:torn(k=mid,ratio=1/2)");
  cfg.policy = FallbackPolicy::kPr279;
  cfg.mutant = Mutant::kRestoreSkipped;
  cfg.layers = 2;
  cfg.steps = 24;
  const RunResult original = run_simulation(cfg);
  ASSERT_EQ(original.verdict, RunVerdict::kCorrectness) << "restore-skipped not caught";
  const ShrinkResult s = shrink_config(cfg, 60);
  EXPECT_EQ(s.result.verdict, RunVerdict::kCorrectness);
  EXPECT_LE(s.smallest.steps, cfg.steps);
  EXPECT_LE(s.smallest.layers, cfg.layers);
  EXPECT_TRUE(s.smallest.steps < cfg.steps || s.smallest.layers < cfg.layers ||
              s.smallest.requests < cfg.requests)
      << "nothing shrank";
  // The shrunk config replays to the same verdict.
  EXPECT_EQ(run_simulation(s.smallest).verdict, RunVerdict::kCorrectness);
}

TEST(SimCampaign, SmallCampaignPassesAndReports) {
  CampaignOptions o;
  o.seed_first = 0;
  o.seed_last = 11;
  o.budget_seconds = 120;
  o.recheck_one_in = 3;
  o.coverage_gate = false;
  o.overrides.campaign_shape = true;
  o.overrides.faults = "swarm";
  o.build_id = "test";
  const CampaignResult r = run_campaign(o);
  EXPECT_EQ(r.runs, 12);
  EXPECT_EQ(r.failed, 0) << (r.failures.empty() ? "" : r.failures.front().message);
  EXPECT_GT(r.rechecked, 0);
  EXPECT_GT(r.faults.injection_count_total(), 0);
  const nlohmann::json j = campaign_report(o, r);
  EXPECT_EQ(j["runs"], 12);
  EXPECT_TRUE(j.contains("faults_by_kind"));
  // Sharding splits the seeds without overlap.
  o.shard_count = 2;
  o.shard_index = 1;
  EXPECT_EQ(run_campaign(o).runs, 6);
}

// Issue 16 item 4: a seed's policy and graph mode are a function of the seed alone, so every
// shard of a campaign covers every policy in both modes whatever the shard count (with seed % 6,
// an even shard count gave each shard half the policies and one shard all the graph-mode runs).
TEST(SimCampaign, EveryShardCoversEveryPolicyInBothGraphModes) {
  constexpr uint64_t kSeeds = 1200;
  for (int64_t shards : {2, 3, 4, 6, 8, 12}) {
    for (int64_t shard = 0; shard < shards; ++shard) {
      std::array<std::array<int64_t, 2>, 6> runs{};
      for (uint64_t seed = static_cast<uint64_t>(shard); seed < kSeeds;
           seed += static_cast<uint64_t>(shards)) {
        const auto policy = static_cast<std::size_t>(campaign_policy_of_seed(seed));
        const std::size_t mode = campaign_graph_mode_of_seed(seed) == GraphMode::kCaptureReplay;
        ++runs[policy][mode];
      }
      for (std::size_t p = 0; p < runs.size(); ++p) {
        for (std::size_t mode = 0; mode < 2; ++mode) {
          EXPECT_GT(runs[p][mode], 0) << "shard " << shard << "/" << shards << " policy "
                                      << policy_name(all_policies()[p]) << " mode " << mode;
        }
      }
    }
  }
  // Roughly equal shares overall (each of the 12 cells expects 100 of 1200 seeds).
  std::array<int64_t, 6> per_policy{};
  for (uint64_t seed = 0; seed < kSeeds; ++seed) {
    ++per_policy[static_cast<std::size_t>(campaign_policy_of_seed(seed))];
  }
  for (int64_t n : per_policy) {
    EXPECT_GT(n, 150);
    EXPECT_LT(n, 250);
  }
}

TEST(SimWorkload, BlockManagerNeverHandsOutAPageTwice) {
  BlockManager blocks(5, 32);
  std::vector<int64_t> a, b;
  ASSERT_TRUE(blocks.grow(a, 16 * 10, 16));
  ASSERT_TRUE(blocks.grow(b, 16 * 22, 16));
  EXPECT_FALSE(blocks.grow(b, 16 * 23, 16)) << "32 pages are all taken";
  std::set<int64_t> pages(a.begin(), a.end());
  pages.insert(b.begin(), b.end());
  EXPECT_EQ(pages.size(), 32u);
  blocks.release(a);
  EXPECT_EQ(blocks.free_blocks(), 10);
  EXPECT_TRUE(a.empty());
}

TEST(SimWorkload, SchedulerRespectsBudgetPadsWithMinusOneAndFinishes) {
  BlockManager blocks(8, 64);
  WorkloadShape shape;
  shape.requests = 5;
  shape.prompt_tokens_max = 30;
  shape.output_tokens_max = 6;
  shape.arrival_spread_steps = 4;
  SchedulerConfig sc;
  sc.token_budget = 12;
  Scheduler sched(sc, generate_requests(8, shape), blocks);
  int64_t steps = 0;
  bool saw_padding = false, saw_mixed = false;
  for (; steps < 500 && !sched.all_finished(); ++steps) {
    const Step s = sched.form_step(steps);
    EXPECT_LE(s.real_tokens, sc.token_budget);
    EXPECT_EQ(static_cast<int64_t>(s.rows.size()), bucket_for(sc.buckets, s.real_tokens));
    std::set<int64_t> slots;
    for (std::size_t i = 0; i < s.rows.size(); ++i) {
      if (static_cast<int64_t>(i) >= s.real_tokens) {
        EXPECT_EQ(s.rows[i].slot, -1);
        saw_padding = true;
      } else {
        EXPECT_GE(s.rows[i].slot, 0);
        EXPECT_TRUE(slots.insert(s.rows[i].slot).second) << "two tokens share slot " << s.rows[i].slot;
      }
    }
    saw_mixed = saw_mixed || (s.prefill_tokens > 0 && s.decode_tokens > 0);
    sched.commit(s);
  }
  EXPECT_TRUE(sched.all_finished()) << "requests still running after " << steps << " steps";
  EXPECT_EQ(blocks.free_blocks(), 64) << "pages leaked";
  EXPECT_TRUE(saw_padding);
  EXPECT_TRUE(saw_mixed) << "no step mixed chunked prefill and decode";
}

TEST(SimAttentionRead, ReadsTheDeclaredVLayout) {
  AttentionConfig a;
  a.num_heads_q = 2;
  a.num_heads_kv = 1;
  a.head_dim = 64;
  a.rotary_dim = 64;
  a.block_size = 16;
  a.num_blocks = 2;
  const int64_t x = a.x();
  HostTensor k(DType::kBF16, {2, 1, 64 / x, 16, x}), v(DType::kBF16, {2, 1, 64, 16});
  const layout::PagedCacheShape shape = a.cache_shape();
  // Value of V at (block b, token s, dim d) written in shuffle order: 1 + d/64 + s/16 (distinct).
  for (int64_t b = 0; b < 2; ++b) {
    for (int64_t s = 0; s < 16; ++s) {
      for (int64_t d = 0; d < 64; ++d) {
        const float value = 1.0f + static_cast<float>(d) / 64.0f + static_cast<float>(s) / 16.0f;
        v.as<uint16_t>()[static_cast<std::size_t>(layout::v_shuffle_offset(shape, b, 0, s, d))] =
            numeric::float_to_bf16_bits(value);
        k.as<uint16_t>()[static_cast<std::size_t>(layout::k_xpacked_offset(shape, b, 0, s, d))] =
            numeric::float_to_bf16_bits(0.5f);
      }
    }
  }
  const KvCacheViews views{k.view(), v.view(), {}, {}};
  const CacheReadSpec shuffle{a, VCacheLayout::kShuffle};
  EXPECT_EQ(read_cache_element(shuffle, views, true, 1, 0, 5, 7),
            numeric::round_to_bf16(1.0f + 7.0f / 64.0f + 5.0f / 16.0f));
  const CacheReadSpec plain{a, VCacheLayout::kPlain};
  EXPECT_NE(read_cache_element(plain, views, true, 1, 0, 5, 7),
            read_cache_element(shuffle, views, true, 1, 0, 5, 7));
  const float as_plain = read_cache_element(plain, views, true, 1, 0, 5, 7);
  {
    // The mutant reader declares shuffle but reads plain.
    ScopedMutant m(Mutant::kReaderLayoutMismatch);
    EXPECT_EQ(read_cache_element(shuffle, views, true, 1, 0, 5, 7), as_plain);
  }
  // Equal keys: attention is the mean of V over the context.
  HostTensor q(DType::kBF16, {2, 64});
  for (auto& bits : q.as<uint16_t>()) bits = numeric::float_to_bf16_bits(0.25f);
  std::vector<float> out(128);
  const std::vector<int64_t> table = {1, 0};
  paged_attention_read(shuffle, views, table, 4, q.view(), out);
  float mean = 0.0f;
  for (int64_t s = 0; s < 4; ++s) mean += numeric::round_to_bf16(1.0f + 3.0f / 64.0f + static_cast<float>(s) / 16.0f);
  EXPECT_NEAR(out[3], mean / 4.0f, 1e-5f);
}

}  // namespace
}  // namespace rcsim::sim
