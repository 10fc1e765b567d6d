// Runs one CallCase through a kernel path on a fresh property backend (the CPU reference, or the
// GPU kernels with RCSIM_PROPERTY_BACKEND=gpu: support/prop_backend.h) and returns the tensors after
// the call: the fused kernel (branch A), or the non-fused composition (branch C) in either order.
// Each call rebuilds the case's tensors from its seed, so paths never share memory.
#pragma once

#include "kernels/cpu/nonfused_reference.h"
#include "property_tests/generators/call_case.h"

namespace rcsim::props {

CallTensors run_fused_path(const CallCase& c);
CallTensors run_nonfused_path(const CallCase& c, FallbackOrder order);
cpu::NonFusedArgs nonfused_args(const CallTensors& t);

}  // namespace rcsim::props
