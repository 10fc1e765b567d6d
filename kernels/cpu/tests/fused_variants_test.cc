// Goal: the fused kernel's less common paths behave as semantics.md says: the out-of-place variant
// (q_out / k_out set) leaves qkv untouched and produces the in-place results; an all-zero head
// quantised to fp8 gives NaN codes without the amax floor (AITER of March 2026: 0/0) and zeros
// with it (AITER@HEAD, 1e-8), in both the fused and the per-token cache kernel; fp16 activations
// agree with the model-order composition bit for bit as bf16 does.
// Method: random non-zero layers (one printed seed), sentinel caches, byte comparisons; the zero
// head is made by clearing one K and one V head of a cached token.
#include <cmath>
#include <cstdio>

#include <gtest/gtest.h>

#include "kernels/common/cache_layout.h"
#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/kernels.h"
#include "kernels/cpu/nonfused_reference.h"
#include "kernels/cpu/tests/test_support.h"

namespace rcsim::cpu {
namespace {

AttentionConfig config(KvCacheDtype kv, DType act = DType::kBF16) {
  AttentionConfig c;
  c.num_heads_q = 8;
  c.num_heads_kv = 2;
  c.head_dim = 128;
  c.rotary_dim = 128;
  c.act_dtype = act;
  c.kv_cache_dtype = kv;
  c.num_blocks = 4;
  c.max_position = 1024;
  return c;
}

TEST(FusedVariants, OutOfPlaceLeavesQkvUntouchedAndMatchesInPlace) {
  for (KvCacheDtype kv : {KvCacheDtype::kAuto, KvCacheDtype::kFp8E4M3FNUZ}) {
    Prng rng = Prng::stream(testing::test_seed(), "out-of-place", static_cast<int>(kv));
    testing::LayerOptions opt;
    opt.tokens = 10;
    testing::Layer in_place = testing::make_layer(config(kv), rng, opt);
    testing::Layer out_of_place = in_place;
    const HostTensor original = in_place.qkv;
    const AttentionConfig& c = in_place.cfg;
    HostTensor q_out(c.act_dtype, {opt.tokens, c.num_heads_q, c.head_dim});
    HostTensor k_out(c.act_dtype, {opt.tokens, c.num_heads_kv, c.head_dim});
    q_out.fill_pattern(testing::kCacheSentinel);
    k_out.fill_pattern(testing::kCacheSentinel);
    CpuFusedQkNormRopeCache k;
    k.run(in_place.fused_args());
    FusedQkNormRopeCacheArgs a = out_of_place.fused_args();
    a.q_out = q_out.view();
    a.k_out = k_out.view();
    k.run(a);
    EXPECT_FALSE(testing::first_byte_mismatch(out_of_place.qkv, original).has_value())
        << "qkv written by the out-of-place variant " << testing::repro_line();
    const QkvViews v = in_place.qkv_views();
    const auto qbad = testing::first_head_mismatch(q_out.view(), v.q);
    const auto kbad = testing::first_head_mismatch(k_out.view(), v.k);
    EXPECT_FALSE(qbad.has_value()) << "q_out " << *qbad << " " << testing::repro_line();
    EXPECT_FALSE(kbad.has_value()) << "k_out " << *kbad << " " << testing::repro_line();
    EXPECT_FALSE(testing::first_byte_mismatch(out_of_place.k_cache, in_place.k_cache).has_value());
    EXPECT_FALSE(testing::first_byte_mismatch(out_of_place.v_cache, in_place.v_cache).has_value());
  }
}

// Index of the first cached token, and its slot.
std::pair<int64_t, int64_t> first_cached(const testing::Layer& l) {
  for (int64_t t = 0; t < l.tokens; ++t) {
    const int64_t s = l.slots.as<int64_t>()[static_cast<std::size_t>(t)];
    if (s >= 0) return {t, s};
  }
  return {-1, -1};
}

void zero_kv_head(testing::Layer& l, int64_t t, int64_t kv_head) {
  const AttentionConfig& c = l.cfg;
  auto x = l.qkv.as<uint16_t>();
  for (int64_t which : {c.num_heads_q + kv_head, c.num_heads_q + c.num_heads_kv + kv_head}) {
    for (int64_t d = 0; d < c.head_dim; ++d) {
      x[static_cast<std::size_t>(t * c.qkv_width() + which * c.head_dim + d)] = 0;
    }
  }
}

// Checks the cache codes and scales of (slot, head 0) after an all-zero K and V head.
void expect_zero_head_quant(const testing::Layer& l, int64_t slot, const char* kernel) {
  const AttentionConfig& c = l.cfg;
  const numeric::Fp8Format fmt = fp8_format(c.kv_cache_dtype);
  const layout::PagedCacheShape s = c.cache_shape();
  const int64_t b = slot / c.block_size, tok = slot % c.block_size;
  const float k_scale = l.k_scale.as<float>()[static_cast<std::size_t>(layout::scale_offset(s, b, 0, tok))];
  const float v_scale = l.v_scale.as<float>()[static_cast<std::size_t>(layout::scale_offset(s, b, 0, tok))];
  const auto* kc = reinterpret_cast<const uint8_t*>(l.k_cache.data());
  const auto* vc = reinterpret_cast<const uint8_t*>(l.v_cache.data());
  int64_t nan_codes = 0, zero_codes = 0;
  for (int64_t d = 0; d < c.head_dim; ++d) {
    for (uint8_t code : {kc[layout::k_xpacked_offset(s, b, 0, tok, d)], vc[layout::v_shuffle_offset(s, b, 0, tok, d)]}) {
      nan_codes += std::isnan(numeric::fp8_bits_to_float(code, fmt));
      // +-0: RoPE of a zero head yields -0 where cos or sin is negative; e4m3fn keeps -0 (0x80).
      zero_codes += numeric::fp8_bits_to_float(code, fmt) == 0.0f;
    }
  }
  if (c.amax_floor) {
    const float floor_scale = 1e-8f / numeric::fp8_max(fmt);
    EXPECT_EQ(k_scale, floor_scale) << kernel;
    EXPECT_EQ(v_scale, floor_scale) << kernel;
    EXPECT_EQ(zero_codes, 2 * c.head_dim) << kernel << " floor on: zero head must give zero codes";
  } else {
    EXPECT_EQ(k_scale, 0.0f) << kernel;
    EXPECT_EQ(v_scale, 0.0f) << kernel;
    EXPECT_EQ(nan_codes, 2 * c.head_dim) << kernel << " floor off: 0/0 must give NaN codes";
  }
  std::printf("%s %s amax_floor %s: zero head -> scale %g, %lld NaN codes, %lld zero codes\n",
              kernel, kv_cache_dtype_name(c.kv_cache_dtype).data(), c.amax_floor ? "on" : "off",
              static_cast<double>(k_scale), static_cast<long long>(nan_codes),
              static_cast<long long>(zero_codes));
}

TEST(FusedVariants, AllZeroHeadGivesNanWithoutAmaxFloorAndZerosWithIt) {
  int salt = 0;
  for (KvCacheDtype kv : {KvCacheDtype::kFp8E4M3FN, KvCacheDtype::kFp8E4M3FNUZ}) {
    for (bool floor_on : {false, true}) {
      Prng rng = Prng::stream(testing::test_seed(), "zero-head", salt++);
      testing::LayerOptions opt;
      opt.tokens = 6;
      opt.padded_one_in = 0;
      AttentionConfig c = config(kv);
      c.amax_floor = floor_on;
      testing::Layer fused = testing::make_layer(c, rng, opt);
      const auto [t, slot] = first_cached(fused);
      ASSERT_GE(t, 0);
      zero_kv_head(fused, t, 0);
      testing::Layer per_token = fused;
      CpuFusedQkNormRopeCache().run(fused.fused_args());
      expect_zero_head_quant(fused, slot, "fused");
      const QkvViews v = per_token.qkv_views();
      PerTokenQuantCacheArgs a;
      a.cfg = c;
      a.key = v.k;
      a.value = v.v;
      a.slot_mapping = per_token.slots.view();
      a.cache = per_token.cache();
      CpuPerTokenQuantCache().run(a);
      expect_zero_head_quant(per_token, slot, "per-token");
    }
  }
}

TEST(FusedVariants, Fp16ActivationsMatchModelOrderBitForBit) {
  for (bool neox : {true, false}) {
    Prng rng = Prng::stream(testing::test_seed(), "fp16", neox);
    testing::LayerOptions opt;
    opt.tokens = 16;
    AttentionConfig c = config(KvCacheDtype::kAuto, DType::kFP16);
    c.is_neox = neox;
    testing::Layer a = testing::make_layer(c, rng, opt);
    testing::Layer b = a;
    CpuBackend backend;
    backend.kernels().fused->run(a.fused_args());
    run_nonfused(backend.kernels(), FallbackOrder::kNormThenRope, b.nonfused_args());
    EXPECT_FALSE(testing::first_byte_mismatch(a.qkv, b.qkv).has_value()) << testing::repro_line();
    EXPECT_FALSE(testing::first_byte_mismatch(a.k_cache, b.k_cache).has_value());
    EXPECT_FALSE(testing::first_byte_mismatch(a.v_cache, b.v_cache).has_value());
  }
}

}  // namespace
}  // namespace rcsim::cpu
