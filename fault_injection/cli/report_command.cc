// `rcsim report REPORT.json --html OUT.html`: a campaign report (from `rcsim campaign --report` or
// `rcsim merge --report`) drawn as one self-contained HTML page (inline CSS, no script, no
// network): the outcome line, the policy x fault-kind outcome matrix, the per-policy costs
// (backup bytes replayed, rebuilds, replays) with bars, and the coverage table (injections per
// site and kind, fallbacks per reason, what the gate found missing). Every matrix cell carries its
// numbers as data-* attributes, so a test can check the drawing against the JSON.
#include <algorithm>
#include <fstream>
#include <string>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/check.h"
#include "fault_injection/cli/cli_args.h"
#include "fault_injection/cli/commands.h"
#include "fault_injection/sim/campaign.h"

namespace rcsim::cli {
namespace {

using json = nlohmann::json;

std::string escape_html(std::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

int64_t int_at(const json& j, const char* key) {
  RCSIM_REQUIRE(j.contains(key) && j.at(key).is_number_integer(), "report: missing integer '{}'",
                key);
  return j.at(key).get<int64_t>();
}

// The cell's class: what a reader should see first.
std::string_view cell_class(int64_t runs, int64_t hazards, int64_t failed) {
  if (runs == 0) return "none";
  if (failed > 0) return "fail";
  if (hazards > 0) return "hazard";
  return "pass";
}

std::string matrix_html(const json& report) {
  const json& matrix = report.at("outcome_matrix");
  std::string html = "<table class=\"matrix\" id=\"outcome-matrix\"><tr><th>policy \\ fault kind</th>";
  for (FaultKind k : all_fault_kinds()) html += fmt::format("<th>{}</th>", fault_kind_name(k));
  html += "</tr>\n";
  for (FallbackPolicy p : all_policies()) {
    const std::string policy(policy_name(p));
    RCSIM_REQUIRE(matrix.contains(policy), "report: outcome_matrix has no row '{}'", policy);
    html += fmt::format("<tr><th>{}</th>", escape_html(policy));
    for (FaultKind k : all_fault_kinds()) {
      const std::string kind(fault_kind_name(k));
      RCSIM_REQUIRE(matrix.at(policy).contains(kind), "report: outcome_matrix[{}] has no '{}'",
                    policy, kind);
      const json& c = matrix.at(policy).at(kind);
      const int64_t runs = int_at(c, "runs"), hazards = int_at(c, "hazards"),
                    failed = int_at(c, "failed"), passed = int_at(c, "passed"),
                    injections = int_at(c, "injections");
      const std::string text =
          runs == 0 ? "&ndash;"
                    : fmt::format("{}/{}{}{}<small>{} inj.</small>", passed, runs,
                                  hazards > 0 ? fmt::format("<br>{} hazard{}", hazards,
                                                            hazards > 1 ? "s" : "")
                                              : "",
                                  failed > 0 ? fmt::format("<br>{} FAIL", failed) : "",
                                  injections);
      html += fmt::format(
          "<td class=\"{}\" data-policy=\"{}\" data-kind=\"{}\" data-runs=\"{}\" "
          "data-passed=\"{}\" data-hazards=\"{}\" data-failed=\"{}\" data-injections=\"{}\">{}</td>",
          cell_class(runs, hazards, failed), escape_html(policy), escape_html(kind), runs, passed,
          hazards, failed, injections, text);
    }
    html += "</tr>\n";
  }
  return html + "</table>\n";
}

std::string costs_html(const json& report) {
  struct Column {
    const char* key;
    const char* title;
  };
  constexpr Column kColumns[] = {{"runs", "runs"},
                                 {"graph_replay_backup_bytes", "backup bytes replayed"},
                                 {"graph_replay_backup_copies", "backup copies replayed"},
                                 {"rebuild_attempts", "rebuild attempts"},
                                 {"rebuild_simulated_cost_us", "rebuild cost (us)"},
                                 {"fused_rebuild_attempts_max_per_process", "fused rebuilds / process (max)"},
                                 {"graph_replays", "graph replays"},
                                 {"graph_capture_failures", "capture failures"}};
  const json& by_policy = report.at("by_policy");
  std::string html = "<table class=\"costs\" id=\"policy-costs\"><tr><th>policy</th>";
  for (const Column& col : kColumns) html += fmt::format("<th>{}</th>", col.title);
  html += "</tr>\n";
  for (FallbackPolicy p : all_policies()) {
    const std::string policy(policy_name(p));
    RCSIM_REQUIRE(by_policy.contains(policy), "report: by_policy has no '{}'", policy);
    html += fmt::format("<tr><th>{}</th>", escape_html(policy));
    for (const Column& col : kColumns) {
      int64_t max = 1;
      for (FallbackPolicy q : all_policies()) {
        max = std::max(max, int_at(by_policy.at(std::string(policy_name(q))), col.key));
      }
      const int64_t v = int_at(by_policy.at(policy), col.key);
      html += fmt::format(
          "<td data-policy=\"{}\" data-cost=\"{}\" data-value=\"{}\"><div class=\"bar\" "
          "style=\"width:{}%\"></div>{}</td>",
          escape_html(policy), col.key, v, v * 100 / max, v);
    }
    html += "</tr>\n";
  }
  return html + "</table>\n";
}

std::string coverage_html(const json& report) {
  const json& by_site_kind = report.at("faults_by_site_kind");
  std::string html =
      "<div class=\"scroll\"><table class=\"coverage\" id=\"coverage\"><tr><th>site \\ kind</th>";
  for (FaultKind k : all_fault_kinds()) html += fmt::format("<th>{}</th>", fault_kind_name(k));
  html += "<th>calls</th></tr>\n";
  for (FaultSite s : all_fault_sites()) {
    const std::string site(fault_site_name(s));
    html += fmt::format("<tr><th>{}</th>", escape_html(site));
    for (FaultKind k : all_fault_kinds()) {
      const std::string key = fmt::format("{}:{}", site, fault_kind_name(k));
      const int64_t n = by_site_kind.contains(key) ? by_site_kind.at(key).get<int64_t>() : 0;
      html += fmt::format("<td class=\"{}\" data-site=\"{}\" data-kind=\"{}\" data-injections=\"{}\">{}</td>",
                          !fault_kind_valid_at(s, k) ? "na" : n > 0 ? "pass" : "zero",
                          escape_html(site), fault_kind_name(k), n,
                          fault_kind_valid_at(s, k) ? std::to_string(n) : "");
    }
    html += fmt::format("<td>{}</td></tr>\n", int_at(report.at("calls_by_site"), site.c_str()));
  }
  html += "</table></div>\n<p>Fallbacks by reason:";
  for (const auto& [reason, n] : report.at("fallbacks_by_class").items()) {
    html += fmt::format(" <b>{}</b> {}", escape_html(reason), n.get<int64_t>());
  }
  html += "</p>\n";
  const json& missing = report.at("coverage_missing");
  if (missing.empty()) {
    html += fmt::format("<p class=\"ok\">Coverage gate: {}.</p>\n",
                        report.value("coverage_gate", true) ? "met" : "not applied");
  } else {
    html += "<p class=\"bad\">Coverage gate missed:</p><ul class=\"missing\">";
    for (const json& m : missing) html += fmt::format("<li>{}</li>", escape_html(m.get<std::string>()));
    html += "</ul>\n";
  }
  return html;
}

std::string report_html(const json& report, const std::string& source) {
  RCSIM_REQUIRE(report.is_object() && report.value("schema", "") == "rcsim-campaign-report" &&
                    report.value("schema_version", 0) == sim::kCampaignReportSchemaVersion,
                "{}: not an rcsim campaign report of schema version {}", source,
                sim::kCampaignReportSchemaVersion);
  const std::string last_line =
      report.contains("outcome") ? report.at("outcome").at("last_line").get<std::string>()
                                 : fmt::format("{} passed, {} failed", int_at(report, "passed"),
                                               int_at(report, "failed"));
  std::string failures;
  for (const json& f : report.at("failures")) {
    failures += fmt::format("<li>seed {} ({}): {}<br><code>rcsim replay {}</code></li>",
                            f.at("seed").get<uint64_t>(), escape_html(f.at("verdict").get<std::string>()),
                            escape_html(f.at("message").get<std::string>()),
                            escape_html(f.at("token").get<std::string>()));
  }
  return fmt::format(
      R"(<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>rcsim campaign {digest}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; margin: 1em 0; font-size: 13px; }}
th, td {{ border: 1px solid #bbb; padding: 4px 6px; text-align: right; position: relative; }}
th {{ background: #f0f0f0; }}
.scroll {{ overflow-x: auto; max-width: 100%; }}
th {{ white-space: nowrap; }}
table.matrix td, table.matrix tr:first-child th {{ text-align: center; min-width: 4.5em; }}
.pass {{ background: #d9f2d9; }} .hazard {{ background: #ffe4a8; }}
.fail {{ background: #f7b4b4; font-weight: bold; }} .none {{ background: #e8e8e8; color: #777; }}
.zero {{ background: #fff; color: #999; }}
.na {{ background: repeating-linear-gradient(45deg, #ececec, #ececec 4px,
  #d6d6d6 4px, #d6d6d6 6px); }}
td small {{ display: block; color: #666; }}
.bar {{ position: absolute; left: 0; bottom: 0; height: 4px; background: #4a7fd4; }}
.ok {{ color: #1a7f1a; }} .bad {{ color: #b00; font-weight: bold; }}
li code {{ overflow-wrap: anywhere; }} ul.missing {{ columns: 3; }}
.legend span {{ display: inline-block; border: 1px solid #bbb; padding: 1px 8px;
  margin-right: 6px; }}
.legend .barkey {{ display: inline-block; width: 40px; height: 4px; background: #4a7fd4;
  vertical-align: middle; border: 0; padding: 0; }}
</style></head><body>
<h1>rcsim campaign report</h1>
<p>Seeds {first}:{last} ({runs} runs of {planned} planned), build <code>{build}</code>, faults
<code>{faults}</code>, digest <code>{digest}</code>, {elapsed:.1f} s. Source: <code>{source}</code>.</p>
<p class="{line_class}" id="last-line">{last_line}</p>
<h2>Policy &times; fault kind: outcome of the runs in which the kind fired</h2>
<p>Cell: passed/runs, hazards (a documented policy weakness, e.g. a scribble the policy cannot
undo), failures, injections.</p>
<p class="legend"><span class="pass">all passed</span><span class="hazard">hazards</span><span
class="fail">failures</span><span class="none">&ndash; never fired</span></p>
<div class="scroll">{matrix}</div>
<h2>Per-policy costs</h2>
<p class="legend"><span class="barkey"></span> the value as a share of the largest in its column
(summed over the policy's runs; "max" columns: the largest in one process).</p>
<div class="scroll">{costs}</div>
<h2>Coverage: injections per site and kind</h2>
<p class="legend"><span class="pass">reached</span><span class="zero">0 never reached</span><span
class="na">&nbsp;&nbsp;&nbsp;</span> the kind does not apply to the site; calls: every call of the
site, faulty or not.</p>
{coverage}
<h2>Failures</h2>
<ul>{failures}</ul>
</body></html>
)",
      fmt::arg("digest", escape_html(report.at("digest").get<std::string>())),
      fmt::arg("first", report.at("seeds").at("first").get<uint64_t>()),
      fmt::arg("last", report.at("seeds").at("last").get<uint64_t>()),
      fmt::arg("runs", int_at(report, "runs")), fmt::arg("planned", int_at(report, "seeds_planned")),
      fmt::arg("build", escape_html(report.at("build_id").get<std::string>())),
      fmt::arg("faults", escape_html(report.at("options").at("faults").get<std::string>())),
      fmt::arg("elapsed", report.at("elapsed_seconds").get<double>()),
      fmt::arg("source", escape_html(source)),
      fmt::arg("line_class", report.contains("outcome") &&
                                     report.at("outcome").at("exit_code").get<int>() != 0
                                 ? "bad"
                                 : "ok"),
      fmt::arg("last_line", escape_html(last_line)), fmt::arg("matrix", matrix_html(report)),
      fmt::arg("costs", costs_html(report)), fmt::arg("coverage", coverage_html(report)),
      fmt::arg("failures", failures.empty() ? "<li>none</li>" : failures));
}

}  // namespace

void register_report_command(CLI::App& app, int& exit_code) {
  auto* cmd = app.add_subcommand(
      "report", "draw a campaign report as one self-contained HTML page (matrix, costs, coverage)");
  struct ReportCli {
    std::string in;
    std::string html;
  };
  static ReportCli storage;
  auto* r = &storage;
  cmd->add_option("report", r->in, "campaign report JSON (rcsim campaign|merge --report)")
      ->required();
  cmd->add_option("--html", r->html, "write the HTML page here")->required();
  cmd->footer(std::string(exit_code_help()));
  cmd->callback([r, &exit_code] {
    run_verb("report", exit_code, [r] {
      check_output_file("--html", r->html);
      std::ifstream in(r->in);
      RCSIM_REQUIRE(in.good(), "{}: cannot open", r->in);
      json report;
      try {
        report = json::parse(in);
      } catch (const json::exception& e) {
        throw InvalidInput(fmt::format("{}: not JSON: {}", r->in, e.what()));
      }
      const std::string html = report_html(report, r->in);
      std::ofstream out(r->html, std::ios::trunc);
      RCSIM_REQUIRE(out.good(), "--html: cannot write '{}'", r->html);
      out << html;
      out.flush();
      RCSIM_REQUIRE(out.good(), "--html: writing '{}' failed", r->html);
      fmt::print("report: {} -> {}\n", r->in, r->html);
      return kExitPass;
    });
  });
}

}  // namespace rcsim::cli
