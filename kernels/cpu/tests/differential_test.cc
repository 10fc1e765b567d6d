// Goal: the fused kernel equals the non-fused composition in the model's order (norms, RoPE,
// cache) bit for bit on the Qwen3 shapes, and PR #279's fallback order (RoPE, then norms) equals
// it only when the norm weights are pair-symmetric; every mutant hook in the fused kernel bites.
// Method: random non-zero inputs (one seed, printed) for Qwen3-0.6B 16/8, 8B 32/8, 32B 64/8 and
// 235B-per-rank 8/1 heads, D=128, real cos/sin tables (theta 1e6), ~1/4 padded tokens, sentinel
// caches. "auto": qkv, K cache, V cache compared byte for byte. fp8: q/k bit-exact, scales
// bit-exact, the cache codes that differ (fused divides, the per-token kernel multiplies by the
// reciprocal) counted, printed, and required to be adjacent codes. PR order: max |diff| and
// cosine similarity printed; symmetric weights must agree within a bf16-derived tolerance,
// asymmetric ones must exceed it.
#include <cmath>
#include <cstdint>
#include <cstdio>

#include <gtest/gtest.h>

#include "core/mutants.h"
#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/nonfused_reference.h"
#include "kernels/cpu/tests/test_support.h"

namespace rcsim::cpu {
namespace {

struct Shape {
  const char* model;
  int64_t heads_q;
  int64_t heads_kv;
};
constexpr Shape kQwen3Shapes[] = {
    {"Qwen3-0.6B", 16, 8}, {"Qwen3-8B", 32, 8}, {"Qwen3-32B", 64, 8}, {"Qwen3-235B/TP8", 8, 1}};

AttentionConfig qwen3_config(const Shape& s, KvCacheDtype kv, bool neox) {
  AttentionConfig c;
  c.num_heads_q = s.heads_q;
  c.num_heads_kv = s.heads_kv;
  c.head_dim = 128;
  c.rotary_dim = 128;
  c.is_neox = neox;
  c.eps = 1e-6f;
  c.act_dtype = DType::kBF16;
  c.kv_cache_dtype = kv;
  c.block_size = 16;
  c.num_blocks = 8;
  c.max_position = 2048;
  return c;
}

// Runs fused on `fused` and the non-fused composition in `order` on `ref` (a copy).
void run_both(testing::Layer& fused, testing::Layer& ref, FallbackOrder order) {
  CpuBackend backend;
  const KernelSet ks = backend.kernels();
  ks.fused->run(fused.fused_args());
  run_nonfused(ks, order, ref.nonfused_args());
}

TEST(FusedVsModelOrder, AutoCacheBitExactOnQwen3Shapes) {
  const uint64_t seed = testing::test_seed();
  int index = 0;
  for (const Shape& s : kQwen3Shapes) {
    for (bool neox : {true, false}) {
      Prng rng = Prng::stream(seed, "fused-vs-model-auto", index++);
      testing::LayerOptions opt;
      opt.tokens = 24;
      testing::Layer a = testing::make_layer(qwen3_config(s, KvCacheDtype::kAuto, neox), rng, opt);
      testing::Layer b = a;
      const HostTensor original = a.qkv;
      run_both(a, b, FallbackOrder::kNormThenRope);
      const auto qkv_bad = testing::first_head_mismatch(
          TensorView::contiguous(a.qkv.data(), DType::kBF16, {24, a.cfg.num_heads_q + 2 * a.cfg.num_heads_kv, 128}),
          TensorView::contiguous(b.qkv.data(), DType::kBF16, {24, b.cfg.num_heads_q + 2 * b.cfg.num_heads_kv, 128}));
      EXPECT_FALSE(qkv_bad.has_value()) << s.model << (neox ? " neox" : " gptj") << " qkv "
                                        << *qkv_bad << " " << testing::repro_line();
      EXPECT_FALSE(testing::first_byte_mismatch(a.k_cache, b.k_cache).has_value())
          << s.model << " k_cache " << testing::repro_line();
      EXPECT_FALSE(testing::first_byte_mismatch(a.v_cache, b.v_cache).has_value())
          << s.model << " v_cache " << testing::repro_line();
      // Non-vacuous: the kernel changed q/k and wrote the cache.
      EXPECT_TRUE(testing::first_byte_mismatch(a.qkv, original).has_value());
      testing::Layer empty = a;
      empty.reset_caches();
      EXPECT_TRUE(testing::first_byte_mismatch(a.k_cache, empty.k_cache).has_value());
      std::printf("%s %s auto: fused == model-order non-fused (qkv %lld B, caches %lld B) bit for bit\n",
                  s.model, neox ? "neox" : "gptj", static_cast<long long>(a.qkv.bytes()),
                  static_cast<long long>(a.k_cache.bytes() + a.v_cache.bytes()));
    }
  }
}

TEST(FusedVsModelOrder, Fp8QkBitExactCacheDifferencesCounted) {
  const uint64_t seed = testing::test_seed();
  int index = 0;
  for (KvCacheDtype kv : {KvCacheDtype::kFp8E4M3FN, KvCacheDtype::kFp8E4M3FNUZ}) {
    for (const Shape& s : kQwen3Shapes) {
      Prng rng = Prng::stream(seed, "fused-vs-model-fp8", index++);
      testing::LayerOptions opt;
      opt.tokens = 24;
      testing::Layer a = testing::make_layer(qwen3_config(s, kv, true), rng, opt);
      testing::Layer b = a;
      run_both(a, b, FallbackOrder::kNormThenRope);
      EXPECT_FALSE(testing::first_byte_mismatch(a.qkv, b.qkv).has_value())
          << s.model << " qkv " << testing::repro_line();
      EXPECT_FALSE(testing::first_byte_mismatch(a.k_scale, b.k_scale).has_value()) << s.model;
      EXPECT_FALSE(testing::first_byte_mismatch(a.v_scale, b.v_scale).has_value()) << s.model;
      int64_t differing = 0, non_adjacent = 0, written = 0;  // written: bytes not the sentinel
      for (int side = 0; side < 2; ++side) {
        const HostTensor& x = side == 0 ? a.k_cache : a.v_cache;
        const HostTensor& y = side == 0 ? b.k_cache : b.v_cache;
        const auto* p = reinterpret_cast<const uint8_t*>(x.data());
        const auto* q = reinterpret_cast<const uint8_t*>(y.data());
        for (int64_t i = 0; i < x.bytes(); ++i) {
          written += p[i] != testing::kCacheSentinel;
          if (p[i] == q[i]) continue;
          ++differing;
          // Same sign and one code apart: divide vs multiply-by-reciprocal moves a value by at
          // most one fp32 ulp, which can flip only a rounding decision between neighbours.
          const bool adjacent = ((p[i] ^ q[i]) & 0x80) == 0 && std::abs(int{p[i]} - int{q[i]}) == 1;
          non_adjacent += !adjacent;
        }
      }
      EXPECT_GT(written, 0);
      EXPECT_EQ(non_adjacent, 0) << s.model << " " << testing::repro_line();
      std::printf("%s %s: q/k bit-exact; cache bytes differing (divide vs x*(1/scale)): %lld of %lld non-sentinel\n",
                  s.model, kv_cache_dtype_name(kv).data(), static_cast<long long>(differing),
                  static_cast<long long>(written));
    }
  }
}

struct Agreement {
  double max_abs_diff = 0;
  double cosine = 0;
  int64_t outside_tolerance = 0;
  std::string first_bad;
};

// Compares q and k heads of two qkv buffers element-wise: |a-b| <= atol + rtol*|b|.
Agreement compare_qk(const testing::Layer& a, const testing::Layer& b, double atol, double rtol) {
  Agreement r;
  const int64_t H = a.cfg.num_heads_q + a.cfg.num_heads_kv, W = a.cfg.qkv_width(), D = a.cfg.head_dim;
  double dot = 0, na = 0, nb = 0;
  const auto x = a.qkv.as<uint16_t>(), y = b.qkv.as<uint16_t>();
  for (int64_t t = 0; t < a.tokens; ++t) {
    for (int64_t h = 0; h < H; ++h) {
      for (int64_t d = 0; d < D; ++d) {
        const auto i = static_cast<std::size_t>(t * W + h * D + d);
        const double u = activation_to_float(x[i], DType::kBF16);
        const double v = activation_to_float(y[i], DType::kBF16);
        const double diff = std::fabs(u - v);
        r.max_abs_diff = std::max(r.max_abs_diff, diff);
        dot += u * v;
        na += u * u;
        nb += v * v;
        if (diff > atol + rtol * std::fabs(v) && r.outside_tolerance++ == 0) {
          r.first_bad = fmt::format("(token {}, head {}, dim {}): {} vs {}", t, h, d, u, v);
        }
      }
    }
  }
  r.cosine = dot / std::sqrt(na * nb);
  return r;
}

TEST(FusedVsPrOrder, EqualForPairSymmetricWeightsDifferentOtherwise) {
  const uint64_t seed = testing::test_seed();
  // bf16 has 8 significant bits: unit roundoff u = 2^-8. Each path rounds twice, and the two rms
  // factors come from differently rounded values: allow 4u relative, and 4u absolute for
  // normalised values of order 1.
  const double u_bf16 = std::ldexp(1.0, -8);
  const double rtol = 4 * u_bf16, atol = 4 * u_bf16;
  int index = 0;
  for (const Shape& s : kQwen3Shapes) {
    for (bool neox : {true, false}) {
      for (auto sym : {testing::WeightSymmetry::kPairSymmetric, testing::WeightSymmetry::kNone}) {
        Prng rng = Prng::stream(seed, "fused-vs-pr", index++);
        testing::LayerOptions opt;
        opt.tokens = 16;
        opt.weights = sym;
        testing::Layer a = testing::make_layer(qwen3_config(s, KvCacheDtype::kAuto, neox), rng, opt);
        testing::Layer b = a;
        run_both(a, b, FallbackOrder::kRopeThenNorm);
        const Agreement r = compare_qk(a, b, atol, rtol);
        const bool symmetric = sym == testing::WeightSymmetry::kPairSymmetric;
        std::printf("%s %s weights %s: fused vs PR-order max|diff| %.6g cosine %.9f outside tol %lld\n",
                    s.model, neox ? "neox" : "gptj", symmetric ? "pair-symmetric" : "asymmetric",
                    r.max_abs_diff, r.cosine, static_cast<long long>(r.outside_tolerance));
        if (symmetric) {
          EXPECT_EQ(r.outside_tolerance, 0) << s.model << " first " << r.first_bad << " "
                                            << testing::repro_line();
        } else {
          EXPECT_GT(r.outside_tolerance, 0) << s.model << " asymmetric weights should diverge "
                                            << testing::repro_line();
          EXPECT_GT(r.max_abs_diff, 8 * atol) << s.model;
        }
      }
    }
  }
}

// Each kernel mutant must change the fused kernel's output against the same kernel without it.
TEST(FusedMutants, EveryKernelMutantChangesTheOutput) {
  const uint64_t seed = testing::test_seed();
  const Mutant kernel_mutants[] = {Mutant::kEpsOutsideRoot,   Mutant::kRopeSignFlipped,
                                   Mutant::kPairingSwapped,   Mutant::kSlotOffByOne,
                                   Mutant::kVWrittenBack,     Mutant::kFp8MaxOtherFormat,
                                   Mutant::kPaddedTokensCached, Mutant::kScaleNotStored};
  int index = 0;
  for (Mutant m : kernel_mutants) {
    Prng rng = Prng::stream(seed, "mutants", index++);
    testing::LayerOptions opt;
    opt.tokens = 12;
    opt.padded_one_in = 3;
    AttentionConfig cfg = qwen3_config(kQwen3Shapes[0], KvCacheDtype::kFp8E4M3FN, true);
    // eps outside the root is visible only where eps matters against the mean square.
    testing::Layer a = testing::make_layer(cfg, rng, opt);
    if (m == Mutant::kEpsOutsideRoot) {
      for (uint16_t& v : a.qkv.as<uint16_t>()) v = static_cast<uint16_t>((v & 0x8000u) | 0x3780u);
    }
    int64_t padded = 0;
    for (int64_t s : a.slots.as<int64_t>()) padded += s < 0;
    ASSERT_GT(padded, 0);
    testing::Layer b = a;
    {
      ScopedMutant scoped(m);
      CpuBackend backend;
      backend.kernels().fused->run(a.fused_args());
    }
    // Baseline: the same kernel without the mutant (the reference would differ anyway on fp8
    // cache codes, divide vs multiply, which would make this check vacuous).
    CpuBackend backend;
    backend.kernels().fused->run(b.fused_args());
    const bool qkv_diff = testing::first_byte_mismatch(a.qkv, b.qkv).has_value();
    const bool k_diff = testing::first_byte_mismatch(a.k_cache, b.k_cache).has_value();
    const bool v_diff = testing::first_byte_mismatch(a.v_cache, b.v_cache).has_value();
    const bool s_diff = testing::first_byte_mismatch(a.k_scale, b.k_scale).has_value() ||
                        testing::first_byte_mismatch(a.v_scale, b.v_scale).has_value();
    EXPECT_TRUE(qkv_diff || k_diff || v_diff || s_diff)
        << "mutant " << mutant_name(m) << " went unnoticed " << testing::repro_line();
    std::printf("mutant %-22s qkv %d k_cache %d v_cache %d scales %d\n", mutant_name(m).data(),
                qkv_diff, k_diff, v_diff, s_diff);
  }
}

}  // namespace
}  // namespace rcsim::cpu
