// `rcsim merge`: the shard reports of one campaign combined into the report of the unsharded
// campaign. Sums stay sums, maxima stay maxima, lists are put back in seed order, and the digest
// (an order-independent sum per run) adds up.
#include <algorithm>

#include "core/check.h"
#include "fault_injection/sim/campaign.h"
#include "fault_injection/sim/campaign_report_reader.h"

namespace rcsim::sim {
namespace {

// Every report must be a campaign report of this schema, of the same build, options, seed range
// and shard count as the first, and name a shard not given before. Returns the shard indices.
std::vector<int64_t> check_reports_fit(const std::vector<nlohmann::json>& reports,
                                       const std::vector<std::string>& names) {
  const nlohmann::json& first = reports.front();
  std::vector<int64_t> shards;
  for (std::size_t i = 0; i < reports.size(); ++i) {
    const nlohmann::json& j = reports[i];
    const std::string& name = names[i];
    RCSIM_REQUIRE(j.is_object() && j.value("schema", "") == "rcsim-campaign-report" &&
                      j.value("schema_version", 0) == kCampaignReportSchemaVersion,
                  "{}: not an rcsim campaign report of schema version {}", name,
                  kCampaignReportSchemaVersion);
    for (const char* key : {"build_id", "options"}) {
      RCSIM_REQUIRE(j.at(key) == first.at(key), "{}: '{}' differs from {}'s ({} vs {})", name, key,
                    names.front(), j.at(key).dump(), first.at(key).dump());
    }
    RCSIM_REQUIRE(j.at("seeds").at("first") == first.at("seeds").at("first") &&
                      j.at("seeds").at("last") == first.at("seeds").at("last"),
                  "{}: seed range differs from {}'s", name, names.front());
    RCSIM_REQUIRE(j.at("shard").at("count") == first.at("shard").at("count"),
                  "{}: shard count differs from {}'s", name, names.front());
    const int64_t index = j.at("shard").at("index").get<int64_t>();
    for (int64_t seen : shards) {
      RCSIM_REQUIRE(seen != index, "{}: shard {} given twice", name, index);
    }
    shards.push_back(index);
  }
  return shards;
}

// The unsharded campaign's options, as far as the report records them (shard 0 of 1).
CampaignOptions options_from_report(const nlohmann::json& first, bool coverage_gate) {
  CampaignOptions o;
  o.seed_first = first.at("seeds").at("first").get<uint64_t>();
  o.seed_last = first.at("seeds").at("last").get<uint64_t>();
  o.build_id = first.at("build_id").get<std::string>();
  o.budget_seconds = first.at("budget_seconds").get<double>();
  o.recheck_one_in = first.at("options").at("recheck_one_in").get<int64_t>();
  o.coverage_gate = coverage_gate;
  const std::string faults = first.at("options").at("faults").get<std::string>();
  o.overrides.faults = faults;
  o.overrides.backend = first.at("options").value("backend", std::string("cpu"));
  o.cross_backend = first.at("options").value("cross_backend", false);
  const auto mutant = mutant_from_name(first.at("options").at("mutant").get<std::string>());
  if (mutant && *mutant != Mutant::kNone) o.overrides.mutant = *mutant;
  return o;
}

// The per-policy rows: runs, totals and the outcome matrix, cell by cell.
void add_policy_rows(CampaignResult& r, const CampaignResult& s) {
  for (std::size_t p = 0; p < r.by_policy.size(); ++p) {
    r.runs_by_policy[p] += s.runs_by_policy[p];
    r.by_policy[p].merge(s.by_policy[p]);
    for (std::size_t k = 0; k < r.outcome_matrix[p].size(); ++k) {
      OutcomeCell& cell = r.outcome_matrix[p][k];
      const OutcomeCell& add = s.outcome_matrix[p][k];
      cell.runs += add.runs;
      cell.injections += add.injections;
      cell.passed += add.passed;
      cell.hazards += add.hazards;
      cell.failed += add.failed;
    }
  }
}

// One shard's result added to the merged one.
void add_shard(CampaignResult& r, const CampaignResult& s) {
  r.runs += s.runs;
  r.passed += s.passed;
  r.failed += s.failed;
  r.rechecked += s.rechecked;
  r.steps += s.steps;
  r.calls += s.calls;
  r.fallbacks += s.fallbacks;
  r.restores += s.restores;
  r.surfaced_errors += s.surfaced_errors;
  r.steps_aborted += s.steps_aborted;
  r.process_restarts += s.process_restarts;
  r.checks_passed += s.checks_passed;
  r.seeds_planned += s.seeds_planned;
  r.runs_graph_mode += s.runs_graph_mode;
  r.budget_exhausted = r.budget_exhausted || s.budget_exhausted;
  r.elapsed_seconds = std::max(r.elapsed_seconds, s.elapsed_seconds);  // shards run side by side
  r.run_seconds += s.run_seconds;
  r.run_seconds_twin += s.run_seconds_twin;
  r.cross_checked += s.cross_checked;
  if (s.runs > 0) r.last_seed_run = std::max(r.last_seed_run, s.last_seed_run);
  r.hazards += s.hazards;
  r.hazard_examples.insert(r.hazard_examples.end(), s.hazard_examples.begin(),
                           s.hazard_examples.end());
  r.attention_reads_differing += s.attention_reads_differing;
  r.attention_max_abs_diff = std::max(r.attention_max_abs_diff, s.attention_max_abs_diff);
  for (std::size_t c = 0; c < r.fallbacks_by_class.size(); ++c) {
    r.fallbacks_by_class[c] += s.fallbacks_by_class[c];
  }
  add_policy_rows(r, s);
  r.faults.merge(s.faults);
  r.failures.insert(r.failures.end(), s.failures.begin(), s.failures.end());
  r.digest += s.digest;
}

// Hazard examples and failures back in seed order (the examples cut to the campaign's maximum),
// and the seeds of shards not given counted as planned but not run: the merge is then incomplete.
void finish_merge(MergedCampaign& m, int64_t shard_count) {
  CampaignResult& r = m.result;
  const auto by_seed = [](const auto& a, const auto& b) { return a.seed < b.seed; };
  std::stable_sort(r.hazard_examples.begin(), r.hazard_examples.end(), by_seed);
  if (r.hazard_examples.size() > kCampaignHazardExamplesMax) {
    r.hazard_examples.resize(kCampaignHazardExamplesMax);
  }
  std::stable_sort(r.failures.begin(), r.failures.end(), by_seed);
  const uint64_t n = m.options.seed_last - m.options.seed_first + 1;
  for (int64_t index = 0; index < shard_count; ++index) {
    if (std::find(m.shards_merged.begin(), m.shards_merged.end(), index) == m.shards_merged.end()) {
      r.seeds_planned += campaign_seeds_in_shard(n, index, shard_count);
    }
  }
  std::sort(m.shards_merged.begin(), m.shards_merged.end());
}

}  // namespace

MergedCampaign merge_campaign_reports(const std::vector<nlohmann::json>& reports,
                                      const std::vector<std::string>& names, bool coverage_gate) {
  RCSIM_REQUIRE(!reports.empty() && reports.size() == names.size(), "merge: no reports given");
  MergedCampaign m;
  m.shards_merged = check_reports_fit(reports, names);
  m.options = options_from_report(reports.front(), coverage_gate);
  for (std::size_t i = 0; i < reports.size(); ++i) {
    add_shard(m.result, result_from_report(reports[i], names[i]));
  }
  finish_merge(m, reports.front().at("shard").at("count").get<int64_t>());
  note_rules_never_fired(m.options, m.result);
  if (coverage_gate) apply_coverage_gate(m.result);
  return m;
}

}  // namespace rcsim::sim
