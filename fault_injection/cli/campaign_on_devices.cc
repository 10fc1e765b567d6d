// Shards a campaign over the visible GPUs and merges the shards (campaign_on_devices.h).
#include "fault_injection/cli/campaign_on_devices.h"

#include <cstdint>
#include <exception>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/check.h"
#include "core/mutants.h"
#include "fault_injection/cli/campaign_summary.h"
#include "fault_injection/cli/cli_args.h"
#include "fault_injection/sim/sim_device.h"

namespace rcsim::cli {
namespace {

// The number of devices to shard over, after checking the options allow it (InvalidInput).
int64_t device_count_of(const sim::CampaignOptions& base, const std::string& devices_arg,
                        const std::string& shard_arg) {
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
  return n;
}

// What each device's shard gave: its result, or the error that stopped it (empty when none).
struct ShardOutcomes {
  std::vector<sim::CampaignResult> results;
  std::vector<std::string> errors;
};

// One shard per device, `opts[d]` on GPU d on its own thread; returns once every thread joined.
ShardOutcomes run_shards(std::vector<sim::CampaignOptions>& opts) {
  const std::size_t n = opts.size();
  ShardOutcomes out{std::vector<sim::CampaignResult>(n), std::vector<std::string>(n)};
  std::vector<std::thread> threads;
  for (std::size_t i = 0; i < n; ++i) {
    opts[i].shard_index = static_cast<int64_t>(i);
    opts[i].shard_count = static_cast<int64_t>(n);
    opts[i].coverage_gate = false;  // applied to the union below
    threads.emplace_back([&opts, &out, i] {
      try {
        sim::select_gpu_device(static_cast<int>(i));
        out.results[i] = sim::run_campaign(opts[i]);
      } catch (const std::exception& e) {
        out.errors[i] = e.what();
      }
    });
  }
  for (std::thread& t : threads) t.join();
  return out;
}

}  // namespace

int campaign_on_devices(const sim::CampaignOptions& base, const std::string& devices_arg,
                        const std::string& shard_arg, const std::string& report) {
  const int64_t n = device_count_of(base, devices_arg, shard_arg);
  std::vector<std::string> shard_reports;
  for (int64_t d = 0; d < n; ++d) {
    shard_reports.push_back(report.empty() ? "" : fmt::format("{}.device{}.json", report, d));
    if (!report.empty()) check_output_file("--report", shard_reports.back());
  }
  std::vector<sim::CampaignOptions> opts(static_cast<std::size_t>(n), base);
  const ShardOutcomes shards = run_shards(opts);
  std::vector<nlohmann::json> reports;
  std::vector<std::string> names;
  for (int64_t d = 0; d < n; ++d) {
    const auto i = static_cast<std::size_t>(d);
    RCSIM_REQUIRE(shards.errors[i].empty(), "GPU {}: {}", d, shards.errors[i]);
    const sim::CampaignResult& r = shards.results[i];
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

}  // namespace rcsim::cli
