// The CPU reference kernels: the executable spec of semantics.md. One class per interface of
// core/kernel_interfaces.h; each implementation file states its reduction order, rounding points
// and work-unit order (the real GPU kernel's order, which the fault injectors rely on).
//
// Common contract of every kernel here:
//  * All inputs are validated first; any violation throws InvalidInput before a byte is written.
//  * WorkLimit: units [0, k) are completed, k = min(max_units, N), nothing else is written;
//    max_units = 0 validates, writes nothing and returns N (how fault injectors probe N).
//  * Arithmetic is fp32 without FMA contraction, through kernels/common/qk_norm_rope_math.h.
//  * Mutants (core/mutants.h) are applied in CpuFusedQkNormRopeCache only, so the non-fused
//    composition (kernels/cpu/nonfused_reference.h) stays a clean oracle to catch them.
//  * Fidelity (core/fidelity.h): kernels built with Fidelity::kMath (the default) compute the
//    spec; an aiter-* fidelity switches on the departures of AITER as shipped that concern that
//    kernel (the fused kernel, the standalone rmsnorm, the per-token quant cache kernel).
#pragma once

#include "core/fidelity.h"
#include "core/kernel_interfaces.h"

namespace rcsim::cpu {

// aiter.fused_qk_norm_rope_cache_quant_shuffle (semantics.md 2.1, partial rotary as 2.2).
class CpuFusedQkNormRopeCache final : public FusedQkNormRopeCacheKernel {
 public:
  explicit CpuFusedQkNormRopeCache(Fidelity fidelity = Fidelity::kMath) : fidelity_(fidelity) {}
  KernelRun run(const FusedQkNormRopeCacheArgs& args) override;

 private:
  Fidelity fidelity_;
};

// Branch B: fused_qk_rope_reshape_and_cache (semantics.md 1.5).
class CpuRopeReshapeCache final : public RopeReshapeCacheKernel {
 public:
  KernelRun run(const RopeReshapeCacheArgs& args) override;
};

// rope_cached_positions_2c_fwd_inplace (semantics.md 2.6).
class CpuRotaryEmbedding final : public RotaryEmbeddingKernel {
 public:
  KernelRun run(const RotaryArgs& args) override;
};

// Per-head RMSNorm over [T, H, D] (rmsnorm2d_fwd on [T*H, D]).
class CpuRmsNorm final : public RmsNormKernel {
 public:
  explicit CpuRmsNorm(Fidelity fidelity = Fidelity::kMath) : fidelity_(fidelity) {}
  KernelRun run(const RmsNormArgs& args) override;

 private:
  Fidelity fidelity_;
};

// reshape_and_cache ("auto" copy or fp8 with a per-tensor scale).
class CpuReshapeAndCache final : public ReshapeAndCacheKernel {
 public:
  KernelRun run(const ReshapeAndCacheArgs& args) override;
};

// reshape_and_cache_with_pertoken_quant (dynamic per (token, KV head) fp8 scale).
class CpuPerTokenQuantCache final : public PerTokenQuantCacheKernel {
 public:
  explicit CpuPerTokenQuantCache(Fidelity fidelity = Fidelity::kMath) : fidelity_(fidelity) {}
  KernelRun run(const PerTokenQuantCacheArgs& args) override;

 private:
  Fidelity fidelity_;
};

}  // namespace rcsim::cpu
