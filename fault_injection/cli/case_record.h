// DIR/record.json of `rcsim case` (docs/schemas/case-record.schema.json): what the dispatcher did
// (branch, attempt, restore, failure, log lines), what the fault plan reached (calls per kernel
// site), under which policy, seed, mutant, backend and fidelity, and the case as read.
#pragma once

#include <nlohmann/json.hpp>

#include "core/dispatch/rope_cache_dispatcher.h"
#include "core/mutants.h"
#include "fakes/faults/faulty_kernels.h"
#include "fault_injection/cli/case_call.h"
#include "fault_injection/cli/case_spec.h"
#include "fault_injection/plan/fault_plan.h"

namespace rcsim::cli {

// Everything record.json says about one case run besides the dispatch record itself.
struct CaseRun {
  const CaseSpec& spec;
  Mutant mutant;
  bool fidelity_from_cli;
  const FaultPlan& plan;
  const FaultyKernelSet* faulty;  // null without a fault plan
  const DispatchProcess& process;
  const CallOutcome& call;
};

// The content of DIR/record.json.
nlohmann::json case_record_file_json(const CaseRun& run);

}  // namespace rcsim::cli
