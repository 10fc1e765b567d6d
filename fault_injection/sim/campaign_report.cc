// The campaign's JSON report (docs/schemas/campaign-report.schema.json): what `rcsim campaign`
// writes and `rcsim merge` reads back (campaign_report_reader.cc is its inverse). Each step below
// writes one section; nlohmann::json keeps keys sorted, so the order of the steps does not change
// the bytes written.
#include <string>

#include <fmt/format.h>

#include "fault_injection/sim/campaign.h"

namespace rcsim::sim {
namespace {

// The options as the user gave them ("by seed" where the campaign samples per seed), so a merge
// can refuse shards that were run differently.
nlohmann::json options_json(const CampaignOptions& o) {
  const SimOverrides& ov = o.overrides;
  nlohmann::json j = nlohmann::json::object();
  j["faults"] = ov.faults ? *ov.faults : "swarm";
  j["mutant"] = std::string(mutant_name(ov.mutant ? *ov.mutant : Mutant::kNone));
  j["policy"] = ov.policy ? std::string(policy_name(*ov.policy)) : "by seed";
  j["graph_mode"] = ov.graph_mode ? std::string(graph_mode_name(*ov.graph_mode)) : "by seed";
  if (ov.model) j["model"] = *ov.model;
  if (ov.layers) j["layers"] = *ov.layers;
  if (ov.steps) j["steps"] = *ov.steps;
  if (ov.kv_cache_dtype) j["kv_cache"] = std::string(kv_cache_dtype_name(*ov.kv_cache_dtype));
  if (ov.sliding_window) j["sliding_window"] = *ov.sliding_window;
  j["recheck_one_in"] = o.recheck_one_in;
  j["backend"] = ov.backend.value_or("cpu");
  j["cross_backend"] = o.cross_backend;
  return j;
}

// What was asked for: seeds, shard, build, options and budget.
void write_campaign_identity(nlohmann::json& j, const CampaignOptions& o, const CampaignResult& r) {
  j["schema"] = "rcsim-campaign-report";
  j["schema_version"] = kCampaignReportSchemaVersion;
  j["seeds"] = {{"first", o.seed_first}, {"last", o.seed_last}, {"last_run", r.last_seed_run}};
  j["seeds_planned"] = r.seeds_planned;
  j["shard"] = {{"index", o.shard_index}, {"count", o.shard_count}};
  j["build_id"] = o.build_id;
  j["options"] = options_json(o);
  j["coverage_gate"] = o.coverage_gate;
  j["budget_seconds"] = o.budget_seconds;
  j["budget_exhausted"] = r.budget_exhausted;
  j["elapsed_seconds"] = r.elapsed_seconds;
}

// The plain counts over all runs, then hazards and the attention reads.
void write_run_counts(nlohmann::json& j, const CampaignResult& r) {
  j["runs"] = r.runs;
  j["passed"] = r.passed;
  j["failed"] = r.failed;
  j["rechecked_for_determinism"] = r.rechecked;
  j["steps"] = r.steps;
  j["calls"] = r.calls;
  j["fallbacks"] = r.fallbacks;
  j["restores"] = r.restores;
  j["surfaced_errors"] = r.surfaced_errors;
  j["steps_aborted"] = r.steps_aborted;
  j["process_restarts"] = r.process_restarts;
  j["checks_passed"] = r.checks_passed;
  nlohmann::json hazard_examples = nlohmann::json::array();
  for (const CampaignHazard& h : r.hazard_examples) {
    hazard_examples.push_back({{"seed", h.seed}, {"policy", h.policy}, {"message", h.message}});
  }
  j["hazards"] = {{"runs", r.hazards}, {"examples", hazard_examples}};
  j["attention"] = {{"reads_differing_from_fused_shadow", r.attention_reads_differing},
                    {"max_abs_diff", r.attention_max_abs_diff}};
}

// The faults injected (per kind, and per site:kind where any fired), rebuilds, late faults and
// the calls each site saw.
void write_fault_counts(nlohmann::json& j, const FaultStats& f) {
  j["faults_injected_total"] = f.injection_count_total();
  nlohmann::json by_kind = nlohmann::json::object();
  nlohmann::json by_site_kind = nlohmann::json::object();
  for (FaultKind k : all_fault_kinds()) {
    int64_t total = 0;
    for (FaultSite s : all_fault_sites()) {
      const int64_t c = f.injection_count(s, k);
      total += c;
      if (c > 0) by_site_kind[fmt::format("{}:{}", fault_site_name(s), fault_kind_name(k))] = c;
    }
    by_kind[std::string(fault_kind_name(k))] = total;
  }
  j["faults_by_kind"] = by_kind;
  j["faults_by_site_kind"] = by_site_kind;
  j["rebuild"] = {{"attempts", f.rebuild_attempts}, {"simulated_cost_us", f.rebuild_cost_us}};
  j["late_faults"] = {{"armed", f.late_armed}, {"surfaced", f.late_surfaced}};
  j["k_clamped"] = f.k_clamped;
  j["units_corrupted"] = f.units_corrupted;
  nlohmann::json calls_by_site = nlohmann::json::object();
  for (FaultSite s : all_fault_sites()) {
    calls_by_site[std::string(fault_site_name(s))] = f.call_count(s);
  }
  j["calls_by_site"] = calls_by_site;
}

// Fallbacks per failure class, and the runs and totals of each policy side by side.
void write_policy_counts(nlohmann::json& j, const CampaignResult& r) {
  nlohmann::json fallbacks = nlohmann::json::object();
  for (FailureClass c : kAllFailureClasses) {
    fallbacks[std::string(failure_class_name(c))] =
        r.fallbacks_by_class[static_cast<std::size_t>(c)];
  }
  j["fallbacks_by_class"] = fallbacks;
  nlohmann::json policies = nlohmann::json::object();
  nlohmann::json totals = nlohmann::json::object();
  for (FallbackPolicy p : all_policies()) {
    const auto index = static_cast<std::size_t>(p);
    policies[std::string(policy_name(p))] = r.runs_by_policy[index];
    totals[std::string(policy_name(p))] = policy_totals_json(r.by_policy[index]);
  }
  j["runs_by_policy"] = policies;
  j["by_policy"] = totals;
  j["runs_graph_mode"] = r.runs_graph_mode;
}

// The policy x fault-kind outcome matrix, every cell present (zeros included).
nlohmann::json outcome_matrix_json(const CampaignResult& r) {
  nlohmann::json matrix = nlohmann::json::object();
  for (FallbackPolicy p : all_policies()) {
    nlohmann::json row = nlohmann::json::object();
    for (FaultKind k : all_fault_kinds()) {
      const OutcomeCell& cell =
          r.outcome_matrix[static_cast<std::size_t>(p)][static_cast<std::size_t>(k)];
      row[std::string(fault_kind_name(k))] = {{"runs", cell.runs},
                                              {"injections", cell.injections},
                                              {"passed", cell.passed},
                                              {"hazards", cell.hazards},
                                              {"failed", cell.failed}};
    }
    matrix[std::string(policy_name(p))] = row;
  }
  return matrix;
}

// Each failure with its replay token (and the CPU twin's, for a cross-backend difference).
nlohmann::json failures_json(const std::vector<CampaignFailure>& failures) {
  nlohmann::json out = nlohmann::json::array();
  for (const CampaignFailure& f : failures) {
    nlohmann::json entry = {{"seed", f.seed},
                            {"verdict", f.cross_backend      ? "cross-backend"
                                        : f.nondeterministic ? "nondeterminism"
                                                             : verdict_name(f.verdict)},
                            {"message", f.message},
                            {"token", f.token}};
    if (f.cross_backend) entry["token_cpu"] = f.token_twin;
    out.push_back(entry);
  }
  return out;
}

}  // namespace

nlohmann::json policy_totals_json(const PolicyTotals& t) {
  return {{"runs", t.runs},
          {"processes", t.processes},
          {"calls", t.calls},
          {"fused_attempts", t.fused_attempts},
          {"rebuild_attempts", t.rebuild_attempts},
          {"rebuild_simulated_cost_us", t.rebuild_cost_us},
          {"rebuild_log_lines", t.rebuild_log_lines},
          {"rebuild_attempts_max_per_process", t.rebuild_attempts_max_per_process},
          {"fused_rebuild_attempts_max_per_process", t.fused_rebuild_attempts_max_per_process},
          {"graphs_captured", t.graphs_captured},
          {"graph_capture_failures", t.graph_capture_failures},
          {"graph_replays", t.graph_replays},
          {"graph_replayed_fallback_layers", t.graph_replayed_fallback_layers},
          {"graph_replay_backup_copies", t.graph_replay_backup_copies},
          {"graph_replay_backup_bytes", t.graph_replay_backup_bytes}};
}

nlohmann::json throughput_json(const CampaignOptions& o, const CampaignResult& r) {
  const auto per_second = [](double n, double seconds) { return seconds > 0 ? n / seconds : 0.0; };
  const auto faults = static_cast<double>(r.faults.injection_count_total());
  const auto calls = static_cast<double>(r.calls);
  nlohmann::json j = {{"backend", o.overrides.backend.value_or("cpu")},
                      {"run_seconds", r.run_seconds},
                      {"faults_per_second", per_second(faults, r.run_seconds)},
                      {"calls_per_second", per_second(calls, r.run_seconds)},
                      {"wall_faults_per_second", per_second(faults, r.elapsed_seconds)},
                      {"wall_calls_per_second", per_second(calls, r.elapsed_seconds)},
                      {"cross_checked", r.cross_checked}};
  if (o.cross_backend) {
    j["cpu_twin"] = {{"run_seconds", r.run_seconds_twin},
                     {"faults_per_second", per_second(faults, r.run_seconds_twin)},
                     {"calls_per_second", per_second(calls, r.run_seconds_twin)}};
  }
  return j;
}

nlohmann::json campaign_report(const CampaignOptions& o, const CampaignResult& r) {
  nlohmann::json j;
  write_campaign_identity(j, o, r);
  write_run_counts(j, r);
  write_fault_counts(j, r.faults);
  write_policy_counts(j, r);
  j["outcome_matrix"] = outcome_matrix_json(r);
  j["coverage_missing"] = r.coverage_missing;
  j["rules_never_fired"] = r.rules_never_fired;
  j["failures"] = failures_json(r.failures);
  j["throughput"] = throughput_json(o, r);
  j["digest"] = fmt::format("{:016x}", r.digest);
  return j;
}

}  // namespace rcsim::sim
