// After an aborted step: nothing outside the step's write set (the slots of its real tokens) may
// have changed in a layer's cache, compared with the committed expected state. Either V layout
// may have been written by the aborted step's branches, so an element is in the write set if it
// belongs to a written slot under either.
#pragma once

#include "core/kernel_interfaces.h"
#include "fault_injection/sim/checkers/check_failure.h"
#include "fault_injection/sim/workload.h"

namespace rcsim::sim {

void check_write_set(const CheckContext& ctx, const Step& step, const KvCacheViews& sut,
                     const KvCacheViews& committed);

}  // namespace rcsim::sim
