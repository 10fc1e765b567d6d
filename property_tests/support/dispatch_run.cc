// Dispatcher runs and the restore oracle (see dispatch_run.h).
#include "property_tests/support/dispatch_run.h"

#include <fmt/format.h>

#include "fakes/faults/faulty_kernels.h"
#include "kernels/cpu/cpu_backend.h"
#include "property_tests/support/prop_backend.h"
#include "property_tests/support/compare.h"
#include "property_tests/support/paths.h"

namespace rcsim::props {

std::string_view restore_verdict_name(RestoreVerdict v) {
  switch (v) {
    case RestoreVerdict::kRestored: return "restored";
    case RestoreVerdict::kSurfaced: return "surfaces";
    case RestoreVerdict::kCorrupted: return "CORRUPTS";
  }
  return "?";
}

LayerSpec layer_spec_for(const CallCase& c, FallbackPolicy policy) {
  LayerSpec spec;
  spec.attn = c.cfg;
  spec.policy = policy;
  spec.logic = DecisionLogic::kPr279;
  return spec;
}

namespace {
HostTensor contents(const TensorView& v) {
  HostTensor out(v.dtype, {v.size(0), v.size(1), v.size(2)});
  copy_view(v, out.view());
  return out;
}
}  // namespace

struct DispatchSession::Impl {
  Impl(const FaultPlan& plan, uint64_t fault_seed, bool fused_missing)
      : inner(backend.kernels()),
        faulty((fused_missing ? (inner.fused = nullptr, inner) : inner), plan, fault_seed),
        use_faults(!plan.empty()) {}
  PropBackend backend;  // the CPU reference, or the GPU kernels (RCSIM_PROPERTY_BACKEND=gpu)
  KernelSet inner;
  FaultyKernelSet faulty;
  bool use_faults;
  DispatchProcess process;
  std::vector<std::unique_ptr<RopeCacheDispatcher>> layers;
};

DispatchSession::DispatchSession(const FaultPlan& plan, uint64_t fault_seed, bool fused_missing)
    : impl_(std::make_unique<Impl>(plan, fault_seed, fused_missing)) {}
DispatchSession::~DispatchSession() = default;

int DispatchSession::add_layer(const LayerSpec& spec) {
  impl_->layers.push_back(std::make_unique<RopeCacheDispatcher>(
      spec, impl_->use_faults ? impl_->faulty.kernels() : impl_->inner, impl_->process));
  return static_cast<int>(impl_->layers.size()) - 1;
}
int DispatchSession::layer_count() const { return static_cast<int>(impl_->layers.size()); }
int64_t DispatchSession::fallback_kernel_calls() const {
  if (!impl_->use_faults) return -1;
  const FaultStats& s = impl_->faulty.stats();
  return s.call_count(FaultSite::kRopeCache) + s.call_count(FaultSite::kFallbackRope) +
         s.call_count(FaultSite::kFallbackNorm) + s.call_count(FaultSite::kFallbackCache);
}
const LayerSpec& DispatchSession::layer_spec(int layer) const {
  return impl_->layers[static_cast<std::size_t>(layer)]->spec();
}
DispatchProcess& DispatchSession::process() { return impl_->process; }

DispatchRun DispatchSession::call(int layer, const CallCase& c, bool pass_qkv) {
  RopeCacheDispatcher& dispatcher = *impl_->layers[static_cast<std::size_t>(layer)];
  const LayerSpec& spec = dispatcher.spec();
  DispatchRun run;
  run.tensors = make_call_tensors(c);
  const CallTensors& t = run.tensors;
  RopeCacheInputs in;
  if (pass_qkv) {
    in.qkv = t.qkv.view();
  } else {
    const QkvViews views = t.split();
    in.q = views.q;
    in.k = views.k;
    in.v = views.v;
  }
  in.positions = t.positions.view();
  in.slot_mapping = t.slots.view();
  in.cos_sin_cache = t.cos_sin.view();
  if (spec.has_q_norm) in.q_weight = t.q_weight.view();
  if (spec.has_k_norm) in.k_weight = t.k_weight.view();
  in.cache = t.cache_views();
  try {
    RopeCacheResult result = dispatcher.rope_cache(in);
    run.record = result.record;
    run.q_result = contents(result.q);
    run.k_result = contents(result.k);
  } catch (const DispatchError& e) {
    run.surfaced = e.failure_class();
    run.surfaced_what = e.what();
  }
  run.log_lines = impl_->process.log_lines();
  return run;
}

DispatchRun run_dispatch(const CallCase& c, const LayerSpec& spec, const FaultPlan& plan,
                         uint64_t fault_seed, bool fused_missing) {
  DispatchSession session(plan, fault_seed, fused_missing);
  DispatchRun run = session.call(session.add_layer(spec), c);
  run.fallback_kernel_calls = session.fallback_kernel_calls();
  run.fallbacks_counted = session.process().fallback_count_total();
  return run;
}

namespace {

// Oracle 2: the independent CPU composition in the policy's order must agree with oracle 1 on
// what the fallback returns and caches (this keeps oracle 1 honest). The first difference, if any.
std::optional<std::string> composition_difference(const CallCase& c, FallbackPolicy policy,
                                                  const LayerSpec& spec, const DispatchRun& run) {
  CallTensors ref = make_call_tensors(c);
  cpu::NonFusedArgs args = nonfused_args(ref);
  args.v_layout = spec.use_triton_attn() ? VCacheLayout::kPlain : VCacheLayout::kShuffle;
  cpu::CpuBackend backend;
  cpu::run_nonfused(backend.kernels(), fallback_order_of(policy), args);
  const QkvViews views = ref.split();
  HostTensor q_ref(c.cfg.act_dtype, {c.num_tokens, c.cfg.num_heads_q, c.cfg.head_dim});
  HostTensor k_ref(c.cfg.act_dtype, {c.num_tokens, c.cfg.num_heads_kv, c.cfg.head_dim});
  copy_view(views.q, q_ref.view());
  copy_view(views.k, k_ref.view());
  // The run is on the property backend (a GPU with RCSIM_PROPERTY_BACKEND=gpu), the
  // composition on the CPU: computed outputs compare by NaN class (core/nan_class.h); a
  // bf16/fp16 V cache is V copied and stays bit-exact.
  const NanRule v_cache_rule =
      is_fp8(c.cfg.kv_cache_dtype) ? NanRule::kNanClass : NanRule::kBitExact;
  if (auto d = first_byte_difference(run.q_result, q_ref, "returned q vs CPU composition",
                                     NanRule::kNanClass)) {
    return d;
  }
  if (auto d = first_byte_difference(run.k_result, k_ref, "returned k vs CPU composition",
                                     NanRule::kNanClass)) {
    return d;
  }
  if (auto d = first_byte_difference(run.tensors.k_cache, ref.k_cache,
                                     "k_cache vs CPU composition", NanRule::kNanClass)) {
    return d;
  }
  if (auto d = first_byte_difference(run.tensors.v_cache, ref.v_cache,
                                     "v_cache vs CPU composition", v_cache_rule)) {
    return d;
  }
  return std::nullopt;
}

}  // namespace

RestoreCheck check_restore(const CallCase& c, FallbackPolicy policy, const FaultPlan& plan,
                           uint64_t fault_seed) {
  RestoreCheck out;
  const LayerSpec spec = layer_spec_for(c, policy);
  const DispatchRun run = run_dispatch(c, spec, plan, fault_seed);
  out.record = run.record;
  out.fallback_kernel_calls = run.fallback_kernel_calls;
  out.fallbacks_counted = run.fallbacks_counted;
  if (run.surfaced) {
    out.verdict = RestoreVerdict::kSurfaced;
    out.detail = run.surfaced_what;
    return out;
  }
  auto corrupted = [&](std::string detail) {
    out.verdict = RestoreVerdict::kCorrupted;
    out.detail = std::move(detail);
    return out;
  };
  // Oracle 1: the fallback alone, from pristine inputs, same dispatcher configuration.
  const DispatchRun alone = run_dispatch(c, spec, FaultPlan{}, fault_seed, /*fused_missing=*/true);
  if (alone.surfaced) return corrupted("oracle run surfaced: " + alone.surfaced_what);
  const bool fell_back = run.record->branch != Branch::kFused;
  if (fell_back) {
    if (auto d = first_qkv_bit_difference(c.cfg, run.tensors.qkv, alone.tensors.qkv)) {
      return corrupted("after the fallback, " + *d + " (vs the fallback alone)");
    }
    if (auto d = first_byte_difference(run.q_result, alone.q_result, "returned q")) return corrupted(*d);
    if (auto d = first_byte_difference(run.k_result, alone.k_result, "returned k")) return corrupted(*d);
    for (const auto& [name, a, b] :
         {std::tuple{"k_cache", &run.tensors.k_cache, &alone.tensors.k_cache},
          {"v_cache", &run.tensors.v_cache, &alone.tensors.v_cache},
          {"k_scale", &run.tensors.k_scale, &alone.tensors.k_scale},
          {"v_scale", &run.tensors.v_scale, &alone.tensors.v_scale}}) {
      if (auto d = first_byte_difference(*a, *b, name)) {
        return corrupted(*d + " (every mapped slot must hold the fallback's value, every other "
                              "byte its sentinel)");
      }
    }
  } else {
    // The fused call succeeded (a fault that did not fire): then the result is the fused one.
    const CallTensors fused = run_fused_path(c);
    if (auto d = first_qkv_bit_difference(c.cfg, run.tensors.qkv, fused.qkv)) {
      return corrupted("fused branch taken but " + *d);
    }
  }
  if (fell_back) {
    if (auto d = composition_difference(c, policy, spec, run)) return corrupted(*d);
  }
  return out;
}

}  // namespace rcsim::props
