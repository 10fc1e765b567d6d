// Runs one CallCase through the real RopeCacheDispatcher on the CPU backend, optionally behind
// FaultyKernelSet with a fault plan, and returns everything a property compares afterwards: qkv,
// the caches and scales, the contents of the q/k the call returned, the record or the surfaced
// DispatchError, and the process's log lines. Also the restore oracle shared by properties 1 and 5.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/dispatch/rope_cache_dispatcher.h"
#include "fault_injection/plan/fault_plan.h"
#include "property_tests/generators/call_case.h"

namespace rcsim::props {

struct DispatchRun {
  CallTensors tensors;  // after the call
  std::optional<DispatchRecord> record;  // set iff the call returned
  std::optional<FailureClass> surfaced;  // set iff it threw DispatchError
  std::string surfaced_what;
  HostTensor q_result;  // contents of RopeCacheResult::q / k, contiguous [T, H, D]
  HostTensor k_result;
  std::vector<std::string> log_lines;
  // Calls that reached a fallback kernel (branch B's or C's), counted by the fault decorators;
  // set by run_dispatch, -1 when no fault plan wrapped the kernels (nothing counted).
  int64_t fallback_kernel_calls = -1;
  int64_t fallbacks_counted = 0;  // DispatchProcess::fallback_count_total() after the call
};

LayerSpec layer_spec_for(const CallCase& c, FallbackPolicy policy);

// One simulated serving process: a CPU backend behind FaultyKernelSet(plan, seed), one
// DispatchProcess, any number of layer instances (dispatchers) sharing them. call() may run from
// several threads at once (each call builds its own tensors; the process and the decorators are
// thread-safe); add_layer() must not race with call().
class DispatchSession {
 public:
  DispatchSession(const FaultPlan& plan, uint64_t fault_seed, bool fused_missing = false);
  ~DispatchSession();
  DispatchSession(const DispatchSession&) = delete;
  DispatchSession& operator=(const DispatchSession&) = delete;

  int add_layer(const LayerSpec& spec);  // returns the layer index
  int layer_count() const;
  const LayerSpec& layer_spec(int layer) const;
  // pass_qkv = false: ATOM without the fusion flag passes q/k/v views but qkv = None.
  DispatchRun call(int layer, const CallCase& c, bool pass_qkv = true);
  DispatchProcess& process();
  // Calls the fault decorators saw at branch B's and C's kernels so far (-1 without a fault
  // plan). Read only while no call is in flight.
  int64_t fallback_kernel_calls() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// `fused_missing`: the backend has no fused module (KernelSet::fused = null): the fallback alone.
DispatchRun run_dispatch(const CallCase& c, const LayerSpec& spec, const FaultPlan& plan,
                         uint64_t fault_seed, bool fused_missing = false);

// What happened to one (case, policy, fault plan) with respect to the restore promise.
enum class RestoreVerdict : uint8_t {
  kRestored,   // qkv, returned q/k, caches and scales equal the fallback-alone run, byte for byte
  kSurfaced,   // the call threw DispatchError (the policy refused to hide the failure)
  kCorrupted,  // the call returned, but some byte differs from the fallback-alone run
};
std::string_view restore_verdict_name(RestoreVerdict v);

struct RestoreCheck {
  RestoreVerdict verdict = RestoreVerdict::kRestored;
  std::string detail;  // the first differing byte, or the surfaced error
  std::optional<DispatchRecord> record;
  int64_t fallback_kernel_calls = -1;  // as DispatchRun's
  int64_t fallbacks_counted = 0;
};

// Runs the case under `plan` and compares with two oracles: the same dispatcher with the fused
// module missing (the fallback alone, from pristine inputs), and the CPU non-fused composition in
// the policy's order (kernels/cpu/nonfused_reference.h) for the returned q/k and the caches.
RestoreCheck check_restore(const CallCase& c, FallbackPolicy policy, const FaultPlan& plan,
                           uint64_t fault_seed);

}  // namespace rcsim::props
