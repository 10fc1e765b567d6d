#include "fault_injection/sim/campaign_report_reader.h"

#include <optional>
#include <string_view>

#include "core/check.h"

namespace rcsim::sim {
namespace {

std::optional<RunVerdict> verdict_from_name(std::string_view name) {
  for (RunVerdict v : {RunVerdict::kPass, RunVerdict::kCorrectness, RunVerdict::kLiveness,
                       RunVerdict::kCrash}) {
    if (verdict_name(v) == name) return v;
  }
  return std::nullopt;
}

// One report's fields, each read through a check that names the report and the field, so a
// hand-edited or truncated shard report fails with a message instead of a json exception.
class ReportReader {
 public:
  ReportReader(const nlohmann::json& j, const std::string& name) : j_(j), name_(name) {}

  CampaignResult read() {
    CampaignResult r;
    read_counts(r);
    read_hazards(r);
    read_faults(r.faults);
    read_policies(r);
    read_outcome_matrix(r);
    read_failures(r);
    const std::string digest = j_.at("digest").get<std::string>();
    RCSIM_REQUIRE(digest.size() == 16, "{}: digest '{}' is not 16 hex digits", name_, digest);
    r.digest = std::stoull(digest, nullptr, 16);
    return r;
  }

 private:
  int64_t i64(const nlohmann::json& parent, const char* key) const {
    RCSIM_REQUIRE(parent.contains(key) && parent.at(key).is_number_integer(),
                  "{}: missing or non-integer field '{}'", name_, key);
    return parent.at(key).get<int64_t>();
  }
  const nlohmann::json& obj(const nlohmann::json& parent, const char* key) const {
    RCSIM_REQUIRE(parent.contains(key) && parent.at(key).is_object(), "{}: missing object '{}'",
                  name_, key);
    return parent.at(key);
  }
  FallbackPolicy policy(const std::string& key) const {
    const auto p = policy_from_name(key);
    RCSIM_REQUIRE(p.has_value(), "{}: unknown policy '{}'", name_, key);
    return *p;
  }

  // Top-level counts, timings and throughput (absent in older reports: zeros).
  void read_counts(CampaignResult& r) const {
    r.runs = i64(j_, "runs");
    r.passed = i64(j_, "passed");
    r.failed = i64(j_, "failed");
    r.rechecked = i64(j_, "rechecked_for_determinism");
    r.steps = i64(j_, "steps");
    r.calls = i64(j_, "calls");
    r.fallbacks = i64(j_, "fallbacks");
    r.restores = i64(j_, "restores");
    r.surfaced_errors = i64(j_, "surfaced_errors");
    r.steps_aborted = i64(j_, "steps_aborted");
    r.process_restarts = i64(j_, "process_restarts");
    r.checks_passed = i64(j_, "checks_passed");
    r.seeds_planned = i64(j_, "seeds_planned");
    r.runs_graph_mode = i64(j_, "runs_graph_mode");
    r.budget_exhausted = j_.value("budget_exhausted", false);
    r.elapsed_seconds = j_.value("elapsed_seconds", 0.0);
    if (j_.contains("throughput")) {
      const nlohmann::json& t = j_.at("throughput");
      r.run_seconds = t.value("run_seconds", 0.0);
      r.cross_checked = t.value("cross_checked", int64_t{0});
      if (t.contains("cpu_twin")) r.run_seconds_twin = t.at("cpu_twin").value("run_seconds", 0.0);
    }
    r.last_seed_run = obj(j_, "seeds").value("last_run", uint64_t{0});
  }

  void read_hazards(CampaignResult& r) const {
    const nlohmann::json& hazards = obj(j_, "hazards");
    r.hazards = i64(hazards, "runs");
    for (const nlohmann::json& h : hazards.at("examples")) {
      r.hazard_examples.push_back({h.at("seed").get<uint64_t>(), h.at("policy").get<std::string>(),
                                   h.at("message").get<std::string>()});
    }
    const nlohmann::json& att = obj(j_, "attention");
    r.attention_reads_differing = i64(att, "reads_differing_from_fused_shadow");
    r.attention_max_abs_diff = att.at("max_abs_diff").get<double>();
  }

