// Fuzzes the fault-spec grammar (CLI --faults, env RCSIM_FAULTS): any byte string either parses
// into a plan that prints back to a spec parsing to the same plan, or is rejected with
// InvalidInput. Anything else (a crash, another exception, a round-trip mismatch) is a bug.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "core/check.h"
#include "fault_injection/plan/fault_plan.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view spec(reinterpret_cast<const char*>(data), size);
  try {
    const rcsim::FaultPlan plan = rcsim::parse_fault_plan(spec);
    const std::string printed = rcsim::to_string(plan);
    const rcsim::FaultPlan again = rcsim::parse_fault_plan(printed);
    RCSIM_ASSERT(rcsim::to_string(again) == printed, "round trip changed '{}'", printed);
  } catch (const rcsim::InvalidInput&) {
    // A precise rejection is the expected outcome for malformed specs.
  }
  return 0;
}
