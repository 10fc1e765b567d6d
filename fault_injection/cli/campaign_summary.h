// What `rcsim campaign` and `rcsim merge` print after the runs, and the exit code a campaign
// result maps to. Shared so a merged report reads exactly like an unsharded campaign's.
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "fault_injection/sim/campaign.h"

namespace rcsim::cli {

// The exit code of a campaign: the most severe outcome (commands.h gives the order).
int campaign_exit_code(const sim::CampaignResult& r);
// The last line: "N passed, N failed" plus what else decided the exit code, e.g.
// "30 passed, 0 failed; gate: missing 3 (kind late, ...)" or "...; incomplete: 412 of 2000 seeds".
std::string campaign_last_line(const sim::CampaignResult& r);
// Prints failures, totals, per-policy lines, hazards, coverage, rules never fired, the digest and
// the last line to stdout; returns campaign_exit_code(r).
int print_campaign_summary(const sim::CampaignOptions& o, const sim::CampaignResult& r);
// The report of campaign_report() plus the outcome (exit code and last line) the CLI decided.
nlohmann::json campaign_report_with_outcome(const sim::CampaignOptions& o,
                                            const sim::CampaignResult& r);
// The tails of the FAULTS_INJECTED and FALLBACKS_BY_CLASS lines (" kind=n ..." and
// " class=n ..."), shared so that `rcsim run` and `rcsim campaign` print them alike.
std::string faults_by_kind(const FaultStats& s);
std::string fallbacks_by_class(const std::array<int64_t, 5>& counts);
// Writes a JSON document (pretty-printed) or throws InvalidInput naming `what`.
void write_json_file(const std::string& what, const std::string& path, const nlohmann::json& j);

}  // namespace rcsim::cli