  // Injections per site:kind (the per-kind totals are derived, so not read), calls per site,
  // rebuilds and late faults.
  void read_faults(FaultStats& f) const {
    for (const auto& [key, count] : obj(j_, "faults_by_site_kind").items()) {
      const auto colon = key.find(':');
      RCSIM_REQUIRE(colon != std::string::npos, "{}: bad faults_by_site_kind key '{}'", name_,
                    key);
      const auto site = fault_site_from_name(key.substr(0, colon));
      const auto kind = fault_kind_from_name(key.substr(colon + 1));
      RCSIM_REQUIRE(site && kind, "{}: unknown site or kind in '{}'", name_, key);
      f.injections[static_cast<std::size_t>(*site)][static_cast<std::size_t>(*kind)] =
          count.get<int64_t>();
    }
    for (const auto& [key, count] : obj(j_, "calls_by_site").items()) {
      const auto site = fault_site_from_name(key);
      RCSIM_REQUIRE(site.has_value(), "{}: unknown site '{}'", name_, key);
      f.calls[static_cast<std::size_t>(*site)] = count.get<int64_t>();
    }
    f.rebuild_attempts = i64(obj(j_, "rebuild"), "attempts");
    f.rebuild_cost_us = i64(obj(j_, "rebuild"), "simulated_cost_us");
    f.late_armed = i64(obj(j_, "late_faults"), "armed");
    f.late_surfaced = i64(obj(j_, "late_faults"), "surfaced");
    f.k_clamped = i64(j_, "k_clamped");
    f.units_corrupted = i64(j_, "units_corrupted");
  }

  // Fallbacks per failure class, then runs and totals per policy (policy_totals_json's inverse).
  void read_policies(CampaignResult& r) const {
    for (const auto& [key, count] : obj(j_, "fallbacks_by_class").items()) {
      const auto c = failure_class_from_name(key);
      RCSIM_REQUIRE(c.has_value(), "{}: unknown failure class '{}'", name_, key);
      r.fallbacks_by_class[static_cast<std::size_t>(*c)] = count.get<int64_t>();
    }
    for (const auto& [key, count] : obj(j_, "runs_by_policy").items()) {
      r.runs_by_policy[static_cast<std::size_t>(policy(key))] = count.get<int64_t>();
    }
    for (const auto& [key, t] : obj(j_, "by_policy").items()) {
      PolicyTotals& out = r.by_policy[static_cast<std::size_t>(policy(key))];
      out.runs = i64(t, "runs");
      out.processes = i64(t, "processes");
      out.calls = i64(t, "calls");
      out.fused_attempts = i64(t, "fused_attempts");
      out.rebuild_attempts = i64(t, "rebuild_attempts");
      out.rebuild_cost_us = i64(t, "rebuild_simulated_cost_us");
      out.rebuild_log_lines = i64(t, "rebuild_log_lines");
      out.rebuild_attempts_max_per_process = i64(t, "rebuild_attempts_max_per_process");
      out.fused_rebuild_attempts_max_per_process = i64(t, "fused_rebuild_attempts_max_per_process");
      out.graphs_captured = i64(t, "graphs_captured");
      out.graph_capture_failures = i64(t, "graph_capture_failures");
      out.graph_replays = i64(t, "graph_replays");
      out.graph_replayed_fallback_layers = i64(t, "graph_replayed_fallback_layers");
      out.graph_replay_backup_copies = i64(t, "graph_replay_backup_copies");
      out.graph_replay_backup_bytes = i64(t, "graph_replay_backup_bytes");
    }
  }

  void read_outcome_matrix(CampaignResult& r) const {
    for (const auto& [policy_key, row] : obj(j_, "outcome_matrix").items()) {
      const FallbackPolicy p = policy(policy_key);
      for (const auto& [kind_key, cell] : row.items()) {
        const auto k = fault_kind_from_name(kind_key);
        RCSIM_REQUIRE(k.has_value(), "{}: unknown fault kind '{}'", name_, kind_key);
        OutcomeCell& out =
            r.outcome_matrix[static_cast<std::size_t>(p)][static_cast<std::size_t>(*k)];
        out = {i64(cell, "runs"), i64(cell, "injections"), i64(cell, "passed"),
               i64(cell, "hazards"), i64(cell, "failed")};
      }
    }
  }

  // Nondeterminism and cross-backend differences are written as verdicts of their own; the run
  // itself had passed, so they read back as kPass with their flag set.
  void read_failures(CampaignResult& r) const {
    for (const nlohmann::json& f : j_.at("failures")) {
      const std::string v = f.at("verdict").get<std::string>();
      const bool nondeterministic = v == "nondeterminism";
      const bool cross = v == "cross-backend";
      const auto verdict = nondeterministic || cross ? std::optional<RunVerdict>(RunVerdict::kPass)
                                                     : verdict_from_name(v);
      RCSIM_REQUIRE(verdict.has_value(), "{}: unknown verdict '{}'", name_, v);
      r.failures.push_back({f.at("seed").get<uint64_t>(), *verdict, nondeterministic, cross,
                            f.at("message").get<std::string>(), f.at("token").get<std::string>(),
                            f.value("token_cpu", std::string())});
    }
  }

  const nlohmann::json& j_;
  const std::string& name_;
};

}  // namespace

CampaignResult result_from_report(const nlohmann::json& report, const std::string& name) {
  return ReportReader(report, name).read();
}

}  // namespace rcsim::sim
