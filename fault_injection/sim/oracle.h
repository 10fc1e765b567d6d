// The simulator's oracle: fault-free reference runs of one layer call on the SimDevice's clean
// kernels, never through a dispatcher.
//   * expected: the branch the dispatch record reports, on a copy of the committed expected
//     cache (the fused kernel, or the non-fused composition in the order the *policy* promises,
//     so a dispatcher that swaps the order is caught), writing V in the layout the record reports;
//   * shadow: the fused kernel every time, on the shadow cache (what a run without faults and
//     fallbacks would hold).
// Graph replays also re-run a recorded branch through run_branch(), on an Oracle built over the
// system under test's device (the replay writes the system under test's memory).
// `device` is the CPU device whatever the run's backend: the oracle is the CPU reference.
#pragma once

#include "core/dispatch/rope_cache_dispatcher.h"
#include "fault_injection/sim/layer_state.h"
#include "fault_injection/sim/sim_device.h"

namespace rcsim::sim {

// One reference run's qkv (device memory it owns) and the inputs it ran with.
struct OracleRun {
  DeviceTensor qkv;
  RopeCacheInputs inputs;
};

class Oracle {
 public:
  Oracle(SimDevice& device, const AttentionConfig& attn, FallbackOrder policy_order,
         const TensorView& cos_sin)
      : device_(device), attn_(attn), policy_order_(policy_order), cos_sin_(cos_sin) {}

  // Runs the fused kernel, or the non-fused composition in the policy's order, on `in`.
  void run_branch(const DispatchRecord& rec, const RopeCacheInputs& in);
  // The expected state of this call: layer.scratch <- layer.expected, then the record's branch.
  OracleRun expected(LayerState& layer, const StepInputs& in, const DispatchRecord& rec);
  // The all-fused shadow run on layer.shadow.
  OracleRun shadow(LayerState& layer, const StepInputs& in);

 private:
  void run_fused(const RopeCacheInputs& in);
  void run_fallback(const RopeCacheInputs& in, VCacheLayout v_layout);
  OracleRun prepare(const LayerState& layer, const StepInputs& in, const LayerCache& cache);

  SimDevice& device_;
  AttentionConfig attn_;
  FallbackOrder policy_order_;
  TensorView cos_sin_;
};

}  // namespace rcsim::sim
