// CPU reference of aiter reshape_and_cache (semantics.md 2.6) and of
// reshape_and_cache_with_pertoken_quant.
//
// reshape_and_cache. Work units: tokens in order, N = T. A unit with slot >= 0 writes, for each KV
//   head in order, K (dims 0..D-1) into the x-packed K cache, then V into the V cache of
//   `v_layout` (shuffle = asm_layout, or plain). "auto": the activation bits are copied
//   unchanged. fp8: code = fp8(x * (1/scale)) with the per-tensor dequant scale (aiter multiplies
//   by the reciprocal; one fp32 reciprocal, one fp32 product, RNE + saturation to +-max).
//   Negative slots are skipped (nothing written).
//
// reshape_and_cache_with_pertoken_quant. Work units: (token, KV head), g = token * Hkv + head,
//   N = T*Hkv. For slot >= 0, K then V: amax = max |x| over the head (fp32; max is exact in any
//   order), scale = amax / fp8_max (amax floored at 1e-8 iff cfg.amax_floor; otherwise an
//   all-zero head gives scale 0, reciprocal inf and NaN codes, as aiter of March 2026),
//   code = fp8(x * (1/scale)), scale stored (fp32) at [block, head, token_in_block].
//   Fidelity (core/fidelity.h): under aiter-* modes the scale is never floored; AITER@HEAD
//   multiplies by 1 / fmaxf(scale, 1e-12) instead (Mar26: 1.0 / scale in double, which rounds to
//   the same float as the fp32 division: double rounding of a quotient is innocuous when the
//   wide format has >= 2p+2 bits), and a NaN the multiply creates is +qNaN.
#include <cmath>

#include "core/check.h"
#include "kernels/common/qk_norm_rope_math.h"
#include "kernels/cpu/aiter_fidelity.h"
#include "kernels/cpu/detail.h"
#include "kernels/cpu/kernels.h"

namespace rcsim::cpu {
namespace {

using namespace detail;

// AITER@HEAD's k_pertoken_quant_scale_eps (cache_kernels.cu @e4048607 line 444).
constexpr float kPerTokenScaleGuard = 1e-12f;

void quantise_head(const HeadValues& x, int64_t head_dim, float reciprocal,
                   numeric::Fp8Format fmt, HeadCodes& codes) {
  for (int64_t d = 0; d < head_dim; ++d) {
    const auto i = static_cast<std::size_t>(d);
    codes[i] = qk_math::fp8_quantise_multiply(x[i], reciprocal, fmt);
  }
}

}  // namespace

KernelRun CpuReshapeAndCache::run(const ReshapeAndCacheArgs& args) {
  const AttentionConfig& cfg = args.cfg;
  const int64_t tokens = kernel_args::check_reshape_and_cache(host_rules(), args);
  const bool fp8 = is_fp8(cfg.kv_cache_dtype);
  const float k_rcp = qk_math::scale_reciprocal(args.k_scale);
  const float v_rcp = qk_math::scale_reciprocal(args.v_scale);
  const numeric::Fp8Format fmt = fp8_format(cfg.kv_cache_dtype);

  const int64_t run_units = units_to_run(args.limit, tokens);
  for (int64_t t = 0; t < run_units; ++t) {
    const int64_t slot = load_i64(args.slot_mapping, t);
    if (slot < 0) continue;  // padding / CUDA-graph filler
    for (int64_t h = 0; h < cfg.num_heads_kv; ++h) {
      const CacheSite site = cache_site(cfg, slot, h);
      for (CacheSide side : {CacheSide::kKey, CacheSide::kValue}) {
        HeadBits bits{};
        HeadValues x{};
        load_head(side == CacheSide::kKey ? args.key : args.value, t, h, cfg.head_dim, bits, x);
        if (!fp8) {
          store_head_bits(cfg, args.cache, args.v_layout, side, site, bits);
          continue;
        }
        HeadCodes codes{};
        quantise_head(x, cfg.head_dim, side == CacheSide::kKey ? k_rcp : v_rcp, fmt, codes);
        store_head_codes(cfg, args.cache, args.v_layout, side, site, codes);
      }
    }
  }
  return {tokens, run_units};
}

KernelRun CpuPerTokenQuantCache::run(const PerTokenQuantCacheArgs& args) {
  const AttentionConfig& cfg = args.cfg;
  const int64_t tokens = kernel_args::check_per_token_quant_cache(host_rules(), args);
  const numeric::Fp8Format fmt = fp8_format(cfg.kv_cache_dtype);
  const float fp8_max_value = numeric::fp8_max(fmt);
  const FidelitySwitches fid = fidelity_switches(fidelity_);

  const int64_t total = tokens * cfg.num_heads_kv;
  const int64_t run_units = units_to_run(args.limit, total);
  for (int64_t g = 0; g < run_units; ++g) {
    const int64_t t = g / cfg.num_heads_kv, h = g % cfg.num_heads_kv;
    const int64_t slot = load_i64(args.slot_mapping, t);
    if (slot < 0) continue;
    const CacheSite site = cache_site(cfg, slot, h);
    for (CacheSide side : {CacheSide::kKey, CacheSide::kValue}) {
      HeadBits bits{};
      HeadValues x{};
      load_head(side == CacheSide::kKey ? args.key : args.value, t, h, cfg.head_dim, bits, x);
      float amax = 0.0f;
      for (int64_t d = 0; d < cfg.head_dim; ++d) {
        amax = qk_math::amax_step(amax, x[static_cast<std::size_t>(d)]);
      }
      const float scale = qk_math::fp8_scale_from_amax(
          amax, fp8_max_value, fid.pertoken_scale_unfloored ? false : cfg.amax_floor);
      // AITER@HEAD guards only the reciprocal (1 / fmaxf(scale, 1e-12)); the scale is stored
      // unfloored (core/fidelity.h, pertoken_reciprocal_guard).
      const float rcp = fid.pertoken_reciprocal_guard
                            ? qk_math::scale_reciprocal(fmaxf(scale, kPerTokenScaleGuard))
                            : qk_math::scale_reciprocal(scale);
      HeadCodes codes{};
      if (fid.device_default_nan_positive) {
        for (int64_t d = 0; d < cfg.head_dim; ++d) {
          const auto i = static_cast<std::size_t>(d);
          codes[i] = numeric::float_to_fp8_bits(aiter::device_result(x[i] * rcp, x[i], rcp), fmt);
        }
      } else {
        quantise_head(x, cfg.head_dim, rcp, fmt, codes);
      }
      store_head_codes(cfg, args.cache, args.v_layout, side, site, codes);
      store_f32(side == CacheSide::kKey ? args.cache.k_scale : args.cache.v_scale,
                scale_offset(cfg, site), scale);
    }
  }
  return {total, run_units};
}

}  // namespace rcsim::cpu
