// Runs the one dispatcher call of a case (case_call.h).
#include "fault_injection/cli/case_call.h"

#include <utility>

#include "core/prng.h"

namespace rcsim::cli {

// The kernels the call runs on: the fidelity's CPU kernels or the device's, wrapped in the fault
// decorators when the case has a fault plan.
KernelSet case_kernels(const CaseSpec& s, const FaultPlan& plan, sim::SimDevice& device,
                       cpu::CpuBackend& fidelity_backend, std::optional<FaultyKernelSet>& faulty) {
  KernelSet kernels = s.backend == "cpu" ? fidelity_backend.kernels() : device.kernels();
  if (plan.empty()) return kernels;
  faulty.emplace(kernels, plan, mix_seed(s.seed, label_hash("faults")));
  if (DeviceMemoryAccess access = device.memory_access(); access.download) {
    faulty->set_device_memory_access(std::move(access));
  }
  return faulty->kernels();
}

// InvalidInput is raised before the dispatcher writes anything (its contract), so a bad input
// file still leaves DIR unwritten: only DispatchError is caught here.
CallOutcome call_dispatcher(RopeCacheDispatcher& dispatcher, const RopeCacheInputs& call_in) {
  CallOutcome out;
  try {
    out.result.emplace(dispatcher.rope_cache(call_in));
    out.record = out.result->record;
  } catch (const DispatchError& e) {
    out.record = e.record();
    out.error = {{"class", failure_class_name(e.failure_class())},
                 {"injected", e.injected()},
                 {"message", e.what()}};
  }
  return out;
}

}  // namespace rcsim::cli
