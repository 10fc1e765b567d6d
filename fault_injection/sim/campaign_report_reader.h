// A campaign report read back into the CampaignResult that wrote it (the inverse of
// campaign_report, for what `rcsim merge` needs). Kept apart from the merge so the reading, with
// its field-by-field checks, can be tested and changed on its own.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "fault_injection/sim/campaign.h"

namespace rcsim::sim {

// The counts, faults, per-policy totals, outcome matrix, hazards, failures and digest of one
// report. `name` (usually the file name) labels errors: a missing or mistyped field, an unknown
// site, kind, class, policy or verdict, or a digest that is not 16 hex digits throws
// InvalidInput naming the report and the field.
CampaignResult result_from_report(const nlohmann::json& report, const std::string& name);

}  // namespace rcsim::sim
