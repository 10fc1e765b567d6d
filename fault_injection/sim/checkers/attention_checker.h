// An attention read over each scheduled request's cached K/V with the step's q, three ways: the
// system under test's cache (read by the reader under test) bit-exact against the expected
// cache's (catches reader/writer layout disagreement), and the expected read against the
// fault-free all-fused shadow's: within an fp8 step under a model-order fallback (enforced),
// measured and reported under the PR order.
#pragma once

#include "core/dispatch/rope_cache_dispatcher.h"
#include "fault_injection/sim/checkers/check_failure.h"
#include "fault_injection/sim/workload.h"

namespace rcsim::sim {

// Host-readable q views ([T, Hq, D]) and caches of the three runs of one layer call.
struct AttentionInputs {
  TensorView q_sut, q_expected, q_shadow;
  KvCacheViews cache_sut, cache_expected, cache_shadow;
  VCacheLayout written_v_layout = VCacheLayout::kShuffle;  // from the dispatch record
};

// Digests every read of the system under test's cache into `digest_out` (the run digest).
class Digest;
void check_attention(const CheckContext& ctx, const Step& step, std::span<const Request> requests,
                     const AttentionInputs& in, Digest& digest_out);

}  // namespace rcsim::sim
