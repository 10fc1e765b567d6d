// `rcsim run | replay | shrink | campaign`: the simulated serving engine from the command line.
// Every verb prints its seed and configuration first and, on failure, a replay token plus a
// one-line repro command; exit codes are those of commands.h. Every option value is parsed by
// cli_args.h before any run starts, and output paths are checked before any work.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "core/check.h"
#include "core/limits.h"
#include "fault_injection/cli/campaign_summary.h"
#include "fault_injection/cli/cli_args.h"
#include "fault_injection/cli/commands.h"
#include "fault_injection/plan/fault_plan.h"
#include "fault_injection/sim/campaign.h"
#include "fault_injection/sim/engine.h"
#include "fault_injection/sim/sim_config.h"
#include "fault_injection/sim/sim_device.h"

#ifndef RCSIM_GIT_COMMIT
#define RCSIM_GIT_COMMIT "unknown"
#endif

namespace rcsim::cli {
namespace {

constexpr std::string_view kBuildId = RCSIM_GIT_COMMIT;
constexpr double kBudgetSecondsMax = 7 * 24 * 3600.0;
constexpr int64_t kShardsMax = 1 << 20;
constexpr int64_t kShrinkRunsMax = 100000;
constexpr int64_t kProgressSecondsMax = 3600;
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

int exit_code_of(sim::RunVerdict v) {
  switch (v) {
    case sim::RunVerdict::kPass: return kExitPass;
    case sim::RunVerdict::kCorrectness: return kExitCheckFailed;
    case sim::RunVerdict::kLiveness: return kExitLiveness;
    case sim::RunVerdict::kCrash: return kExitCrash;
  }
  return kExitCrash;
}

// "pass", "hazard" (passed, but left a documented policy hazard behind), or the failing verdict.
std::string run_outcome(const sim::RunResult& r) {
  if (r.verdict == sim::RunVerdict::kPass) return r.hazard.empty() ? "pass" : "hazard";
  return std::string(sim::verdict_name(r.verdict));
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

template <typename T, typename NameOf>
std::string names_of(std::span<const T> values, NameOf name_of) {
  std::vector<std::string> names;
  for (const T& v : values) names.emplace_back(name_of(v));
  return fmt::format("{}", fmt::join(names, " | "));
}

std::string model_names() {
  return names_of(sim::all_models(), [](const sim::ModelShape& m) { return m.name; });
}
std::string policy_names() {
  return names_of(all_policies(), [](FallbackPolicy p) { return policy_name(p); });
}
std::string mutant_names() {
  return "none | " + names_of(all_mutants(), [](Mutant m) { return mutant_name(m); }) + " | " +
         names_of(device_only_mutants(), [](Mutant m) { return mutant_name(m); }) +
         " (gpu backend only) | " +
         names_of(campaign_only_mutants(), [](Mutant m) { return mutant_name(m); }) +
         " (caught by a campaign's determinism recheck only)";
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
  std::fflush(stdout);
  std::signal(SIGABRT, SIG_DFL);
  if (!report_path.empty()) {
    write_json_file("--report", report_path, run_report(cfg, r, token, never_fired));
  }
  return exit_code_of(r.verdict);
}

// Option values as typed; parsed (and rejected) by overrides_of before anything runs.
struct RunOptions {
  std::string seed = "1";
  std::string steps;
  std::string layers;
  std::string model;
  std::string policy;
  std::string faults;
  std::string backend = "cpu";
  std::string mutant;
  std::string kv_cache;
  std::string sliding_window;
  std::string graph_mode;
  std::string report;
};

enum class Verb { kRun, kCampaign };

void add_common_options(CLI::App* cmd, RunOptions& o, Verb verb) {
  const bool campaign = verb == Verb::kCampaign;
  cmd->add_option("--steps", o.steps,
                  fmt::format("safety-phase steps, 0..{} (default: from the seed, {})",
                              limits::kSimStepsMax - sim::SimConfig{}.liveness_steps,
                              campaign ? "12-24" : "32-48"))
      ->type_name("INT");
  cmd->add_option("--layers", o.layers,
                  fmt::format("attention layers, each its own dispatcher, 1..{} (default: from "
                              "the seed, {})",
                              limits::kLayersMax, campaign ? "1-2" : "2-3"))
      ->type_name("INT");
  cmd->add_option("--model", o.model,
                  fmt::format("{} (default: {})", model_names(),
                              campaign ? "qwen3-235b-tp8 for 3 seeds in 4, else qwen3-0.6b"
                                       : "qwen3-0.6b"))
      ->type_name("MODEL");
  cmd->add_option("--policy", o.policy,
                  fmt::format("{} (default: {})", policy_names(),
                              campaign ? "a hash of the seed, so every shard runs every policy"
                                       : "drawn from the seed"))
      ->type_name("POLICY");
  cmd->add_option("--faults", o.faults,
                  fmt::format("swarm | swarm-dense | none | a fault spec SITE:KIND(PARAMS);... "
                              "(docs/fault-spec.md), sites {}, kinds {} (default: $RCSIM_FAULTS, "
                              "else swarm)",
                              names_of(all_fault_sites(), [](FaultSite x) { return fault_site_name(x); }),
                              names_of(all_fault_kinds(), [](FaultKind x) { return fault_kind_name(x); })))
      ->type_name("SPEC");
  cmd->add_option("--backend", o.backend,
                  "cpu | gpu: where the system under test's kernels, caches, backups and "
                  "restores run; the oracle stays on the CPU (default: cpu; gpu needs a build "
                  "with the GPU backend)");
  cmd->add_option("--mutant", o.mutant,
                  fmt::format("a deliberately broken variant (core/mutants.h): {} (default: "
                              "$RCSIM_MUTANT, else none)",
                              mutant_names()))
      ->type_name("MUTANT");
  cmd->add_option("--kv-cache", o.kv_cache,
                  "auto | fp8_e4m3fn | fp8_e4m3fnuz (default: from the seed: auto for 1 seed in "
                  "2, else one of the fp8 flavours)")
      ->type_name("DTYPE");
  cmd->add_option("--sliding-window", o.sliding_window,
                  fmt::format("-1 (none) or a window of 0..{} tokens; a window makes branch B "
                              "eligible (use_triton_attn) (default: -1)",
                              limits::kMaxPositionMax))
      ->type_name("INT");
  cmd->add_option("--graph-mode", o.graph_mode,
                  fmt::format("eager | capture-replay: decode steps run as CUDA graphs per "
                              "bucket (default: {})",
                              campaign ? "a hash of the seed, half the seeds each" : "eager"))
      ->type_name("MODE");
}

// The fault spec from --faults or RCSIM_FAULTS (the flag wins), validated here with the
// parser's message, prefixed by where it came from.
std::optional<std::string> faults_of(const RunOptions& o) {
  std::string source = "--faults";
  std::optional<std::string> spec;
  if (!o.faults.empty()) {
    spec = o.faults;
  } else if (auto env = env_value("RCSIM_FAULTS")) {
    spec = std::move(env);
    source = "RCSIM_FAULTS";
  }
  if (!spec || *spec == "swarm" || *spec == "swarm-dense" || *spec == "none") return spec;
  try {
    (void)parse_fault_plan(*spec);
  } catch (const InvalidInput& e) {
    throw InvalidInput(fmt::format("{}: {}", source, e.what()));
  }
  return spec;
}

std::optional<Mutant> mutant_of(const RunOptions& o) {
  std::string source = "--mutant";
  std::optional<std::string> name;
  if (!o.mutant.empty()) {
    name = o.mutant;
  } else if (auto env = env_value("RCSIM_MUTANT")) {
    name = std::move(env);
    source = "RCSIM_MUTANT";
  }
  if (!name) return std::nullopt;
  const auto m = mutant_from_name(*name);
  RCSIM_REQUIRE(m.has_value(), "{}: unknown mutant '{}' (expected {})", source, *name,
                mutant_names());
  return m;
}

sim::SimOverrides overrides_of(const RunOptions& o) {
  sim::SimOverrides ov;
  if (!o.steps.empty()) {
    ov.steps = parse_int_arg("--steps", o.steps, 0,
                             limits::kSimStepsMax - sim::SimConfig{}.liveness_steps);
  }
  if (!o.layers.empty()) ov.layers = parse_int_arg("--layers", o.layers, 1, limits::kLayersMax);
  if (!o.model.empty()) {
    RCSIM_REQUIRE(sim::model_by_name(o.model) != nullptr, "--model: unknown model '{}' (expected {})",
                  o.model, model_names());
    ov.model = o.model;
  }
  if (!o.policy.empty()) {
    const auto p = policy_from_name(o.policy);
    RCSIM_REQUIRE(p.has_value(), "--policy: unknown policy '{}' (expected {})", o.policy,
                  policy_names());
    ov.policy = *p;
  }
  ov.faults = faults_of(o);
  RCSIM_REQUIRE(o.backend == "cpu" || o.backend == "gpu", "--backend: unknown backend '{}' "
                "(expected cpu | gpu)", o.backend);
  RCSIM_REQUIRE(o.backend == "cpu" || sim::gpu_backend_built(),
                "--backend gpu: this binary was built without the GPU backend (configure with "
                "-DRCSIM_HOST_ONLY=OFF, e.g. the cuda or hip-amd preset)");
  ov.backend = o.backend;
  if (auto m = mutant_of(o)) ov.mutant = *m;
  if (!o.kv_cache.empty()) {
    const auto kv = kv_cache_dtype_from_name(o.kv_cache);
    RCSIM_REQUIRE(kv.has_value(), "--kv-cache: unknown cache dtype '{}' (expected auto | "
                  "fp8_e4m3fn | fp8_e4m3fnuz)", o.kv_cache);
    ov.kv_cache_dtype = *kv;
  }
  if (!o.sliding_window.empty()) {
    ov.sliding_window =
        parse_int_arg("--sliding-window", o.sliding_window, -1, limits::kMaxPositionMax);
  }
  if (!o.graph_mode.empty()) {
    const auto g = sim::graph_mode_from_name(o.graph_mode);
    RCSIM_REQUIRE(g.has_value(), "--graph-mode: unknown mode '{}' (expected eager | capture-replay)",
                  o.graph_mode);
    ov.graph_mode = *g;
  }
  return ov;
}

std::string format_seconds(double seconds) {
  const auto s = static_cast<int64_t>(std::llround(std::max(0.0, seconds)));
  if (s < 120) return fmt::format("{}s", s);
  if (s < 7200) return fmt::format("{}m{:02}s", s / 60, s % 60);
  return fmt::format("{}h{:02}m", s / 3600, s % 3600 / 60);
}

// Campaign progress on stderr: a live line on a terminal; off one (CI logs), a line every
// `every_seconds` (0: only the last) and always one at the end.
class CampaignProgressPrinter {
 public:
  explicit CampaignProgressPrinter(int64_t every_seconds)
      : tty_(isatty(STDERR_FILENO) != 0), every_seconds_(every_seconds),
        start_(std::chrono::steady_clock::now()) {}

  void update(int64_t done, const sim::CampaignResult& r) {
    const double t = seconds();
    if (tty_) {
      fmt::print(stderr, "\r{}", line(done, r, t));
      std::fflush(stderr);
    } else if (every_seconds_ > 0 && t - last_print_ >= static_cast<double>(every_seconds_)) {
      fmt::print(stderr, "{}\n", line(done, r, t));
      last_print_ = t;
    }
  }
  void finish(const sim::CampaignResult& r) {
    fmt::print(stderr, "{}{} (done)\n", tty_ ? "\r" : "", line(r.runs, r, seconds()));
  }

 private:
  double seconds() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }
  static std::string line(int64_t done, const sim::CampaignResult& r, double t) {
    const int64_t total = r.seeds_planned;
    const double eta = done > 0 ? t / static_cast<double>(done) * static_cast<double>(total - done) : 0;
    return fmt::format("progress: {}/{} seeds, {} faults, {} failed, {} elapsed, ETA {}", done,
                       total, r.faults.injection_count_total(), r.failed, format_seconds(t),
                       done > 0 ? format_seconds(eta) : "?");
  }
  bool tty_;
  int64_t every_seconds_;
  std::chrono::steady_clock::time_point start_;
  double last_print_ = 0;
};

// `campaign --devices all|N`: one shard per GPU, each on its own thread with its device
// selected, then merged exactly as `rcsim merge` merges shard reports (issue 16's
// merge_campaign_reports), so the result equals the unsharded campaign's.
int campaign_on_devices(const sim::CampaignOptions& base, const std::string& devices_arg,
                        const std::string& shard_arg, const std::string& report) {
  RCSIM_REQUIRE(base.overrides.backend.value_or("cpu") == "gpu",
                "--devices shards a campaign over GPUs: it needs --backend gpu");
  RCSIM_REQUIRE(shard_arg == "0/1", "--devices makes its own shards: it cannot be combined with "
                "--shard (run one --devices campaign per host and rcsim merge their reports)");
  const int visible = sim::gpu_device_count();
  RCSIM_REQUIRE(visible >= 1, "--devices: no GPU is visible");
  const int64_t n = devices_arg == "all"
                        ? visible
                        : parse_int_arg("--devices", devices_arg, 1, visible);
  // The mutant switch is process-wide (core/mutants.h): concurrent runs would race on it.
  RCSIM_REQUIRE(n == 1 || !base.overrides.mutant || *base.overrides.mutant == Mutant::kNone,
                "--devices {} with a mutant: the mutant switch is process-wide; use --devices 1", n);
  std::vector<std::string> shard_reports;
  for (int64_t d = 0; d < n; ++d) {
    shard_reports.push_back(report.empty() ? "" : fmt::format("{}.device{}.json", report, d));
    if (!report.empty()) check_output_file("--report", shard_reports.back());
  }
  std::vector<sim::CampaignOptions> opts(static_cast<std::size_t>(n), base);
  std::vector<sim::CampaignResult> results(static_cast<std::size_t>(n));
  std::vector<std::string> errors(static_cast<std::size_t>(n));
  std::vector<std::thread> threads;
  for (int64_t d = 0; d < n; ++d) {
    const auto i = static_cast<std::size_t>(d);
    opts[i].shard_index = d;
    opts[i].shard_count = n;
    opts[i].coverage_gate = false;  // applied to the union below
    threads.emplace_back([&opts, &results, &errors, i] {
      try {
        sim::select_gpu_device(static_cast<int>(i));
        results[i] = sim::run_campaign(opts[i]);
      } catch (const std::exception& e) {
        errors[i] = e.what();
      }
    });
  }
  for (std::thread& t : threads) t.join();
  std::vector<nlohmann::json> reports;
  std::vector<std::string> names;
  for (int64_t d = 0; d < n; ++d) {
    const auto i = static_cast<std::size_t>(d);
    RCSIM_REQUIRE(errors[i].empty(), "GPU {}: {}", d, errors[i]);
    const sim::CampaignResult& r = results[i];
    fmt::print("DEVICE {} shard {}/{}: {} runs, {} failed, {:.1f}s, {} faults, digest {:016x}\n",
               d, d, n, r.runs, r.failed, r.elapsed_seconds, r.faults.injection_count_total(),
               r.digest);
    reports.push_back(sim::campaign_report(opts[i], r));
    names.push_back(fmt::format("device {}", d));
    if (!report.empty()) {
      write_json_file("--report", shard_reports[i], campaign_report_with_outcome(opts[i], r));
    }
  }
  const sim::MergedCampaign merged = sim::merge_campaign_reports(reports, names, base.coverage_gate);
  fmt::print("DEVICES {} (shards merged: the unsharded campaign's runs, faults and digest)\n", n);
  if (!report.empty()) {
    nlohmann::json j = campaign_report_with_outcome(merged.options, merged.result);
    j["options"] = reports.front().at("options");
    j["budget_seconds"] = reports.front().at("budget_seconds");
    write_json_file("--report", report, j);
  }
  return print_campaign_summary(merged.options, merged.result);
}

// ---- run ----
void register_run(CLI::App& app, int& exit_code) {
  auto* run = app.add_subcommand("run", "one simulated serving run (safety phase, then liveness)");
  // Option storage lives as long as the process (the app's callbacks point into it); static
  // storage instead of `new`, so LeakSanitizer sees no leak.
  static RunOptions run_opts_storage;
  auto* run_opts = &run_opts_storage;
  run->add_option("--seed", run_opts->seed,
                  "the one seed every random choice derives from, 0..2^64-1, decimal or 0x-hex "
                  "(default: 1)")
      ->type_name("SEED");
  add_common_options(run, *run_opts, Verb::kRun);
  run->add_option("--report", run_opts->report,
                  "write the run as JSON here (docs/schemas/run-report.schema.json; default: none)");
  run->footer(std::string(exit_code_help()));
  run->callback([run_opts, &exit_code] {
    run_verb("run", exit_code, [run_opts] {
      const uint64_t seed = parse_u64_arg("--seed", run_opts->seed);
      const sim::SimOverrides ov = overrides_of(*run_opts);
      if (!run_opts->report.empty()) check_output_file("--report", run_opts->report);
      const sim::SimConfig cfg = sim::sample_config(seed, ov);
      return run_and_report(cfg, run_opts->report);
    });
  });
}

// ---- replay ----
void register_replay(CLI::App& app, int& exit_code) {
  auto* replay = app.add_subcommand("replay", "re-run exactly the run a replay token names");
  static std::string replay_token_storage;
  static std::string replay_report_storage;
  auto* replay_token = &replay_token_storage;
  auto* replay_report = &replay_report_storage;
  replay->add_option("token", *replay_token, "REPLAY= token printed by a failing run")->required();
  replay->add_option("--report", *replay_report, "write the run as JSON here (default: none)");
  replay->footer(std::string(exit_code_help()));
  replay->callback([replay_token, replay_report, &exit_code] {
    run_verb("replay", exit_code, [replay_token, replay_report] {
      const sim::DecodedToken t = sim::decode_token(*replay_token);
      if (!replay_report->empty()) check_output_file("--report", *replay_report);
      if (t.build_id != kBuildId) {
        fmt::print("NOTE token from build {}, this is build {}: results may differ\n", t.build_id,
                   kBuildId);
      }
      return run_and_report(t.cfg, *replay_report);
    });
  });
}

// ---- shrink ----
// Shrinks the run a token names and prints what was cut, the smallest failing run and its repro.
int shrink_and_report(const std::string& token_text, const std::string& runs_text) {
  const int64_t max_runs = parse_int_arg("--max-runs", runs_text, 1, kShrinkRunsMax);
  const sim::DecodedToken t = sim::decode_token(token_text);
  fmt::print("SEED={}\n{}\n", t.cfg.seed, t.cfg.describe());
  const sim::ShrinkResult s = sim::shrink_config(t.cfg, max_runs);
  const std::string token = sim::encode_token(s.smallest, kBuildId);
  fmt::print("SHRUNK after {} runs: steps {}->{} layers {}->{} requests {}->{} fault rules "
             "{}->{} faulty_calls_max {}\n",
             s.runs, t.cfg.steps, s.smallest.steps, t.cfg.layers, s.smallest.layers,
             t.cfg.requests, s.smallest.requests, parse_fault_plan(t.cfg.faults).rules.size(),
             parse_fault_plan(s.smallest.faults).rules.size(), s.smallest.faulty_calls_max);
  fmt::print("{}\n", s.smallest.describe());
  fmt::print("RESULT FAIL ({}) {}\n", sim::verdict_name(s.result.verdict), s.result.failure);
  fmt::print("REPLAY={}\nREPRO: rcsim replay {}\n", token, token);
  return exit_code_of(s.result.verdict);
}

void register_shrink(CLI::App& app, int& exit_code) {
  auto* shrink = app.add_subcommand("shrink", "reduce a failing run while it fails the same way");
  static std::string shrink_token_storage;
  static std::string shrink_runs_storage = "200";
  auto* shrink_token = &shrink_token_storage;
  auto* shrink_runs = &shrink_runs_storage;
  shrink->add_option("token", *shrink_token, "REPLAY= token of a failing run")->required();
  shrink->add_option("--max-runs", *shrink_runs,
                     fmt::format("candidate runs at most, 1..{} (default: 200)", kShrinkRunsMax))
      ->type_name("INT");
  shrink->footer(std::string(exit_code_help()));
  shrink->callback([shrink_token, shrink_runs, &exit_code] {
    run_verb("shrink", exit_code, [shrink_token, shrink_runs] {
      return shrink_and_report(*shrink_token, *shrink_runs);
    });
  });
}

// ---- campaign ----
// The campaign's option values as typed; parsed by campaign_plan_of before anything runs.
struct CampaignCli {
  std::string seeds = "0:99";
  std::string budget = "60s";
  std::string shard = "0/1";
  std::string progress_seconds = "10";
  RunOptions run;
  std::string devices;
  bool cross_backend = false;
  bool coverage_gate = false;
  bool no_coverage_gate = false;
};

void add_campaign_options(CLI::App* campaign, CampaignCli* c) {
  campaign->add_option("--seeds", c->seeds,
                       "inclusive seed range A:B, 0 <= A <= B < 2^64 (default: 0:99)")
      ->type_name("A:B");
  campaign->add_option("--budget", c->budget,
                       "wall-clock budget like 90s, 5m or 1h, at most 7 days; no run starts after "
                       "it, and a campaign cut short exits 6 (default: 60s)")
      ->type_name("DURATION");
  campaign->add_option("--shard", c->shard,
                       fmt::format("i/n: run the seeds with (seed - A) % n == i, n <= {}; "
                                   "merge the reports with rcsim merge (default: 0/1)",
                                   kShardsMax))
      ->type_name("I/N");
  campaign->add_option("--report", c->run.report,
                       "write the JSON report here (docs/schemas/campaign-report.schema.json; "
                       "default: none)");
  campaign->add_option("--progress-seconds", c->progress_seconds,
                       fmt::format("off a terminal, a progress line on stderr every N seconds, "
                                   "0..{} (0: only at the end; default: 10)",
                                   kProgressSecondsMax))
      ->type_name("INT");
  auto* gate_on = campaign->add_flag(
      "--coverage-gate", c->coverage_gate,
      "apply the coverage gate even to one shard (default: on without --shard, off with it)");
  campaign
      ->add_flag("--no-coverage-gate", c->no_coverage_gate,
                 "do not fail when a fault site, kind or fallback reason was never reached")
      ->excludes(gate_on);
  campaign->add_flag("--cross-backend", c->cross_backend,
                     "with --backend gpu: run every seed on the CPU too; a seed whose digest or "
                     "verdict differs fails as 'cross-backend' (exit 8) with a replay token per "
                     "side (default: off)");
  campaign->add_option("--devices", c->devices,
                       "all | N: with --backend gpu, one shard per GPU (a thread per device), "
                       "merged as rcsim merge does; per-device reports go beside --report as "
                       "REPORT.deviceD.json (default: the current GPU only, unsharded)");
  add_common_options(campaign, c->run, Verb::kCampaign);
}

// Every campaign option parsed and checked (exit 2 on the first bad one), nothing run yet.
struct CampaignPlan {
  sim::CampaignOptions options;
  int64_t progress_every_seconds = 0;
};
CampaignPlan campaign_plan_of(const CampaignCli& c) {
  CampaignPlan plan;
  sim::CampaignOptions& o = plan.options;
  const SeedRange seeds = parse_seed_range("--seeds", c.seeds, sim::kCampaignSeedsMax);
  o.seed_first = seeds.first;
  o.seed_last = seeds.last;
  const Shard shard = parse_shard("--shard", c.shard, kShardsMax);
  o.shard_index = shard.index;
  o.shard_count = shard.count;
  o.budget_seconds = parse_duration_seconds("--budget", c.budget, kBudgetSecondsMax);
  plan.progress_every_seconds =
      parse_int_arg("--progress-seconds", c.progress_seconds, 0, kProgressSecondsMax);
  o.coverage_gate = c.coverage_gate || (!c.no_coverage_gate && o.shard_count == 1);
  o.overrides = overrides_of(c.run);
  o.cross_backend = c.cross_backend;
  RCSIM_REQUIRE(!o.cross_backend || o.overrides.backend.value_or("cpu") == "gpu",
                "--cross-backend compares the GPU backend with the CPU: it needs --backend gpu");
  o.overrides.campaign_shape = true;
  if (!o.overrides.faults) o.overrides.faults = "swarm";
  o.build_id = std::string(kBuildId);
  return plan;
}

// The campaign's first line: what runs, so that a log shows it before any result.
void print_campaign_header(const sim::CampaignOptions& o) {
  fmt::print("CAMPAIGN seeds={}:{} shard={}/{} budget={:g}s build={} faults={} mutant={} "
             "coverage_gate={}\n",
             o.seed_first, o.seed_last, o.shard_index, o.shard_count, o.budget_seconds,
             o.build_id, *o.overrides.faults,
             mutant_name(o.overrides.mutant ? *o.overrides.mutant : Mutant::kNone),
             o.coverage_gate ? "on" : "off");
  std::fflush(stdout);
}

int run_campaign_verb(const CampaignCli& c) {
  const CampaignPlan plan = campaign_plan_of(c);
  const sim::CampaignOptions& o = plan.options;
  if (!c.run.report.empty()) check_output_file("--report", c.run.report);
  print_campaign_header(o);
  if (!c.devices.empty()) return campaign_on_devices(o, c.devices, c.shard, c.run.report);
  CampaignProgressPrinter printer(plan.progress_every_seconds);
  const sim::CampaignResult r =
      sim::run_campaign(o, [&printer](int64_t done, const sim::CampaignResult& so_far) {
        printer.update(done, so_far);
      });
  printer.finish(r);
  if (!c.run.report.empty()) {
    write_json_file("--report", c.run.report, campaign_report_with_outcome(o, r));
  }
  return print_campaign_summary(o, r);
}

void register_campaign(CLI::App& app, int& exit_code) {
  auto* campaign = app.add_subcommand("campaign", "many seeds, swarm faults, every policy");
  static CampaignCli campaign_storage;
  auto* c = &campaign_storage;
  add_campaign_options(campaign, c);
  campaign->footer(std::string(exit_code_help()));
  campaign->callback([c, &exit_code] {
    run_verb("campaign", exit_code, [c] { return run_campaign_verb(*c); });
  });
}

}  // namespace

void register_sim_commands(CLI::App& app, int& exit_code) {
  register_run(app, exit_code);
  register_replay(app, exit_code);
  register_shrink(app, exit_code);
  register_campaign(app, exit_code);
}

}  // namespace rcsim::cli
