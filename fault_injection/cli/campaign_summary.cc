#include "fault_injection/cli/campaign_summary.h"

#include <cstdio>
#include <fstream>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "core/check.h"
#include "fault_injection/cli/commands.h"

namespace rcsim::cli {
namespace {

std::string_view failure_label(const sim::CampaignFailure& f) {
  if (f.cross_backend) return "cross-backend";
  return f.nondeterministic ? "nondeterminism" : sim::verdict_name(f.verdict);
}

bool any_cross_backend(const sim::CampaignResult& r) {
  for (const sim::CampaignFailure& f : r.failures) {
    if (f.cross_backend) return true;
  }
  return false;
}

bool any_failure(const sim::CampaignResult& r, bool nondeterministic, sim::RunVerdict verdict) {
  for (const sim::CampaignFailure& f : r.failures) {
    if (f.cross_backend) continue;
    if (f.nondeterministic == nondeterministic && (nondeterministic || f.verdict == verdict)) {
      return true;
    }
  }
  return false;
}

}  // namespace

std::string faults_by_kind(const FaultStats& s) {
  std::string out;
  for (FaultKind k : all_fault_kinds()) {
    int64_t n = 0;
    for (FaultSite site : all_fault_sites()) n += s.injection_count(site, k);
    if (n > 0) out += fmt::format(" {}={}", fault_kind_name(k), n);
  }
  return out.empty() ? " none" : out;
}

std::string fallbacks_by_class(const std::array<int64_t, 5>& counts) {
  std::string out;
  for (FailureClass c : kAllFailureClasses) {
    out += fmt::format(" {}={}", failure_class_name(c), counts[static_cast<std::size_t>(c)]);
  }
  return out;
}

int campaign_exit_code(const sim::CampaignResult& r) {
  if (any_failure(r, false, sim::RunVerdict::kCrash)) return kExitCrash;
  if (any_failure(r, true, sim::RunVerdict::kPass)) return kExitNondeterminism;
  if (any_cross_backend(r)) return kExitCrossBackend;
  if (any_failure(r, false, sim::RunVerdict::kCorrectness)) return kExitCheckFailed;
  if (any_failure(r, false, sim::RunVerdict::kLiveness)) return kExitLiveness;
  if (!r.coverage_missing.empty()) return kExitCoverageGate;
  if (r.runs < r.seeds_planned) return kExitIncomplete;
  return kExitPass;
}

std::string campaign_last_line(const sim::CampaignResult& r) {
  std::string line = fmt::format("{} passed, {} failed", r.passed, r.failed);
  if (!r.coverage_missing.empty()) {
    line += fmt::format("; gate: missing {} ({})", r.coverage_missing.size(),
                        fmt::join(r.coverage_missing, ", "));
  }
  if (r.runs < r.seeds_planned) {
    line += fmt::format("; incomplete: {} of {} seeds", r.runs, r.seeds_planned);
  }
  return line;
}

int print_campaign_summary(const sim::CampaignOptions& o, const sim::CampaignResult& r) {
  for (const sim::CampaignFailure& f : r.failures) {
    fmt::print("FAIL seed={} ({}) {}\n  REPLAY={}\n  REPRO: rcsim replay {}\n", f.seed,
               failure_label(f), f.message, f.token, f.token);
    if (f.cross_backend) {
      fmt::print("  REPLAY_CPU={}\n  REPRO_CPU: rcsim replay {}\n", f.token_twin, f.token_twin);
    }
  }
  fmt::print("RUNS {} of {} planned (seeds up to {}{}) in {:.1f}s, {} rechecked for determinism\n",
             r.runs, r.seeds_planned, r.last_seed_run, r.budget_exhausted ? ", budget exhausted" : "",
             r.elapsed_seconds, r.rechecked);
  fmt::print("STEPS {} CALLS {} FALLBACKS {} RESTORES {} SURFACED {} ABORTED_STEPS {} RESTARTS {} "
             "CHECKS_PASSED {}\n",
             r.steps, r.calls, r.fallbacks, r.restores, r.surfaced_errors, r.steps_aborted,
             r.process_restarts, r.checks_passed);
  fmt::print("FAULTS_INJECTED total={}{}\n", r.faults.injection_count_total(), faults_by_kind(r.faults));
  fmt::print("FALLBACKS_BY_CLASS{}\n", fallbacks_by_class(r.fallbacks_by_class));
  fmt::print("REBUILD attempts={} simulated_cost_us={}\n", r.faults.rebuild_attempts,
             r.faults.rebuild_cost_us);
  // Per policy, side by side (issue 10 items 3 and 5).
  for (FallbackPolicy p : all_policies()) {
    const sim::PolicyTotals& t = r.by_policy[static_cast<std::size_t>(p)];
    if (t.runs == 0) continue;
    fmt::print("POLICY {:<18} runs={} processes={} calls={} fused_attempts={} rebuild_attempts={} "
               "rebuild_cost_us={} rebuild_log_lines={} rebuild_max_per_process={} (fused {}) "
               "graphs_captured={} capture_failures={} replays={} replayed_backup_copies={} "
               "replayed_backup_bytes={}\n",
               policy_name(p), t.runs, t.processes, t.calls, t.fused_attempts, t.rebuild_attempts,
               t.rebuild_cost_us, t.rebuild_log_lines, t.rebuild_attempts_max_per_process,
               t.fused_rebuild_attempts_max_per_process, t.graphs_captured,
               t.graph_capture_failures, t.graph_replays, t.graph_replay_backup_copies,
               t.graph_replay_backup_bytes);
  }
  fmt::print("HAZARDS {} (runs that showed a documented policy weakness; see report)\n", r.hazards);
  fmt::print("PR_ORDER_ATTENTION reads_differing={} max_abs_diff={:.6g}\n",
             r.attention_reads_differing, r.attention_max_abs_diff);
  // Throughput inside runs, per backend (the campaign's, and its CPU twin under --cross-backend:
  // the same runs, so the same faults and calls), and over the wall clock.
  const nlohmann::json t = sim::throughput_json(o, r);
  fmt::print("THROUGHPUT backend={} faults/s={:.1f} calls/s={:.1f} (in runs, {:.1f}s) wall faults/s={:.1f} "
             "calls/s={:.1f}\n",
             t.at("backend").get<std::string>(), t.at("faults_per_second").get<double>(),
             t.at("calls_per_second").get<double>(), r.run_seconds,
             t.at("wall_faults_per_second").get<double>(), t.at("wall_calls_per_second").get<double>());
  if (t.contains("cpu_twin")) {
    const nlohmann::json& c = t.at("cpu_twin");
    fmt::print("THROUGHPUT backend=cpu-twin faults/s={:.1f} calls/s={:.1f} (in runs, {:.1f}s); "
               "{} seeds compared with the cpu twin\n",
               c.at("faults_per_second").get<double>(), c.at("calls_per_second").get<double>(),
               r.run_seconds_twin, r.cross_checked);
  }
  for (const std::string& m : r.coverage_missing) fmt::print("COVERAGE MISSING {}\n", m);
  for (const std::string& rule : r.rules_never_fired) fmt::print("RULE NEVER FIRED {}\n", rule);
  fmt::print("DIGEST={:016x}\n", r.digest);
  fmt::print("{}\n", campaign_last_line(r));
  std::fflush(stdout);
  return campaign_exit_code(r);
}

nlohmann::json campaign_report_with_outcome(const sim::CampaignOptions& o,
                                            const sim::CampaignResult& r) {
  nlohmann::json j = sim::campaign_report(o, r);
  j["outcome"] = {{"exit_code", campaign_exit_code(r)}, {"last_line", campaign_last_line(r)}};
  return j;
}

void write_json_file(const std::string& what, const std::string& path, const nlohmann::json& j) {
  std::ofstream out(path, std::ios::trunc);
  RCSIM_REQUIRE(out.good(), "{}: cannot write '{}'", what, path);
  out << j.dump(2) << "\n";
  out.flush();
  RCSIM_REQUIRE(out.good(), "{}: writing '{}' failed", what, path);
}

}  // namespace rcsim::cli
