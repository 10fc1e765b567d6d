// Issue 10 item 5's property, after every committed step: under a model-order fallback with an
// "auto" cache, the cached K/V of every live request must be bit-identical to the all-fused
// shadow's, however its prefill and decode tokens were split between the fused path and the
// fallback. (fp8 differs by the quantisation arithmetic; a sliding window makes the fallback
// write plain V: those are skipped.) The PR order differs by design: its differing positions are
// counted (measured, not failed).
#pragma once

#include <span>

#include "core/kernel_interfaces.h"
#include "fault_injection/sim/checkers/check_failure.h"
#include "fault_injection/sim/workload.h"

namespace rcsim::sim {

// One layer's host-readable caches: the system under test's and the shadow's.
struct LayerCachePair {
  KvCacheViews sut, shadow;
};
// ctx.layer is ignored: `layers` holds every layer, in order.
void check_live_cache_vs_shadow(const CheckContext& ctx, std::span<const LayerCachePair> layers,
                                std::span<const Request> requests);

}  // namespace rcsim::sim
