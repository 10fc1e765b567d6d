// `rcsim campaign --devices all|N`: one shard per GPU, each on its own thread with its device
// selected, then merged exactly as `rcsim merge` merges shard reports (merge_campaign_reports),
// so the result equals the unsharded campaign's.
#pragma once

#include <string>

#include "fault_injection/sim/campaign.h"

namespace rcsim::cli {

// Runs the campaign `base` sharded over the GPUs `devices_arg` names ("all" or a count), writes
// per-device reports beside `report` (REPORT.deviceD.json) and the merged one to `report` when it
// is not empty, prints the merged summary and returns its exit code. `shard_arg` must be "0/1".
int campaign_on_devices(const sim::CampaignOptions& base, const std::string& devices_arg,
                        const std::string& shard_arg, const std::string& report);

}  // namespace rcsim::cli
