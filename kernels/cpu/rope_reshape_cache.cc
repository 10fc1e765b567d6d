// CPU reference of branch B, aiter fused_qk_rope_reshape_and_cache (Triton; semantics.md 1.5).
//
// Work units: one per (token, q head), g = token * Hq + head, N = T*Hq (one program per unit in
//   ATOM, where len(slot_mapping) == T).
// A unit ropes its q head in place. The first q head of each GQA group (head % (Hq/Hkv) == 0) of
//   a token with slot >= 0 also ropes K head head/(Hq/Hkv) in place (k_out = k), then writes that
//   K head to the x-packed K cache and the V head to the V cache of `v_layout`. Padded tokens
//   (slot < 0): q roped, K neither roped nor cached - as the Triton kernel's slot guard does.
// Math: the rotation of the rotary kernel (fp32 products and sum, one rounding to the activation
//   dtype). The Triton kernel may round in bf16 between operations [inferred in semantics.md];
//   rcsim models the single-rounding form. Cache values: "auto" copies the roped K bits / raw V
//   bits (apply_scale off); fp8 (apply_scale on) stores fp8(x * (1/scale)) with the static
//   per-tensor scales, x being the rounded post-RoPE K or raw V.
#include <cmath>

#include "core/check.h"
#include "kernels/common/qk_norm_rope_math.h"
#include "kernels/cpu/detail.h"
#include "kernels/cpu/kernels.h"

namespace rcsim::cpu {
namespace {

using namespace detail;

void validate(const RopeReshapeCacheArgs& a) {
  kernel_args::check_rope_reshape_cache(host_rules(), a);
}

void rope_head(const RopeReshapeCacheArgs& a, const TensorView& view, int64_t t, int64_t h,
               const HeadValues& cos_row, const HeadValues& sin_row, HeadBits& bits,
               HeadValues& x) {
  const AttentionConfig& cfg = a.cfg;
  load_head(view, t, h, cfg.head_dim, bits, x);
  const int rot = static_cast<int>(cfg.rotary_dim);
  HeadValues out = x;
  for (int d = 0; d < rot; ++d) {
    out[static_cast<std::size_t>(d)] =
        qk_math::rope_element(x.data(), d, rot, cfg.is_neox, cos_row.data(), sin_row.data());
  }
  for (int d = 0; d < rot; ++d) {
    const auto i = static_cast<std::size_t>(d);
    bits[i] = float_to_activation(out[i], cfg.act_dtype);
    x[i] = activation_to_float(bits[i], cfg.act_dtype);
  }
  store_head(view, t, h, cfg.head_dim, bits);
}

void cache_head(const RopeReshapeCacheArgs& a, CacheSide side, const CacheSite& site,
                const HeadBits& bits, const HeadValues& x) {
  const AttentionConfig& cfg = a.cfg;
  if (!a.apply_scale) {
    store_head_bits(cfg, a.cache, a.v_layout, side, site, bits);
    return;
  }
  const float rcp =
      qk_math::scale_reciprocal(side == CacheSide::kKey ? a.k_scale_static : a.v_scale_static);
  HeadCodes codes{};
  for (int64_t d = 0; d < cfg.head_dim; ++d) {
    const auto i = static_cast<std::size_t>(d);
    codes[i] = qk_math::fp8_quantise_multiply(x[i], rcp, fp8_format(cfg.kv_cache_dtype));
  }
  store_head_codes(cfg, a.cache, a.v_layout, side, site, codes);
}

}  // namespace

KernelRun CpuRopeReshapeCache::run(const RopeReshapeCacheArgs& a) {
  validate(a);
  const AttentionConfig& cfg = a.cfg;
  const int64_t tokens = a.q.size(0);
  const int64_t group = cfg.num_heads_q / cfg.num_heads_kv;
  const int64_t total = tokens * cfg.num_heads_q;
  const int64_t run_units = units_to_run(a.limit, total);
  HeadValues cos_row{}, sin_row{};
  for (int64_t g = 0; g < run_units; ++g) {
    const int64_t t = g / cfg.num_heads_q, hq = g % cfg.num_heads_q;
    load_cos_sin_row(a.cos_sin_cache, load_i64(a.positions, t), cfg.rotary_dim, cos_row, sin_row);
    HeadBits bits{};
    HeadValues x{};
    rope_head(a, a.q, t, hq, cos_row, sin_row, bits, x);
    const int64_t slot = load_i64(a.slot_mapping, t);
    if (hq % group != 0 || slot < 0) continue;
    const int64_t hk = hq / group;
    const CacheSite site = cache_site(cfg, slot, hk);
    rope_head(a, a.k, t, hk, cos_row, sin_row, bits, x);
    cache_head(a, CacheSide::kKey, site, bits, x);
    load_head(a.v, t, hk, cfg.head_dim, bits, x);
    cache_head(a, CacheSide::kValue, site, bits, x);
  }
  return {total, run_units};
}

}  // namespace rcsim::cpu
