// Goal (issue 5, property 6, fp8): for both fp8 formats (OCP e4m3fn, max 448; AMD e4m3fnuz, max
// 240) every cached value dequantises to within half an fp8 step (times its scale) of the value
// that was quantised, every stored scale is exactly amax / fp8_max of its (token, head), and an
// all-zero head behaves as configured: NaN without the amax floor (AITER of March 2026: 0/0),
// zeros with it (AITER@HEAD, amax floored at 1e-8).
// Method: run the fused kernel (branch A) and the fallback's per-token quant path (branch C in the
// model's order) on fp8 cases; the quantised inputs are read back from qkv after the call (K after
// norm + RoPE as the kernel wrote it, V unchanged); recompute amax and the scale in fp32 exactly as
// the spec orders it, then check scale bits, the half-step bound and the zero-head rule at every
// mapped (token, kv head, dim), for K and V.
// Negative tests: fp8 mutants in the fused kernel (other format's max, scales not stored) must
// falsify it.
#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "core/mutants.h"
#include "kernels/common/numeric.h"
#include "kernels/common/qk_norm_rope_math.h"
#include "property_tests/generators/call_case.h"
#include "property_tests/harness/prop_harness.h"
#include "property_tests/support/compare.h"
#include "property_tests/support/paths.h"

