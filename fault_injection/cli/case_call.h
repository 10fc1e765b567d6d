// The one rope_cache call of a case: the kernels it runs on (the fidelity's CPU kernels or the
// device's, under the case's fault plan) and what the dispatcher did. A DispatchError is a result
// of the case, recorded like a return; InvalidInput is not caught (the case is wrong, DIR stays
// unwritten).
#pragma once

#include <optional>

#include <nlohmann/json.hpp>

#include "core/dispatch/rope_cache_dispatcher.h"
#include "fakes/faults/faulty_kernels.h"
#include "fault_injection/cli/case_spec.h"
#include "fault_injection/plan/fault_plan.h"
#include "fault_injection/sim/sim_device.h"
#include "kernels/cpu/cpu_backend.h"

namespace rcsim::cli {

// What the one dispatcher call did: its result, or the DispatchError it raised (a result too).
struct CallOutcome {
  std::optional<RopeCacheResult> result;  // empty: the call raised a DispatchError
  DispatchRecord record;
  nlohmann::json error = nullptr;  // class, injected, message of the DispatchError
};

// The kernels the call runs on: the fidelity's CPU kernels or the device's, wrapped in the fault
// decorators (emplaced into `faulty`) when the case has a fault plan.
KernelSet case_kernels(const CaseSpec& s, const FaultPlan& plan, sim::SimDevice& device,
                       cpu::CpuBackend& fidelity_backend, std::optional<FaultyKernelSet>& faulty);

// Calls the dispatcher once; a DispatchError becomes the outcome's record and error.
CallOutcome call_dispatcher(RopeCacheDispatcher& dispatcher, const RopeCacheInputs& call_in);

}  // namespace rcsim::cli
