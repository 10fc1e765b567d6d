// What one simulation run is fed, derived from its SimConfig alone: the attention shape its
// layers use and the requests its scheduler serves. Apart from the engine so the derivation
// (extra pages and requests for the liveness phase) reads in one place.
#pragma once

#include <vector>

#include "core/attention_config.h"
#include "fault_injection/sim/sim_config.h"
#include "fault_injection/sim/workload.h"

namespace rcsim::sim {

// Requests that arrive when the faults stop, so the liveness phase has work to finish.
inline constexpr int64_t kLivenessRequests = 2;

// The model's heads and head dim with the run's cache dtype, page size and positions; the page
// pool grows by what the liveness requests can need. Validated before it is returned.
AttentionConfig run_attention(const SimConfig& cfg);

// The seed's workload, then kLivenessRequests more arriving at the first liveness step.
std::vector<Request> run_requests(const SimConfig& cfg);

}  // namespace rcsim::sim