namespace rcsim::props {
namespace {

// Half the distance between adjacent fp8 values around magnitude m (m = |v| / scale), e4m3.
double fp8_half_step(double m, numeric::Fp8Format fmt) {
  const int bias = numeric::fp8_bias(fmt);
  const double min_normal = std::ldexp(1.0, 1 - bias);
  if (m < min_normal) return 0.5 * std::ldexp(1.0, 1 - bias - 3);  // subnormal spacing
  const double clamped = std::min(m, static_cast<double>(numeric::fp8_max(fmt)));
  int exponent = 0;
  std::frexp(clamped, &exponent);  // clamped = f * 2^exponent, f in [0.5, 1)
  return 0.5 * std::ldexp(1.0, exponent - 1 - 3);
}

// Checks one cache (K or V) of one run; `head_offset` = index of the first K or V head in qkv.
void check_fp8_cache(const CallCase& c, const CallTensors& t, bool is_v) {
  const AttentionConfig& cfg = c.cfg;
  const numeric::Fp8Format fmt = fp8_format(cfg.kv_cache_dtype);
  const float fp8_max_value = numeric::fp8_max(fmt);
  const HostTensor& cache = is_v ? t.v_cache : t.k_cache;
  const HostTensor& scales = is_v ? t.v_scale : t.k_scale;
  const int64_t head_offset = cfg.num_heads_q + (is_v ? cfg.num_heads_kv : 0);
  const char* which = is_v ? "v" : "k";
  for (int64_t tok = 0; tok < c.num_tokens; ++tok) {
    const int64_t slot = c.slots[static_cast<std::size_t>(tok)];
    if (slot < 0) continue;
    const int64_t block = slot / cfg.block_size, in_block = slot % cfg.block_size;
    for (int64_t h = 0; h < cfg.num_heads_kv; ++h) {
      // amax over the head as the spec reduces it (fmaxf ignores NaN), from what was quantised.
      float amax = 0.0f;
      for (int64_t d = 0; d < cfg.head_dim; ++d) {
        amax = qk_math::amax_step(amax, qkv_value(cfg, t.qkv, tok, head_offset + h, d));
      }
      const float expected_scale = qk_math::fp8_scale_from_amax(amax, fp8_max_value, cfg.amax_floor);
      const float stored_scale = scales.as<float>()[static_cast<std::size_t>(
          layout::scale_offset(cfg.cache_shape(), block, h, in_block))];
      if (numeric::float_bits(stored_scale) != numeric::float_bits(expected_scale)) {
        RC_FAIL(fmt::format("{}_scale at (token {}, slot {}, head {}): {} ({}) but amax {} / {} = {}",
                            which, tok, slot, h, stored_scale,
                            bits_hex(numeric::float_bits(stored_scale), 8), amax, fp8_max_value,
                            expected_scale));
      }
      const bool zero_head = amax == 0.0f;
      for (int64_t d = 0; d < cfg.head_dim; ++d) {
        const double v = qkv_value(cfg, t.qkv, tok, head_offset + h, d);
        const double deq = is_v ? cache_v_value(cfg, cache, scales, block, h, in_block, d)
                                : cache_k_value(cfg, cache, scales, block, h, in_block, d);
        const auto where = [&] {
          return fmt::format("{}_cache (token {}, slot {}, head {}, dim {})", which, tok, slot, h, d);
        };
        if (zero_head) {
          // The configured behaviour of an all-zero head.
          if (cfg.amax_floor) {
            if (deq != 0.0) RC_FAIL(fmt::format("{}: zero head with amax floor gives {}", where(), deq));
          } else if (!std::isnan(deq)) {
            RC_FAIL(fmt::format("{}: zero head without amax floor must be NaN (0/0), is {}", where(),
                                deq));
          }
          continue;
        }
        const double s = stored_scale;
        // Half a step at the quantised magnitude, plus a few fp32 ulps of the value: v / s and
        // code * s are each rounded to fp32, which can move an exact tie by an ulp.
        const double bound = fp8_half_step(std::fabs(v) / s, fmt) * s +
                             std::ldexp(std::max(std::fabs(v), std::fabs(deq)), -21);
        if (!(std::fabs(deq - v) <= bound)) {
          RC_FAIL(fmt::format("{}: dequantised {} vs quantised input {}: |err| {} > half step x "
                              "scale {} ({} max {})",
                              where(), deq, v, std::fabs(deq - v), bound,
                              kv_cache_dtype_name(cfg.kv_cache_dtype), fp8_max_value));
        }
      }
    }
  }
}

CaseOptions fp8_options() {
  CaseOptions o;
  o.allow_fp8 = true;
  // NaN/Inf inputs are the bit-exact property's business; here only finite data and the zero head.
  o.allow_special_inputs = false;
  o.allow_zero_head = true;
  return o;
}

rc::Gen<CallCase> gen_fp8_case() {
  return rc::gen::exec([] {
    CaseOptions o = fp8_options();
    o.kv_cache_dtype = *rc::gen::element(KvCacheDtype::kFp8E4M3FN, KvCacheDtype::kFp8E4M3FNUZ);
    return *gen_call_case(o);
  });
}

void prop_fp8_fused() {
  const CallCase c = *gen_fp8_case();
  classify_case(c);
  classify("amax_floor", c.cfg.amax_floor ? "floored" : "none");
  const CallTensors t = run_fused_path(c);
  check_fp8_cache(c, t, /*is_v=*/false);
  check_fp8_cache(c, t, /*is_v=*/true);
}

RCSIM_PROP(Fp8Props, FusedCacheWithinHalfStepAndZeroHeadAsConfigured, ()) { prop_fp8_fused(); }

RCSIM_PROP(Fp8Props, FallbackPerTokenQuantWithinHalfStepAndZeroHeadAsConfigured, ()) {
  const CallCase c = *gen_fp8_case();
  classify_case(c);
  classify("amax_floor", c.cfg.amax_floor ? "floored" : "none");
  const CallTensors t = run_nonfused_path(c, FallbackOrder::kNormThenRope);
  check_fp8_cache(c, t, /*is_v=*/false);
  check_fp8_cache(c, t, /*is_v=*/true);
}

class Fp8Negative : public ::testing::TestWithParam<Mutant> {};

TEST_P(Fp8Negative, Fp8MutantFalsifiesFusedFp8Property) {
  ScopedMutant mutant(GetParam());
  RunOptions options;
  options.disable_shrinking = true;
  options.replay_regressions = false;
  options.quiet = true;
  const Outcome outcome =
      check(fmt::format("Fp8Props/Fused[{}]", mutant_name(GetParam())), &prop_fp8_fused, options);
  expect_failed(outcome, mutant_name(GetParam()));
}

INSTANTIATE_TEST_SUITE_P(Fp8Mutants, Fp8Negative,
                         ::testing::Values(Mutant::kFp8MaxOtherFormat, Mutant::kScaleNotStored,
                                           Mutant::kSlotOffByOne),
                         [](const ::testing::TestParamInfo<Mutant>& param_info) {
                           std::string name(mutant_name(param_info.param));
                           for (char& ch : name) {
                             if (ch == '-') ch = '_';
                           }
                           return name;
                         });

}  // namespace
}  // namespace rcsim::props
