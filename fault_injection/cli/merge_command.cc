// `rcsim merge REPORT... [--report OUT]`: the JSON reports of the shards of one campaign
// (`rcsim campaign --shard i/n --report ...`) combined into the report the unsharded campaign
// writes: the same runs, fault counts, per-policy totals, failures and digest (the campaign digest
// is an order-independent sum, so shard digests add up). The coverage gate, off by default on a
// single shard, is applied to the union here. Prints the same summary as `rcsim campaign` and
// exits with the same codes (a missing shard makes the merge incomplete: exit 6).
#include <fstream>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "core/check.h"
#include "fault_injection/cli/campaign_summary.h"
#include "fault_injection/cli/cli_args.h"
#include "fault_injection/cli/commands.h"
#include "fault_injection/sim/campaign.h"

namespace rcsim::cli {
namespace {

constexpr std::size_t kReportBytesMax = std::size_t{256} << 20;
constexpr std::size_t kReportsMax = 1 << 20;

nlohmann::json read_report(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  RCSIM_REQUIRE(in.good(), "{}: cannot open", path);
  in.seekg(0, std::ios::end);
  const auto size = static_cast<std::size_t>(in.tellg());
  RCSIM_REQUIRE(size <= kReportBytesMax, "{}: larger than {} bytes", path, kReportBytesMax);
  in.seekg(0);
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw InvalidInput(fmt::format("{}: not JSON: {}", path, e.what()));
  }
}

}  // namespace

void register_merge_command(CLI::App& app, int& exit_code) {
  auto* merge = app.add_subcommand(
      "merge", "merge the JSON reports of a campaign's shards; coverage gate on the union");
  struct MergeCli {
    std::vector<std::string> reports;
    std::string out;
    bool no_coverage_gate = false;
  };
  static MergeCli storage;
  auto* m = &storage;
  merge->add_option("reports", m->reports, "shard reports (rcsim campaign --shard i/n --report)")
      ->required();
  merge->add_option("--report", m->out, "write the merged report here (default: none)");
  merge->add_flag("--no-coverage-gate", m->no_coverage_gate,
                  "do not apply the coverage gate to the union (default: applied)");
  merge->footer(std::string(exit_code_help()));
  merge->callback([m, &exit_code] {
    run_verb("merge", exit_code, [m] {
      RCSIM_REQUIRE(m->reports.size() <= kReportsMax, "merge: more than {} reports", kReportsMax);
      if (!m->out.empty()) check_output_file("--report", m->out);
      std::vector<nlohmann::json> reports;
      for (const std::string& path : m->reports) reports.push_back(read_report(path));
      const sim::MergedCampaign merged =
          sim::merge_campaign_reports(reports, m->reports, !m->no_coverage_gate);
      const sim::CampaignOptions& o = merged.options;
      fmt::print("MERGE {} reports: seeds={}:{} shards {} of {} build={} coverage_gate={}\n",
                 reports.size(), o.seed_first, o.seed_last, fmt::join(merged.shards_merged, ","),
                 reports.front().at("shard").at("count").get<int64_t>(), o.build_id,
                 o.coverage_gate ? "on" : "off");
      if (!m->out.empty()) {
        nlohmann::json j = campaign_report_with_outcome(o, merged.result);
        // The merged report is the unsharded campaign's; its options are the shards' own.
        j["options"] = reports.front().at("options");
        j["budget_seconds"] = reports.front().at("budget_seconds");
        write_json_file("--report", m->out, j);
      }
      return print_campaign_summary(merged.options, merged.result);
    });
  });
}

}  // namespace rcsim::cli
