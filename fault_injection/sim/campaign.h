// Many simulation runs: the campaign (seeds, swarm faults, every policy, a determinism
// self-check, a coverage gate, a JSON report) and the shrinker (the smallest config that still
// fails the same way). Both are plain functions of their options, used by the CLI and the tests.
// Implemented in campaign.cc (running), campaign_report.cc (the JSON report),
// campaign_report_reader.cc and campaign_merge.cc (`rcsim merge`), shrink.cc (the shrinker).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "fakes/faults/fault_stats.h"
#include "fault_injection/sim/engine.h"
#include "fault_injection/sim/sim_config.h"

namespace rcsim::sim {

// The most seeds one campaign (or one merged set of shard reports) may name.
inline constexpr uint64_t kCampaignSeedsMax = uint64_t{1} << 40;
// The hazard examples a campaign (or a merge) keeps: the first ones in seed order.
inline constexpr std::size_t kCampaignHazardExamplesMax = 8;
// Version of the campaign report's layout (docs/schemas/campaign-report.schema.json).
inline constexpr int kCampaignReportSchemaVersion = 2;

// A seed's policy and graph mode when the campaign does not fix them: a hash of the seed alone,
// never of its position in the range or shard, so every shard of a campaign runs every policy in
// both modes (issue 16 item 4).
FallbackPolicy campaign_policy_of_seed(uint64_t seed);
GraphMode campaign_graph_mode_of_seed(uint64_t seed);
// How many of `seeds` consecutive seeds shard `shard_index` of `shard_count` runs (the seeds at
// offsets i with i % shard_count == shard_index); a merge counts the missing shards' seeds with it.
int64_t campaign_seeds_in_shard(uint64_t seeds, int64_t shard_index, int64_t shard_count);

struct CampaignOptions {
  uint64_t seed_first = 0;
  uint64_t seed_last = 99;     // inclusive
  double budget_seconds = 60;  // no new run starts after this
  int64_t shard_index = 0;     // this process runs seeds with (seed - first) % count == index
  int64_t shard_count = 1;
  int64_t recheck_one_in = 20;  // ~5% of seeds are run twice and their digests compared
  bool coverage_gate = true;
  // Cross-backend determinism (issue 14): every seed also runs on the CPU backend (the "twin")
  // and both must give the same digest and verdict; a difference is its own failure class.
  bool cross_backend = false;
  SimOverrides overrides;  // campaign_shape and swarm faults by default (see make_campaign_options)
  std::string build_id;
};

struct CampaignHazard {
  uint64_t seed;
  std::string policy;
  std::string message;
};

struct CampaignFailure {
  uint64_t seed;
  RunVerdict verdict;
  bool nondeterministic = false;
  bool cross_backend = false;  // the backend and its CPU twin disagreed (digest or verdict)
  std::string message;
  std::string token;
  std::string token_twin;  // cross_backend: the CPU side's replay token
};

// Per-policy totals over a campaign's runs, so policies show side by side (issue 10 items 3, 5).
struct PolicyTotals {
  int64_t runs = 0;
  int64_t processes = 0;  // simulated processes (runs plus restarts)
  int64_t calls = 0;
  int64_t fused_attempts = 0;
  int64_t rebuild_attempts = 0;
  int64_t rebuild_cost_us = 0;
  int64_t rebuild_log_lines = 0;
  int64_t rebuild_attempts_max_per_process = 0;
  int64_t fused_rebuild_attempts_max_per_process = 0;
  int64_t graphs_captured = 0;
  int64_t graph_capture_failures = 0;
  int64_t graph_replays = 0;
  int64_t graph_replayed_fallback_layers = 0;
  int64_t graph_replay_backup_copies = 0;
  int64_t graph_replay_backup_bytes = 0;
  void add(const RunResult& run);
  void merge(const PolicyTotals& other);  // sums; maxima stay maxima
};
nlohmann::json policy_totals_json(const PolicyTotals& totals);

// One cell of the policy x fault-kind outcome matrix: the runs of a policy in which a kind fired,
// and how they ended (a run with several kinds counts in each of their cells).
struct OutcomeCell {
  int64_t runs = 0;
  int64_t injections = 0;
  int64_t passed = 0;
  int64_t hazards = 0;  // passed, but left a documented policy hazard (counted in passed too)
  int64_t failed = 0;
};

struct CampaignResult {
  int64_t runs = 0;
  int64_t passed = 0;
  int64_t failed = 0;
  int64_t rechecked = 0;
  int64_t steps = 0;
  int64_t calls = 0;
  int64_t fallbacks = 0;
  int64_t restores = 0;
  int64_t surfaced_errors = 0;
  int64_t steps_aborted = 0;
  int64_t process_restarts = 0;
  int64_t checks_passed = 0;
  int64_t hazards = 0;
  std::vector<CampaignHazard> hazard_examples;  // the first few, in seed order
  int64_t attention_reads_differing = 0;
  double attention_max_abs_diff = 0.0;
  std::array<int64_t, 5> fallbacks_by_class{};
  std::array<int64_t, 6> runs_by_policy{};
  std::array<PolicyTotals, 6> by_policy{};
  std::array<std::array<OutcomeCell, kFaultKindCount>, 6> outcome_matrix{};  // [policy][kind]
  int64_t runs_graph_mode = 0;  // runs in capture/replay mode (campaigns alternate by seed)
  FaultStats faults;
  std::vector<std::string> coverage_missing;  // sites / kinds / fallback reasons never reached
  std::vector<std::string> rules_never_fired;  // of an explicit fault spec (not swarm)
  std::vector<CampaignFailure> failures;       // in seed order
  // Sum (mod 2^64) of XXH3(seed, run digest) over the runs: independent of order, so the digests
  // of shards add up to the digest of the unsharded campaign.
  uint64_t digest = 0;
  int64_t seeds_planned = 0;  // seeds of this shard in the range (runs < planned: incomplete)
  double elapsed_seconds = 0;
  // Throughput (issue 14 item 6): seconds spent inside runs on the campaign's backend and, with
  // cross_backend, on the CPU twin (the same runs, so the same faults and calls per side).
  double run_seconds = 0;
  double run_seconds_twin = 0;
  int64_t cross_checked = 0;  // seeds compared with their CPU twin
  bool budget_exhausted = false;
  uint64_t last_seed_run = 0;
};

using CampaignProgress = std::function<void(int64_t runs_done, const CampaignResult& so_far)>;
CampaignResult run_campaign(const CampaignOptions& options, const CampaignProgress& progress = {});
nlohmann::json campaign_report(const CampaignOptions& options, const CampaignResult& result);
// faults/s and calls/s per backend (inside runs and over the wall clock).
nlohmann::json throughput_json(const CampaignOptions& options, const CampaignResult& result);

// Fills `coverage_missing` (sites, kinds, issue-10 kinds, graph capture/replay, fallback reasons
// never reached); run_campaign calls it when options.coverage_gate, `rcsim merge` on the union.
void apply_coverage_gate(CampaignResult& result);
// Fills `rules_never_fired` when the campaign's faults are an explicit spec.
void note_rules_never_fired(const CampaignOptions& options, CampaignResult& result);

// `rcsim merge`: the reports of the shards of one campaign (same seeds, shard count, options and
// build) combined into the report the unsharded campaign would have written (its runs, faults,
// digest, per-policy totals and failures). Throws InvalidInput naming the report that does not
// fit. Missing shards are allowed; the result then counts fewer runs than seeds planned.
struct MergedCampaign {
  CampaignOptions options;  // shard 0/1, coverage gate as given
  CampaignResult result;
  std::vector<int64_t> shards_merged;
};
MergedCampaign merge_campaign_reports(const std::vector<nlohmann::json>& reports,
                                      const std::vector<std::string>& names, bool coverage_gate);

struct ShrinkResult {
  SimConfig smallest;
  RunResult result;  // of `smallest`
  int64_t runs = 0;
};
// Greedy reduction of steps, layers, requests, token budget, fault rules and the number of
// faulty calls, keeping each change only if the run still fails with the same verdict.
// `original` must fail. At most `max_runs` candidate runs.
ShrinkResult shrink_config(const SimConfig& original, int64_t max_runs = 200);

}  // namespace rcsim::sim
