// Goal: properties of the reference math that hold for any input: position 0 is the identity
// rotation; a rotation preserves each pair's norm; unit norm weights give rms ~ 1; the shared
// 32-lane reduction is the documented order.
// Method: random non-zero inputs (one printed seed) in bf16 and fp16, real cos/sin tables; the
// tolerances are derived from the dtype's unit roundoff u (bf16 2^-8, fp16 2^-11) and written
// beside each check; the measured worst case is printed.
#include <cmath>
#include <cstdio>

#include <gtest/gtest.h>

#include "kernels/common/qk_norm_rope_math.h"
#include "kernels/cpu/kernels.h"
#include "kernels/cpu/tests/test_support.h"

namespace rcsim::cpu {
namespace {

// Unit roundoff u = 2^-p (p significant bits): bf16 2^-8, fp16 2^-11.
double unit_roundoff(DType t) { return t == DType::kBF16 ? std::ldexp(1.0, -8) : std::ldexp(1.0, -11); }

AttentionConfig config(DType act, bool neox, int64_t rot) {
  AttentionConfig c;
  c.num_heads_q = 8;
  c.num_heads_kv = 2;
  c.head_dim = 128;
  c.rotary_dim = rot;
  c.is_neox = neox;
  c.act_dtype = act;
  c.max_position = 4096;
  c.num_blocks = 4;
  return c;
}

RotaryArgs rotary_args(const testing::Layer& l) {
  RotaryArgs a;
  const QkvViews v = l.qkv_views();
  a.q = v.q;
  a.k = v.k;
  a.positions = l.positions.view();
  a.cos_sin_cache = l.cos_sin.view();
  a.rotary_dim = l.cfg.rotary_dim;
  a.is_neox = l.cfg.is_neox;
  return a;
}

TEST(Invariants, PositionZeroIsTheIdentityRotation) {
  int salt = 0;
  for (DType act : {DType::kBF16, DType::kFP16}) {
    for (bool neox : {true, false}) {
      Prng rng = Prng::stream(testing::test_seed(), "pos0", salt++);
      testing::Layer l = testing::make_layer(config(act, neox, 128), rng);
      for (int64_t& p : l.positions.as<int64_t>()) p = 0;
      const HostTensor before = l.qkv;
      CpuRotaryEmbedding().run(rotary_args(l));
      const auto bad = testing::first_byte_mismatch(l.qkv, before);
      EXPECT_FALSE(bad.has_value()) << dtype_name(act) << (neox ? " neox" : " gptj") << " byte "
                                    << bad.value_or(-1) << " " << testing::repro_line();
    }
  }
}

TEST(Invariants, RotationPreservesEachPairsNorm) {
  int salt = 0;
  for (DType act : {DType::kBF16, DType::kFP16}) {
    for (bool neox : {true, false}) {
      for (int64_t rot : {128, 64}) {
        Prng rng = Prng::stream(testing::test_seed(), "pair-norm", salt++);
        testing::LayerOptions opt;
        opt.tokens = 32;
        testing::Layer l = testing::make_layer(config(act, neox, rot), rng, opt);
        const HostTensor before = l.qkv;
        CpuRotaryEmbedding().run(rotary_args(l));
        // |(a', b')| vs |(a, b)|, u = unit roundoff: cos and sin are rounded (each rel. <= u, so
        // sqrt(cos^2+sin^2) = 1 +- ~u), two products and a sum in fp32 (negligible), one rounding
        // of each output (rel. <= u). Bound ~2u; allow 3u. Dims >= rot stay bit for bit.
        const double u = unit_roundoff(act), tol = 3 * u;
        double worst = 0;
        const int64_t W = l.cfg.qkv_width(), D = 128;
        const auto x0 = before.as<uint16_t>(), x1 = l.qkv.as<uint16_t>();
        for (int64_t t = 0; t < opt.tokens; ++t) {
          for (int64_t h = 0; h < l.cfg.num_heads_q + l.cfg.num_heads_kv; ++h) {
            const int64_t base = t * W + h * D;
            for (int64_t d = 0; d < D; ++d) {
              const auto i = static_cast<std::size_t>(base + d);
              if (d >= rot) {
                ASSERT_EQ(x0[i], x1[i]) << "pass-through dim changed at (token " << t << ", head "
                                        << h << ", dim " << d << ")";
                continue;
              }
              const bool first = neox ? d < rot / 2 : d % 2 == 0;
              if (!first) continue;
              const auto j = static_cast<std::size_t>(base + (neox ? d + rot / 2 : d + 1));
              const double a = activation_to_float(x0[i], act), b = activation_to_float(x0[j], act);
              const double a1 = activation_to_float(x1[i], act), b1 = activation_to_float(x1[j], act);
              const double n0 = std::hypot(a, b), n1 = std::hypot(a1, b1);
              const double rel = std::fabs(n1 - n0) / n0;
              worst = std::max(worst, rel);
              ASSERT_LE(rel, tol) << "(token " << t << ", head " << h << ", dim " << d << ") "
                                  << testing::repro_line();
            }
          }
        }
        std::printf("%s %s rot %lld: worst pair-norm relative change %.3g (tolerance %.3g)\n",
                    dtype_name(act).data(), neox ? "neox" : "gptj", static_cast<long long>(rot),
                    worst, tol);
      }
    }
  }
}

TEST(Invariants, UnitWeightsGiveUnitRms) {
  int salt = 0;
  for (DType act : {DType::kBF16, DType::kFP16}) {
    Prng rng = Prng::stream(testing::test_seed(), "unit-rms", salt++);
    testing::LayerOptions opt;
    opt.tokens = 16;
    testing::Layer l = testing::make_layer(config(act, true, 128), rng, opt);
    for (uint16_t& w : l.q_weight.as<uint16_t>()) w = testing::act_bits(1.0f, act);
    RmsNormArgs a;
    a.input = a.output = l.qkv_views().q;
    a.weight = l.q_weight.view();
    CpuRmsNorm().run(a);
    // Each output element is rounded once (rel. <= u, u = unit roundoff), so the rms deviates from
    // 1 by at most ~u (eps = 1e-6 is negligible against inputs of magnitude >= 0.05). Allow 2u.
    const double u = unit_roundoff(act), tol = 2 * u;
    double worst = 0;
    const auto x = l.qkv.as<uint16_t>();
    for (int64_t t = 0; t < opt.tokens; ++t) {
      for (int64_t h = 0; h < l.cfg.num_heads_q; ++h) {
        double ss = 0;
        for (int64_t d = 0; d < 128; ++d) {
          const double v = activation_to_float(x[static_cast<std::size_t>(t * l.cfg.qkv_width() + h * 128 + d)], act);
          ss += v * v;
        }
        const double rms = std::sqrt(ss / 128);
        worst = std::max(worst, std::fabs(rms - 1));
        EXPECT_NEAR(rms, 1.0, tol) << "(token " << t << ", head " << h << ") " << testing::repro_line();
      }
    }
    std::printf("%s: worst |rms - 1| with unit weights %.3g (tolerance %.3g)\n",
                dtype_name(act).data(), worst, tol);
  }
}

TEST(Invariants, HeadSumSquaresFollowsTheLaneButterflyOrder) {
  // Values chosen so that the order matters in fp32: a large lane-0 value and many small ones.
  // Expected: the documented order written out by hand for D = 64 (n = 2 per lane): lane l sums
  // x[2l]^2 + x[2l+1]^2, then butterfly 16, 8, 4, 2, 1 - equivalent to a balanced tree over the
  // 32 lane sums in xor order.
  float x[64];
  for (int i = 0; i < 64; ++i) x[i] = 1.0f + static_cast<float>(i) * 0x1p-12f;
  x[0] = 4096.0f;
  float lanes[32];
  for (int l = 0; l < 32; ++l) lanes[l] = x[2 * l] * x[2 * l] + x[2 * l + 1] * x[2 * l + 1];
  for (int width = 16; width >= 1; width /= 2) {
    for (int l = 0; l < width; ++l) lanes[l] = lanes[l] + lanes[l + width];
  }
  EXPECT_EQ(numeric::float_bits(qk_math::head_sum_squares(x, 64)), numeric::float_bits(lanes[0]));
  // And the order is not the sequential one for this input (the test would not notice otherwise).
  float sequential = 0.0f;
  for (float v : x) sequential = sequential + v * v;
  EXPECT_NE(numeric::float_bits(sequential), numeric::float_bits(lanes[0]));
}

}  // namespace
}  // namespace rcsim::cpu
