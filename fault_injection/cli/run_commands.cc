// `rcsim run | replay | shrink`: one simulated serving run from a seed, the run a replay token
// names, and a failing run reduced while it fails the same way. Each prints its seed and
// configuration first and, on failure, a replay token plus a one-line repro command; exit codes
// are those of commands.h. Option values are parsed before any run starts and output paths checked
// before any work.
#include <cstdint>
#include <string>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "fault_injection/cli/cli_args.h"
#include "fault_injection/cli/commands.h"
#include "fault_injection/cli/run_and_report.h"
#include "fault_injection/cli/sim_options.h"
#include "fault_injection/plan/fault_plan.h"
#include "fault_injection/sim/campaign.h"
#include "fault_injection/sim/sim_config.h"

namespace rcsim::cli {
namespace {

constexpr int64_t kShrinkRunsMax = 100000;

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
  add_common_options(run, *run_opts, SimVerb::kRun);
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

}  // namespace

void register_run_commands(CLI::App& app, int& exit_code) {
  register_run(app, exit_code);
  register_replay(app, exit_code);
  register_shrink(app, exit_code);
}

}  // namespace rcsim::cli
