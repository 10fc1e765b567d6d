// Kernel paths on the property backend: the CPU reference, or the GPU kernels (see paths.h).
#include "property_tests/support/paths.h"

#include "property_tests/support/prop_backend.h"

namespace rcsim::props {

CallTensors run_fused_path(const CallCase& c) {
  CallTensors t = make_call_tensors(c);
  PropBackend backend;
  backend.kernels().fused->run(fused_args(t));
  return t;
}

cpu::NonFusedArgs nonfused_args(const CallTensors& t) {
  const QkvViews v = t.split();
  cpu::NonFusedArgs a;
  a.cfg = t.cfg;
  a.q = v.q;
  a.k = v.k;
  a.v = v.v;
  a.q_weight = t.q_weight.view();
  a.k_weight = t.k_weight.view();
  a.cos_sin_cache = t.cos_sin.view();
  a.positions = t.positions.view();
  a.slot_mapping = t.slots.view();
  a.cache = t.cache_views();
  a.v_layout = VCacheLayout::kShuffle;  // ATOM's asm_layout for D = 128; the fused kernel's order
  return a;
}

CallTensors run_nonfused_path(const CallCase& c, FallbackOrder order) {
  CallTensors t = make_call_tensors(c);
  PropBackend backend;
  cpu::run_nonfused(backend.kernels(), order, nonfused_args(t));
  return t;
}

}  // namespace rcsim::props
