// `rcsim campaign`: many seeds, swarm faults, every policy. Its own options (seed range, budget,
// shard, coverage gate, cross-backend, devices) plus the ones it shares with `rcsim run`
// (sim_options.h), all parsed before the first run; then the runs, a progress line
// (campaign_progress.h) and the summary and exit code shared with `rcsim merge`
// (campaign_summary.h). --devices hands the campaign to campaign_on_devices.h.
#include <cstdint>
#include <cstdio>
#include <string>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "core/check.h"
#include "core/mutants.h"
#include "fault_injection/cli/campaign_on_devices.h"
#include "fault_injection/cli/campaign_progress.h"
#include "fault_injection/cli/campaign_summary.h"
#include "fault_injection/cli/cli_args.h"
#include "fault_injection/cli/commands.h"
#include "fault_injection/cli/sim_options.h"
#include "fault_injection/sim/campaign.h"

namespace rcsim::cli {
namespace {

constexpr double kBudgetSecondsMax = 7 * 24 * 3600.0;
constexpr int64_t kShardsMax = 1 << 20;
constexpr int64_t kProgressSecondsMax = 3600;

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
  add_common_options(campaign, c->run, SimVerb::kCampaign);
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

}  // namespace

void register_campaign_command(CLI::App& app, int& exit_code) {
  auto* campaign = app.add_subcommand("campaign", "many seeds, swarm faults, every policy");
  static CampaignCli campaign_storage;
  auto* c = &campaign_storage;
  add_campaign_options(campaign, c);
  campaign->footer(std::string(exit_code_help()));
  campaign->callback([c, &exit_code] {
    run_verb("campaign", exit_code, [c] { return run_campaign_verb(*c); });
  });
}

}  // namespace rcsim::cli
