#include "fault_injection/sim/oracle.h"

#include "kernels/cpu/nonfused_reference.h"

namespace rcsim::sim {

void Oracle::run_fused(const RopeCacheInputs& in) {
  FusedQkNormRopeCacheArgs a;
  a.cfg = attn_;
  a.qkv = in.qkv;
  a.q_weight = in.q_weight;
  a.k_weight = in.k_weight;
  a.cos_sin_cache = in.cos_sin_cache;
  a.positions = in.positions;
  a.slot_mapping = in.slot_mapping;
  a.cache = in.cache;
  device_.kernels().fused->run(a);
}

void Oracle::run_fallback(const RopeCacheInputs& in, VCacheLayout v_layout) {
  cpu::NonFusedArgs n;
  n.cfg = attn_;
  n.q = in.q;
  n.k = in.k;
  n.v = in.v;
  n.q_weight = in.q_weight;
  n.k_weight = in.k_weight;
  n.cos_sin_cache = in.cos_sin_cache;
  n.positions = in.positions;
  n.slot_mapping = in.slot_mapping;
  n.cache = in.cache;
  n.v_layout = v_layout;
  cpu::run_nonfused(device_.kernels(), policy_order_, n);
}

void Oracle::run_branch(const DispatchRecord& rec, const RopeCacheInputs& in) {
  if (rec.branch == Branch::kFused) {
    run_fused(in);
  } else {
    run_fallback(in, rec.v_cache_layout);
  }
}

OracleRun Oracle::prepare(const LayerState& layer, const StepInputs& in, const LayerCache& cache) {
  OracleRun run;
  run.qkv = device_.upload_new(in.qkv);
  run.inputs =
      make_dispatch_inputs(attn_, layer, cos_sin_, run.qkv->view(), in, cache, Side::kOracle);
  return run;
}

OracleRun Oracle::expected(LayerState& layer, const StepInputs& in, const DispatchRecord& rec) {
  layer.scratch.copy_from(device_, layer.expected);
  OracleRun run = prepare(layer, in, layer.scratch);
  run_branch(rec, run.inputs);
  return run;
}

OracleRun Oracle::shadow(LayerState& layer, const StepInputs& in) {
  OracleRun run = prepare(layer, in, layer.shadow);
  run_fused(run.inputs);
  return run;
}

}  // namespace rcsim::sim
