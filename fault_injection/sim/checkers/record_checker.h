// Checks one call's DispatchRecord against what the policy promises: the branch after a failure
// (never B on a layer with q_norm), policy skips only for the policy's reason, failures only from
// injected faults fired in this call, the backup the policy promises, the restore after a failure.
#pragma once

#include <cstdint>

#include "core/dispatch/rope_cache_dispatcher.h"
#include "fault_injection/sim/checkers/check_failure.h"

namespace rcsim::sim {

// `injected`: faults fired during this call; `fused_disabled`: the process's sticky state now.
void check_record(const CheckContext& ctx, const DispatchRecord& r, int64_t injected,
                  bool fused_disabled);

}  // namespace rcsim::sim
