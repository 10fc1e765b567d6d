// `rcsim run | replay | shrink | campaign`: the simulated serving engine from the command line.
// Every verb prints its seed and configuration first and, on failure, a replay token plus a
// one-line repro command; exit codes are those of commands.h.
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>

#include <fmt/format.h>

#include "core/check.h"
#include "fault_injection/cli/commands.h"
#include "fault_injection/plan/fault_plan.h"
#include "fault_injection/sim/campaign.h"
#include "fault_injection/sim/engine.h"
#include "fault_injection/sim/sim_config.h"

#ifndef RCSIM_GIT_COMMIT
#define RCSIM_GIT_COMMIT "unknown"
#endif

namespace rcsim::cli {
namespace {

constexpr std::string_view kBuildId = RCSIM_GIT_COMMIT;

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

int exit_code_of(sim::RunVerdict v) {
  switch (v) {
    case sim::RunVerdict::kPass: return kExitPass;
    case sim::RunVerdict::kCorrectness: return kExitCorrectness;
    case sim::RunVerdict::kLiveness: return kExitLiveness;
    case sim::RunVerdict::kCrash: return kExitCrash;
  }
  return kExitCrash;
}

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

// Runs one config, printing the header, a progress line on a terminal, and the summary.
int run_and_report(const sim::SimConfig& cfg) {
  const std::string token = sim::encode_token(cfg, kBuildId);
  std::printf("SEED=%llu\n%s\n", static_cast<unsigned long long>(cfg.seed), cfg.describe().c_str());
  std::fflush(stdout);
  arm_crash_report(token);
  sim::RunHooks hooks;
  const bool tty = isatty(STDOUT_FILENO) != 0;
  if (tty) {
    hooks.on_step = [](int64_t step, int64_t total, const sim::RunResult& r) {
      std::printf("\rstep %lld/%lld calls=%lld fallbacks=%lld faults=%lld", static_cast<long long>(step),
                  static_cast<long long>(total), static_cast<long long>(r.calls),
                  static_cast<long long>(r.fallbacks),
                  static_cast<long long>(r.faults.injection_count_total()));
      std::fflush(stdout);
    };
  }
  const sim::RunResult r = sim::run_simulation(cfg, hooks);
  if (tty) std::printf("\n");
  std::printf(
      "SUMMARY steps=%lld aborted=%lld late_tainted=%lld restarts=%lld calls=%lld fused=%lld "
      "fallbacks=%lld restores=%lld surfaced_errors=%lld checks_passed=%lld log_lines=%lld\n",
      static_cast<long long>(r.steps_run), static_cast<long long>(r.steps_aborted),
      static_cast<long long>(r.steps_late_tainted), static_cast<long long>(r.process_restarts),
      static_cast<long long>(r.calls), static_cast<long long>(r.calls_fused),
      static_cast<long long>(r.fallbacks), static_cast<long long>(r.restores),
      static_cast<long long>(r.surfaced_errors), static_cast<long long>(r.checks_passed),
      static_cast<long long>(r.log_lines));
  std::printf("FAULTS_INJECTED total=%lld%s\n",
              static_cast<long long>(r.faults.injection_count_total()), faults_by_kind(r.faults).c_str());
  std::printf("FALLBACKS_BY_CLASS%s\n", fallbacks_by_class(r.fallbacks_by_class).c_str());
  // Issue 10 item 3: a missing module re-attempting its build on every call.
  std::printf("REBUILD policy=%s fused_attempts=%lld attempts=%lld simulated_cost_us=%lld "
              "log_lines=%lld max_attempts_per_process=%lld (fused %lld) processes=%lld\n",
              std::string(policy_name(cfg.policy)).c_str(),
              static_cast<long long>(r.fused_attempts),
              static_cast<long long>(r.faults.rebuild_attempts),
              static_cast<long long>(r.faults.rebuild_cost_us),
              static_cast<long long>(r.rebuild_log_lines),
              static_cast<long long>(r.rebuild_attempts_max_per_process),
              static_cast<long long>(r.fused_rebuild_attempts_max_per_process),
              static_cast<long long>(r.processes));
  // Issue 10 item 5: CUDA-graph capture/replay (zeros in eager mode).
  std::printf("GRAPH mode=%s policy=%s captured=%lld capture_failures=%lld replays=%lld "
              "replayed_fallback_layers=%lld replayed_backup_copies=%lld "
              "replayed_backup_bytes=%lld replayed_restores=%lld\n",
              std::string(sim::graph_mode_name(cfg.graph_mode)).c_str(),
              std::string(policy_name(cfg.policy)).c_str(),
              static_cast<long long>(r.graphs_captured),
              static_cast<long long>(r.graph_capture_failures),
              static_cast<long long>(r.graph_replays),
              static_cast<long long>(r.graph_replayed_fallback_layers),
              static_cast<long long>(r.graph_replay_backup_copies),
              static_cast<long long>(r.graph_replay_backup_bytes),
              static_cast<long long>(r.graph_replay_restore_copies));
  std::printf("MIXED_HISTORY prefill_fused_decode_fallback=%lld prefill_fallback_decode_fused=%lld "
              "shadow_cache_positions_checked=%lld differing=%lld\n",
              static_cast<long long>(r.mixed_prefill_fused_decode_fallback),
              static_cast<long long>(r.mixed_prefill_fallback_decode_fused),
              static_cast<long long>(r.shadow_cache_positions_checked),
              static_cast<long long>(r.shadow_cache_positions_differing));
  std::printf("ATTENTION reads=%lld differing_from_fused_shadow=%lld max_abs_diff=%.6g\n",
              static_cast<long long>(r.attention_reads),
              static_cast<long long>(r.attention_reads_differing), r.attention_max_abs_diff);
  std::printf("LIVENESS steps_to_fused=%lld%s\n", static_cast<long long>(r.liveness_steps_to_fused),
              r.liveness_exempt ? " (exempt: the policy never retries after 'unavailable')" : "");
  if (!r.hazard.empty()) std::printf("HAZARD %s\n", r.hazard.c_str());
  if (r.verdict == sim::RunVerdict::kPass) {
    std::printf("RESULT PASS\n");
  } else {
    std::printf("RESULT FAIL (%s) %s\n", std::string(sim::verdict_name(r.verdict)).c_str(),
                r.failure.c_str());
    std::printf("REPLAY=%s\nREPRO: rcsim replay %s\n", token.c_str(), token.c_str());
  }
  std::printf("DIGEST=%016llx\n", static_cast<unsigned long long>(r.digest));
  std::fflush(stdout);
  std::signal(SIGABRT, SIG_DFL);
  return exit_code_of(r.verdict);
}

struct RunOptions {
  uint64_t seed = 1;
  int64_t steps = -1;
  int64_t layers = -1;
  std::string model;
  std::string policy;
  std::string faults;
  std::string backend = "cpu";
  std::string mutant;
  std::string kv_cache;
  int64_t sliding_window = -2;
  std::string graph_mode;
};

void add_common_options(CLI::App* cmd, RunOptions& o) {
  cmd->add_option("--steps", o.steps, "safety-phase steps (sampled from the seed if omitted)");
  cmd->add_option("--layers", o.layers, "attention layers, each its own dispatcher");
  cmd->add_option("--model", o.model, "qwen3-0.6b | qwen3-8b | qwen3-32b | qwen3-235b-tp8");
  cmd->add_option("--policy", o.policy,
                  "pr279 | pr279-model-order | sticky | qk-slice-backup | out-of-place | prevalidate");
  cmd->add_option("--faults", o.faults,
                  "swarm | swarm-dense | none | a fault spec (docs/fault-spec.md)");
  cmd->add_option("--backend", o.backend, "cpu (the only backend of a host build)");
  cmd->add_option("--mutant", o.mutant, "a deliberately broken variant (core/mutants.h)");
  cmd->add_option("--kv-cache", o.kv_cache, "auto | fp8_e4m3fn | fp8_e4m3fnuz");
  cmd->add_option("--sliding-window", o.sliding_window,
                  "give layers a sliding window (use_triton_attn: branch B becomes eligible)");
  cmd->add_option("--graph-mode", o.graph_mode,
                  "eager (default) | capture-replay: decode steps run as CUDA graphs per bucket");
}

sim::SimOverrides overrides_of(const RunOptions& o) {
  sim::SimOverrides ov;
  if (o.steps >= 0) ov.steps = o.steps;
  if (o.layers >= 0) ov.layers = o.layers;
  if (!o.model.empty()) ov.model = o.model;
  if (!o.policy.empty()) {
    const auto p = policy_from_name(o.policy);
    RCSIM_REQUIRE(p.has_value(), "unknown --policy '{}'", o.policy);
    ov.policy = *p;
  }
  if (!o.faults.empty()) ov.faults = o.faults;
  ov.backend = o.backend;
  if (!o.mutant.empty()) {
    const auto m = mutant_from_name(o.mutant);
    RCSIM_REQUIRE(m.has_value(), "unknown --mutant '{}'", o.mutant);
    ov.mutant = *m;
  }
  if (!o.kv_cache.empty()) {
    const auto kv = kv_cache_dtype_from_name(o.kv_cache);
    RCSIM_REQUIRE(kv.has_value(), "unknown --kv-cache '{}'", o.kv_cache);
    ov.kv_cache_dtype = *kv;
  }
  if (o.sliding_window >= -1) ov.sliding_window = o.sliding_window;
  if (!o.graph_mode.empty()) {
    const auto g = sim::graph_mode_from_name(o.graph_mode);
    RCSIM_REQUIRE(g.has_value(), "unknown --graph-mode '{}' (eager | capture-replay)", o.graph_mode);
    ov.graph_mode = *g;
  }
  return ov;
}

// "5m", "90s", "2h", "30" (seconds).
double parse_budget(const std::string& s) {
  RCSIM_REQUIRE(!s.empty(), "--budget is empty");
  double mult = 1;
  std::string num = s;
  const char unit = s.back();
  if (unit == 's' || unit == 'm' || unit == 'h') {
    mult = unit == 's' ? 1 : unit == 'm' ? 60 : 3600;
    num = s.substr(0, s.size() - 1);
  }
  std::size_t used = 0;
  double v = 0;
  try {
    v = std::stod(num, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  RCSIM_REQUIRE(used == num.size() && v > 0, "--budget '{}' is not like 90s, 5m or 1h", s);
  return v * mult;
}

}  // namespace

void register_sim_commands(CLI::App& app, int& exit_code) {
  // ---- run ----
  auto* run = app.add_subcommand("run", "one simulated serving run (safety phase, then liveness)");
  // Option storage lives as long as the process (the app's callbacks point into it); static
  // storage instead of `new`, so LeakSanitizer sees no leak.
  static RunOptions run_opts_storage;
  auto* run_opts = &run_opts_storage;
  run->add_option("--seed", run_opts->seed, "the one seed every random choice derives from");
  add_common_options(run, *run_opts);
  run->callback([run_opts, &exit_code] {
    try {
      const sim::SimConfig cfg = sim::sample_config(run_opts->seed, overrides_of(*run_opts));
      exit_code = run_and_report(cfg);
    } catch (const InvalidInput& e) {
      std::fprintf(stderr, "rcsim run: %s\n", e.what());
      exit_code = kExitUsage;
    }
  });

  // ---- replay ----
  auto* replay = app.add_subcommand("replay", "re-run exactly the run a replay token names");
  static std::string replay_token_storage;
  auto* replay_token = &replay_token_storage;
  replay->add_option("token", *replay_token, "REPLAY= token printed by a failing run")->required();
  replay->callback([replay_token, &exit_code] {
    try {
      const sim::DecodedToken t = sim::decode_token(*replay_token);
      if (t.build_id != kBuildId) {
        std::printf("NOTE token from build %s, this is build %s: results may differ\n",
                    t.build_id.c_str(), std::string(kBuildId).c_str());
      }
      exit_code = run_and_report(t.cfg);
    } catch (const InvalidInput& e) {
      std::fprintf(stderr, "rcsim replay: %s\n", e.what());
      exit_code = kExitUsage;
    }
  });

  // ---- shrink ----
  auto* shrink = app.add_subcommand("shrink", "reduce a failing run while it fails the same way");
  static std::string shrink_token_storage;
  auto* shrink_token = &shrink_token_storage;
  static int64_t shrink_runs_storage = 200;
  auto* shrink_runs = &shrink_runs_storage;
  shrink->add_option("token", *shrink_token, "REPLAY= token of a failing run")->required();
  shrink->add_option("--max-runs", *shrink_runs, "candidate runs at most");
  shrink->callback([shrink_token, shrink_runs, &exit_code] {
    try {
      const sim::DecodedToken t = sim::decode_token(*shrink_token);
      std::printf("SEED=%llu\n%s\n", static_cast<unsigned long long>(t.cfg.seed),
                  t.cfg.describe().c_str());
      const sim::ShrinkResult s = sim::shrink_config(t.cfg, *shrink_runs);
      const std::string token = sim::encode_token(s.smallest, kBuildId);
      std::printf("SHRUNK after %lld runs: steps %lld->%lld layers %lld->%lld requests %lld->%lld "
                  "fault rules %zu->%zu faulty_calls_max %lld\n",
                  static_cast<long long>(s.runs), static_cast<long long>(t.cfg.steps),
                  static_cast<long long>(s.smallest.steps), static_cast<long long>(t.cfg.layers),
                  static_cast<long long>(s.smallest.layers), static_cast<long long>(t.cfg.requests),
                  static_cast<long long>(s.smallest.requests), parse_fault_plan(t.cfg.faults).rules.size(),
                  parse_fault_plan(s.smallest.faults).rules.size(),
                  static_cast<long long>(s.smallest.faulty_calls_max));
      std::printf("%s\n", s.smallest.describe().c_str());
      std::printf("RESULT FAIL (%s) %s\n", std::string(sim::verdict_name(s.result.verdict)).c_str(),
                  s.result.failure.c_str());
      std::printf("REPLAY=%s\nREPRO: rcsim replay %s\n", token.c_str(), token.c_str());
      exit_code = exit_code_of(s.result.verdict);
    } catch (const InvalidInput& e) {
      std::fprintf(stderr, "rcsim shrink: %s\n", e.what());
      exit_code = kExitUsage;
    }
  });

  // ---- campaign ----
  auto* campaign = app.add_subcommand("campaign", "many seeds, swarm faults, every policy");
  struct CampaignCli {
    std::string seeds = "0:99";
    std::string budget = "60s";
    std::string shard = "0/1";
    std::string report;
    RunOptions run;
    bool no_coverage_gate = false;
  };
  static CampaignCli campaign_storage;
  auto* c = &campaign_storage;
  campaign->add_option("--seeds", c->seeds, "inclusive seed range A:B");
  campaign->add_option("--budget", c->budget, "wall-clock budget (90s, 5m, 1h); no run starts after");
  campaign->add_option("--shard", c->shard, "i/n: run the seeds with (seed - A) % n == i");
  campaign->add_option("--report", c->report, "write a JSON report here");
  campaign->add_flag("--no-coverage-gate", c->no_coverage_gate,
                     "do not fail when a fault site, kind or fallback reason was never reached");
  add_common_options(campaign, c->run);
  campaign->callback([c, &exit_code] {
    try {
      sim::CampaignOptions o;
      const auto colon = c->seeds.find(':');
      RCSIM_REQUIRE(colon != std::string::npos, "--seeds must be A:B, got '{}'", c->seeds);
      o.seed_first = std::stoull(c->seeds.substr(0, colon));
      o.seed_last = std::stoull(c->seeds.substr(colon + 1));
      const auto slash = c->shard.find('/');
      RCSIM_REQUIRE(slash != std::string::npos, "--shard must be i/n, got '{}'", c->shard);
      o.shard_index = std::stoll(c->shard.substr(0, slash));
      o.shard_count = std::stoll(c->shard.substr(slash + 1));
      o.budget_seconds = parse_budget(c->budget);
      o.coverage_gate = !c->no_coverage_gate;
      o.overrides = overrides_of(c->run);
      o.overrides.campaign_shape = true;
      if (!o.overrides.faults) o.overrides.faults = "swarm";
      o.build_id = std::string(kBuildId);
      std::printf("CAMPAIGN seeds=%s shard=%s budget=%.0fs build=%s mutant=%s\n", c->seeds.c_str(),
                  c->shard.c_str(), o.budget_seconds, o.build_id.c_str(),
                  c->run.mutant.empty() ? "none" : c->run.mutant.c_str());
      std::fflush(stdout);
      const bool tty = isatty(STDOUT_FILENO) != 0;
      sim::CampaignProgress progress;
      if (tty) {
        progress = [](int64_t runs, const sim::CampaignResult& r) {
          std::printf("\rruns=%lld failed=%lld faults=%lld", static_cast<long long>(runs),
                      static_cast<long long>(r.failed),
                      static_cast<long long>(r.faults.injection_count_total()));
          std::fflush(stdout);
        };
      }
      const sim::CampaignResult r = sim::run_campaign(o, progress);
      if (tty) std::printf("\n");
      const nlohmann::json report = sim::campaign_report(o, r);
      if (!c->report.empty()) {
        std::ofstream out(c->report);
        RCSIM_REQUIRE(out.good(), "cannot write --report {}", c->report);
        out << report.dump(2) << "\n";
      }
      for (const sim::CampaignFailure& f : r.failures) {
        std::printf("FAIL seed=%llu (%s) %s\n  REPLAY=%s\n  REPRO: rcsim replay %s\n",
                    static_cast<unsigned long long>(f.seed),
                    f.nondeterministic ? "nondeterminism"
                                       : std::string(sim::verdict_name(f.verdict)).c_str(),
                    f.message.c_str(), f.token.c_str(), f.token.c_str());
      }
      std::printf("RUNS %lld (seeds up to %llu%s) in %.1fs, %lld rechecked for determinism\n",
                  static_cast<long long>(r.runs), static_cast<unsigned long long>(r.last_seed_run),
                  r.budget_exhausted ? ", budget exhausted" : "", r.elapsed_seconds,
                  static_cast<long long>(r.rechecked));
      std::printf("STEPS %lld CALLS %lld FALLBACKS %lld RESTORES %lld SURFACED %lld ABORTED_STEPS "
                  "%lld RESTARTS %lld CHECKS_PASSED %lld\n",
                  static_cast<long long>(r.steps), static_cast<long long>(r.calls),
                  static_cast<long long>(r.fallbacks), static_cast<long long>(r.restores),
                  static_cast<long long>(r.surfaced_errors), static_cast<long long>(r.steps_aborted),
                  static_cast<long long>(r.process_restarts), static_cast<long long>(r.checks_passed));
      std::printf("FAULTS_INJECTED total=%lld%s\n",
                  static_cast<long long>(r.faults.injection_count_total()),
                  faults_by_kind(r.faults).c_str());
      std::printf("FALLBACKS_BY_CLASS%s\n", fallbacks_by_class(r.fallbacks_by_class).c_str());
      std::printf("REBUILD attempts=%lld simulated_cost_us=%lld\n",
                  static_cast<long long>(r.faults.rebuild_attempts),
                  static_cast<long long>(r.faults.rebuild_cost_us));
      // Per policy, side by side (issue 10 items 3 and 5).
      for (FallbackPolicy p : all_policies()) {
        const sim::PolicyTotals& t = r.by_policy[static_cast<std::size_t>(p)];
        if (t.runs == 0) continue;
        std::printf("POLICY %-18s runs=%lld processes=%lld calls=%lld fused_attempts=%lld "
                    "rebuild_attempts=%lld rebuild_cost_us=%lld rebuild_log_lines=%lld "
                    "rebuild_max_per_process=%lld (fused %lld) graphs_captured=%lld capture_failures=%lld "
                    "replays=%lld replayed_backup_copies=%lld replayed_backup_bytes=%lld\n",
                    std::string(policy_name(p)).c_str(), static_cast<long long>(t.runs),
                    static_cast<long long>(t.processes), static_cast<long long>(t.calls),
                    static_cast<long long>(t.fused_attempts),
                    static_cast<long long>(t.rebuild_attempts),
                    static_cast<long long>(t.rebuild_cost_us),
                    static_cast<long long>(t.rebuild_log_lines),
                    static_cast<long long>(t.rebuild_attempts_max_per_process),
                    static_cast<long long>(t.fused_rebuild_attempts_max_per_process),
                    static_cast<long long>(t.graphs_captured),
                    static_cast<long long>(t.graph_capture_failures),
                    static_cast<long long>(t.graph_replays),
                    static_cast<long long>(t.graph_replay_backup_copies),
                    static_cast<long long>(t.graph_replay_backup_bytes));
      }
      std::printf("HAZARDS %lld (runs that showed a documented policy weakness; see report)\n",
                  static_cast<long long>(r.hazards));
      std::printf("PR_ORDER_ATTENTION reads_differing=%lld max_abs_diff=%.6g\n",
                  static_cast<long long>(r.attention_reads_differing), r.attention_max_abs_diff);
      for (const std::string& m : r.coverage_missing) std::printf("COVERAGE MISSING %s\n", m.c_str());
      std::printf("DIGEST=%016llx\n", static_cast<unsigned long long>(r.digest));
      std::printf("%lld passed, %lld failed\n", static_cast<long long>(r.passed),
                  static_cast<long long>(r.failed));
      std::fflush(stdout);
      exit_code = kExitPass;
      for (const sim::CampaignFailure& f : r.failures) {
        const int code = f.nondeterministic ? kExitNondeterminism : exit_code_of(f.verdict);
        exit_code = std::max(exit_code, code);
      }
      if (exit_code == kExitPass && !r.coverage_missing.empty()) exit_code = kExitCorrectness;
    } catch (const InvalidInput& e) {
      std::fprintf(stderr, "rcsim campaign: %s\n", e.what());
      exit_code = kExitUsage;
    } catch (const std::logic_error& e) {
      std::fprintf(stderr, "rcsim campaign: bad number: %s\n", e.what());
      exit_code = kExitUsage;
    }
  });
}

}  // namespace rcsim::cli
