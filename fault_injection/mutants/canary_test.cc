// Goal: prove that a failing simulation reaches CTest as a failure. This test fails on purpose:
// it asserts that a run with the slot-off-by-one mutant passes, which the simulator must refuse.
// CTest registers it with WILL_FAIL, so it shows green only while the failure really propagates;
// if the checks were ever neutered, this canary turns red.
#include <gtest/gtest.h>

#include "core/mutants.h"
#include "fault_injection/sim/engine.h"
#include "fault_injection/sim/sim_config.h"

namespace rcsim::sim {
namespace {

TEST(Canary, MutantRunPassesWhichMustFail) {
  SimOverrides o;
  o.campaign_shape = true;
  o.faults = "none";
  o.mutant = Mutant::kSlotOffByOne;
  const SimConfig cfg = sample_config(1, o);
  const RunResult r = run_simulation(cfg);
  EXPECT_EQ(r.verdict, RunVerdict::kPass) << "expected: the canary fails here. " << r.failure;
}

}  // namespace
}  // namespace rcsim::sim
