// The non-fused branches of one call: B (Triton rope + cache, no norm) and C (rotary, q/k norms
// and the cache write, in the policy's order).
#include "core/dispatch/dispatch_internal.h"

#include <array>
#include <new>
#include <utility>

#include <fmt/format.h>

#include "core/check.h"
#include "core/limits.h"
#include "core/mutants.h"

namespace rcsim {

using dispatch_detail::guarded;
using dispatch_detail::kStageNormStorage;

// B: RoPE in place on q and k, K/V into the cache with ATOM's static per-tensor scale.
void RopeCacheDispatcher::Call::run_branch_b() {
  const AttentionConfig& c = spec_.attn;
  const std::string_view name = RopeReshapeCacheKernel::kName;
  require_kernel(k_.rope_reshape_cache, name);
  RopeReshapeCacheArgs args;
  args.cfg = c;
  args.q = in_.q;
  args.k = in_.k;
  args.v = in_.v;
  args.cos_sin_cache = in_.cos_sin_cache;
  args.positions = in_.positions;
  args.slot_mapping = in_.slot_mapping;
  args.cache = in_.cache;
  // The Triton kernel follows the tensor: a 4-D v_cache is written plain, a 5-D one shuffled.
  args.v_layout = in_.cache.v_cache.rank == 5 ? VCacheLayout::kShuffle : VCacheLayout::kPlain;
  result_.record.v_cache_layout = args.v_layout;
  args.apply_scale = is_fp8(c.kv_cache_dtype);
  args.k_scale_static = atom_static_kv_scale(c.kv_cache_dtype);
  args.v_scale_static = args.k_scale_static;
  check(guarded(name, [&] { k_.rope_reshape_cache->run(args); }), "branch B");
  result_.q = in_.q;
  result_.k = in_.k;
}

// C: rotary, q/k RMSNorm into new storage, cache write (semantics.md 1.6), in the policy's order.
void RopeCacheDispatcher::Call::run_branch_c() {
  const AttentionConfig& c = spec_.attn;
  const int64_t t = in_.positions.size(0);
  FallbackOrder order = fallback_order_of(spec_.policy);
  if (mutant_active(Mutant::kFallbackOrderSwapped)) {
    order = order == FallbackOrder::kRopeThenNorm ? FallbackOrder::kNormThenRope
                                                  : FallbackOrder::kRopeThenNorm;
  }
  TensorView q = in_.q;
  TensorView k = in_.k;

  auto rope = [&] {
    if (!spec_.has_rotary) return;
    const std::string_view name = RotaryEmbeddingKernel::kName;
    require_kernel(k_.rotary, name);
    RotaryArgs args;
    args.q = q;
    args.k = k;
    args.positions = in_.positions;
    args.cos_sin_cache = in_.cos_sin_cache;
    args.rotary_dim = c.rotary_dim;
    args.is_neox = c.is_neox;
    check(guarded(name, [&] { k_.rotary->run(args); }), "branch C rotary");
  };
  // ATOM: q = self.q_norm(q) returns a new tensor; the result owns it.
  auto norm = [&](TensorView& x, const TensorView& weight, int64_t heads,
                  std::unique_ptr<DeviceBuffer>& storage) {
    const std::string_view name = RmsNormKernel::kName;
    require_kernel(k_.rms_norm, name);
    storage = allocate(kStageNormStorage, c.act_dtype, {t, heads, c.head_dim});
    RmsNormArgs args;
    args.input = x;
    args.output = storage->view();
    args.weight = weight;
    args.eps = c.eps;
    check(guarded(name, [&] { k_.rms_norm->run(args); }), "branch C rms_norm");
    x = storage->view();
  };
  auto norms = [&] {
    if (spec_.has_q_norm) norm(q, in_.q_weight, c.num_heads_q, result_.q_storage);
    if (spec_.has_k_norm) norm(k, in_.k_weight, c.num_heads_kv, result_.k_storage);
  };
  if (order == FallbackOrder::kRopeThenNorm) {
    rope();
    norms();
  } else {
    norms();
    rope();
  }

  const VCacheLayout v_layout = spec_.fallback_v_layout();
  result_.record.v_cache_layout = v_layout;
  if (is_fp8(c.kv_cache_dtype)) {
    const std::string_view name = PerTokenQuantCacheKernel::kName;
    require_kernel(k_.per_token_quant_cache, name);
    PerTokenQuantCacheArgs args;
    args.cfg = c;
    args.key = k;
    args.value = in_.v;
    args.slot_mapping = in_.slot_mapping;
    args.cache = in_.cache;
    args.v_layout = v_layout;
    check(guarded(name, [&] { k_.per_token_quant_cache->run(args); }), "branch C cache write");
  } else {
    const std::string_view name = ReshapeAndCacheKernel::kName;
    require_kernel(k_.reshape_and_cache, name);
    ReshapeAndCacheArgs args;
    args.cfg = c;
    args.key = k;
    args.value = in_.v;
    args.slot_mapping = in_.slot_mapping;
    args.cache = in_.cache;
    args.v_layout = v_layout;
    check(guarded(name, [&] { k_.reshape_and_cache->run(args); }), "branch C cache write");
  }
  result_.q = q;
  result_.k = k;
}

}  // namespace rcsim
