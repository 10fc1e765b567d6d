// The non-fused rope_cache path (ATOM branch C, semantics.md 1.6) as a composition of the
// separate kernels of a KernelSet, in either order:
//   kRopeThenNorm  - PR #279's fallback: RoPE on q and k, then q_norm / k_norm, then the cache;
//   kNormThenRope  - the model's order (HF Qwen3, the fused kernel): norms, RoPE, cache.
// Final q and k are written in place into the given views; V is only read. The cache write is
// reshape_and_cache("auto") for an "auto" cache and reshape_and_cache_with_pertoken_quant for fp8,
// as ATOM does. Run on the CPU backend, this is the functional reference the fused kernel is
// compared with (model order: bit for bit for "auto"; q/k bit for bit for fp8).
#pragma once

#include "core/attention_config.h"
#include "core/kernel_interfaces.h"
#include "core/tensor.h"

namespace rcsim::cpu {

struct NonFusedArgs {
  AttentionConfig cfg;
  TensorView q;  // [T, Hq, D], written in place
  TensorView k;  // [T, Hkv, D], written in place
  TensorView v;  // [T, Hkv, D], read only
  TensorView q_weight;  // [D]
  TensorView k_weight;  // [D]
  TensorView cos_sin_cache;  // [max_pos, rotary_dim]
  TensorView positions;      // [T] i64
  TensorView slot_mapping;   // [T] i64
  KvCacheViews cache;        // k/v scales [NB, Hkv, BS] fp32 when the cache is fp8
  VCacheLayout v_layout = VCacheLayout::kShuffle;
};

// Runs the composition with the kernels of `kernels` (any backend). Every kernel validates its
// inputs before writing, but a later kernel's rejection can come after an earlier one wrote:
// callers that need all-or-nothing call validate_nonfused() first (run_nonfused() does for host
// views; device views, e.g. a GPU graph replay, are only required to share one device, since the
// value checks read memory and the device kernels validate their own arguments).
void validate_nonfused(const NonFusedArgs& args);
void run_nonfused(const KernelSet& kernels, FallbackOrder order, const NonFusedArgs& args);

}  // namespace rcsim::cpu
