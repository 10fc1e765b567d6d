// Runs one simulated config and reports it on stdout and as JSON (run_and_report.h).
#include "fault_injection/cli/run_and_report.h"

#include <unistd.h>

#include <array>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "fault_injection/cli/campaign_summary.h"
#include "fault_injection/cli/commands.h"
#include "fault_injection/cli/sim_options.h"
#include "fault_injection/plan/fault_plan.h"

namespace rcsim::cli {
namespace {

// Version of the run report's layout (docs/schemas/run-report.schema.json).
constexpr int kRunReportSchemaVersion = 1;

// An always-on assertion aborts the process. The handler turns that into the crash exit code and
// still prints the replay token of the run in flight (written with write(2): signal-safe).
char g_crash_line[8192] = {0};
extern "C" void on_abort(int) {
  const std::size_t n = strnlen(g_crash_line, sizeof g_crash_line);
  if (n > 0) {
    [[maybe_unused]] const auto w = write(STDOUT_FILENO, g_crash_line, n);
  }
  _exit(kExitCrash);
}
void arm_crash_report(const std::string& token) {
  const std::string line = fmt::format("\nRESULT FAIL (crash)\nREPLAY={}\nREPRO: rcsim replay {}\n",
                                       token, token);
  std::snprintf(g_crash_line, sizeof g_crash_line, "%s", line.c_str());
  std::signal(SIGABRT, on_abort);
}

// "pass", "hazard" (passed, but left a documented policy hazard behind), or the failing verdict.
std::string run_outcome(const sim::RunResult& r) {
  if (r.verdict == sim::RunVerdict::kPass) return r.hazard.empty() ? "pass" : "hazard";
  return std::string(sim::verdict_name(r.verdict));
}

nlohmann::json run_report(const sim::SimConfig& cfg, const sim::RunResult& r,
                          const std::string& token, const std::vector<std::string>& never_fired) {
  nlohmann::json by_kind = nlohmann::json::object();
  for (FaultKind k : all_fault_kinds()) {
    int64_t n = 0;
    for (FaultSite site : all_fault_sites()) n += r.faults.injection_count(site, k);
    by_kind[std::string(fault_kind_name(k))] = n;
  }
  nlohmann::json fallbacks = nlohmann::json::object();
  for (FailureClass c : kAllFailureClasses) {
    fallbacks[std::string(failure_class_name(c))] =
        r.fallbacks_by_class[static_cast<std::size_t>(c)];
  }
  return {{"schema", "rcsim-run-report"},
          {"schema_version", kRunReportSchemaVersion},
          {"build_id", std::string(kBuildId)},
          {"seed", cfg.seed},
          {"config",
           {{"model", cfg.model},
            {"layers", cfg.layers},
            {"steps", cfg.steps},
            {"liveness_steps", cfg.liveness_steps},
            {"policy", std::string(policy_name(cfg.policy))},
            {"mutant", std::string(mutant_name(cfg.mutant))},
            {"backend", cfg.backend},
            {"kv_cache", std::string(kv_cache_dtype_name(cfg.kv_cache_dtype))},
            {"sliding_window", cfg.sliding_window},
            {"graph_mode", std::string(sim::graph_mode_name(cfg.graph_mode))},
            {"faults", cfg.faults}}},
          {"verdict", run_outcome(r)},
          {"hazard", r.hazard.empty() ? nlohmann::json(nullptr) : nlohmann::json(r.hazard)},
          {"failure", r.verdict == sim::RunVerdict::kPass ? nlohmann::json(nullptr)
                                                          : nlohmann::json(r.failure)},
          {"exit_code", exit_code_of(r.verdict)},
          {"steps_run", r.steps_run},
          {"calls", r.calls},
          {"fallbacks", r.fallbacks},
          {"restores", r.restores},
          {"surfaced_errors", r.surfaced_errors},
          {"checks_passed", r.checks_passed},
          {"faults_injected_total", r.faults.injection_count_total()},
          {"faults_by_kind", by_kind},
          {"fallbacks_by_class", fallbacks},
          {"rules_never_fired", never_fired},
          {"replay_token", token},
          {"digest", fmt::format("{:016x}", r.digest)}};
}

// The lines between the header and the verdict: what the run did, what was injected, the fault
// rules that never fired (returned: the report lists them too), and the per-issue counters.
std::vector<std::string> print_run_summary(const sim::SimConfig& cfg, const sim::RunResult& r) {
  fmt::print(
      "SUMMARY steps={} aborted={} late_tainted={} restarts={} calls={} fused={} fallbacks={} "
      "restores={} surfaced_errors={} checks_passed={} log_lines={}\n",
      r.steps_run, r.steps_aborted, r.steps_late_tainted, r.process_restarts, r.calls,
      r.calls_fused, r.fallbacks, r.restores, r.surfaced_errors, r.checks_passed, r.log_lines);
  fmt::print("FAULTS_INJECTED total={}{}\n", r.faults.injection_count_total(),
             faults_by_kind(r.faults));
  const std::vector<std::string> never_fired =
      unreached_rules(r.faults, parse_fault_plan(cfg.faults));
  for (const std::string& rule : never_fired) fmt::print("RULE NEVER FIRED {}\n", rule);
  fmt::print("FALLBACKS_BY_CLASS{}\n", fallbacks_by_class(r.fallbacks_by_class));
  // Issue 10 item 3: a missing module re-attempting its build on every call.
  fmt::print("REBUILD policy={} fused_attempts={} attempts={} simulated_cost_us={} log_lines={} "
             "max_attempts_per_process={} (fused {}) processes={}\n",
             policy_name(cfg.policy), r.fused_attempts, r.faults.rebuild_attempts,
             r.faults.rebuild_cost_us, r.rebuild_log_lines, r.rebuild_attempts_max_per_process,
             r.fused_rebuild_attempts_max_per_process, r.processes);
  // Issue 10 item 5: CUDA-graph capture/replay (zeros in eager mode).
  fmt::print("GRAPH mode={} policy={} captured={} capture_failures={} replays={} "
             "replayed_fallback_layers={} replayed_backup_copies={} replayed_backup_bytes={} "
             "replayed_restores={}\n",
             sim::graph_mode_name(cfg.graph_mode), policy_name(cfg.policy), r.graphs_captured,
             r.graph_capture_failures, r.graph_replays, r.graph_replayed_fallback_layers,
             r.graph_replay_backup_copies, r.graph_replay_backup_bytes,
             r.graph_replay_restore_copies);
  fmt::print("MIXED_HISTORY prefill_fused_decode_fallback={} prefill_fallback_decode_fused={} "
             "shadow_cache_positions_checked={} differing={}\n",
             r.mixed_prefill_fused_decode_fallback, r.mixed_prefill_fallback_decode_fused,
             r.shadow_cache_positions_checked, r.shadow_cache_positions_differing);
  fmt::print("ATTENTION reads={} differing_from_fused_shadow={} max_abs_diff={:.6g}\n",
             r.attention_reads, r.attention_reads_differing, r.attention_max_abs_diff);
  fmt::print("LIVENESS steps_to_fused={}{}\n", r.liveness_steps_to_fused,
             r.liveness_exempt ? " (exempt: the policy never retries after 'unavailable')" : "");
  return never_fired;
}

// The verdict: PASS, HAZARD (a finding about the policy, exit 0) or FAIL with the replay token
// and the one-line repro; then the digest.
void print_run_verdict(const sim::RunResult& r, const std::string& token) {
  if (r.verdict == sim::RunVerdict::kPass) {
    // A documented policy hazard (docs/simulation.md "Policy hazards") is a finding about the
    // policy, not a failure of the system under test: it exits 0 but never says PASS.
    if (r.hazard.empty()) {
      fmt::print("RESULT PASS\n");
    } else {
      fmt::print("RESULT HAZARD {}\n", r.hazard);
    }
  } else {
    fmt::print("RESULT FAIL ({}) {}\n", sim::verdict_name(r.verdict), r.failure);
    fmt::print("REPLAY={}\nREPRO: rcsim replay {}\n", token, token);
  }
  fmt::print("DIGEST={:016x}\n", r.digest);
}

}  // namespace

int exit_code_of(sim::RunVerdict v) {
  switch (v) {
    case sim::RunVerdict::kPass: return kExitPass;
    case sim::RunVerdict::kCorrectness: return kExitCheckFailed;
    case sim::RunVerdict::kLiveness: return kExitLiveness;
    case sim::RunVerdict::kCrash: return kExitCrash;
  }
  return kExitCrash;
}

// Runs one config, printing the header, a live progress line on a terminal (stderr), and the
// summary; writes the run report when `report_path` is not empty (checked by the caller).
int run_and_report(const sim::SimConfig& cfg, const std::string& report_path) {
  const std::string token = sim::encode_token(cfg, kBuildId);
  fmt::print("SEED={}\n{}\n", cfg.seed, cfg.describe());
  std::fflush(stdout);
  arm_crash_report(token);
  sim::RunHooks hooks;
  const bool tty = isatty(STDERR_FILENO) != 0;
  if (tty) {
    hooks.on_step = [](int64_t step, int64_t total, const sim::RunResult& r) {
      fmt::print(stderr, "\rstep {}/{} calls={} fallbacks={} faults={}", step, total, r.calls,
                 r.fallbacks, r.faults.injection_count_total());
      std::fflush(stderr);
    };
  }
  const sim::RunResult r = sim::run_simulation(cfg, hooks);
  if (tty) fmt::print(stderr, "\n");
  const std::vector<std::string> never_fired = print_run_summary(cfg, r);
  print_run_verdict(r, token);
  std::fflush(stdout);
  std::signal(SIGABRT, SIG_DFL);
  if (!report_path.empty()) {
    write_json_file("--report", report_path, run_report(cfg, r, token, never_fired));
  }
  return exit_code_of(r.verdict);
}

}  // namespace rcsim::cli
