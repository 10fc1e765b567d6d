// Goal: every CPU kernel produces exactly the bits semantics.md prescribes on tiny cases
// (T=2, Hq=Hkv=1, D=64, bf16, 16-token blocks, 2 blocks), including the cache bytes it must not
// touch.
// Method: inputs come from closed formulas (below, and the same in gen_known_answers.py); the
// expected bits in known_answers.inc were produced by that independent Python model (IEEE fp32
// emulated per operation, rational bf16/fp8 rounding), not by the code under test. Outputs and
// caches are sentinel-filled before each run; every cache byte not listed must keep its sentinel.
#include <cstdint>
#include <cstring>

#include <gtest/gtest.h>

#include "kernels/cpu/detail.h"
#include "kernels/cpu/kernels.h"
#include "kernels/cpu/tests/test_support.h"

namespace rcsim::cpu {
namespace {

struct CacheEntry {
  int64_t offset;  // element offset in the cache tensor
  uint32_t bits;   // bf16 bits or fp8 code
};

#include "kernels/cpu/tests/known_answers.inc"

using testing::kCacheSentinel;
using testing::kScaleSentinel;

constexpr int64_t kT = 2, kD = 64, kMaxPos = 8;

double qkv_in(int64_t t, int64_t c) {
  return static_cast<double>((c * 7 + t * 13) % 23 - 11) / 8 + 1.0 / 16;
}
double qw_in(int64_t d) { return 1 + static_cast<double>((d * 5) % 9 - 4) / 16; }
double kw_in(int64_t d) { return 1 + static_cast<double>((d * 3 + 1) % 7 - 3) / 16; }
double cos_in(int64_t p, int64_t j) { return static_cast<double>((p * 5 + j * 3) % 15 - 7) / 8 + 1.0 / 32; }
double sin_in(int64_t p, int64_t j) { return static_cast<double>((p * 3 + j * 7) % 13 - 6) / 8 + 1.0 / 32; }

uint16_t bf(double v) { return numeric::float_to_bf16_bits(static_cast<float>(v)); }

AttentionConfig tiny_config(KvCacheDtype kv) {
  AttentionConfig c;
  c.num_heads_q = 1;
  c.num_heads_kv = 1;
  c.head_dim = kD;
  c.rotary_dim = kD;
  c.is_neox = true;
  c.eps = 1e-6f;
  c.act_dtype = DType::kBF16;
  c.kv_cache_dtype = kv;
  c.block_size = 16;
  c.num_blocks = 2;
  c.max_position = kMaxPos;
  return c;
}

// The formula inputs as a Layer (caches sentinel-filled; V cache 5-D shuffle unless plain_v).
testing::Layer tiny_layer(KvCacheDtype kv, std::initializer_list<int64_t> slots, bool plain_v) {
  Prng unused(0);  // make_layer draws randoms we overwrite below
  testing::LayerOptions opt;
  opt.tokens = kT;
  opt.plain_v = plain_v;
  testing::Layer l = testing::make_layer(tiny_config(kv), unused, opt);
  auto qkv = l.qkv.as<uint16_t>();
  for (int64_t t = 0; t < kT; ++t) {
    for (int64_t c = 0; c < 3 * kD; ++c) qkv[static_cast<std::size_t>(t * 3 * kD + c)] = bf(qkv_in(t, c));
  }
  for (int64_t d = 0; d < kD; ++d) {
    l.q_weight.as<uint16_t>()[static_cast<std::size_t>(d)] = bf(qw_in(d));
    l.k_weight.as<uint16_t>()[static_cast<std::size_t>(d)] = bf(kw_in(d));
  }
  auto cs = l.cos_sin.as<uint16_t>();
  for (int64_t p = 0; p < kMaxPos; ++p) {
    for (int64_t j = 0; j < kD / 2; ++j) {
      cs[static_cast<std::size_t>(p * kD + j)] = bf(cos_in(p, j));
      cs[static_cast<std::size_t>(p * kD + kD / 2 + j)] = bf(sin_in(p, j));
    }
  }
  l.positions.as<int64_t>()[0] = 3;
  l.positions.as<int64_t>()[1] = 6;
  std::size_t i = 0;
  for (int64_t s : slots) l.slots.as<int64_t>()[i++] = s;
  return l;
}

template <std::size_t N>
void expect_u16(const uint16_t* got, const uint16_t (&expected)[N], const char* what) {
  int bad = 0;
  for (std::size_t i = 0; i < N; ++i) {
    if (got[i] != expected[i] && bad++ < 5) {
      ADD_FAILURE() << what << " element " << i << " (token " << i / (N / kT) << ", dim "
                    << i % kD << "): got 0x" << std::hex << got[i] << " expected 0x"
                    << expected[i];
    }
  }
  EXPECT_EQ(bad, 0) << what;
}

// Every listed cache entry holds its bits; every other byte of the cache is still the sentinel.
template <std::size_t N>
void expect_cache(const HostTensor& cache, const CacheEntry (&entries)[N], const char* what) {
  const int64_t elem = dtype_size_bytes(cache.dtype());
  std::vector<bool> listed(static_cast<std::size_t>(cache.numel()), false);
  for (const CacheEntry& e : entries) {
    ASSERT_LT(e.offset, cache.numel()) << what;
    uint32_t got = 0;
    std::memcpy(&got, cache.data() + e.offset * elem, static_cast<std::size_t>(elem));
    EXPECT_EQ(got, e.bits) << what << " at element " << e.offset;
    listed[static_cast<std::size_t>(e.offset)] = true;
  }
  int64_t touched = 0;
  const auto* bytes = reinterpret_cast<const uint8_t*>(cache.data());
  for (int64_t i = 0; i < cache.numel(); ++i) {
    if (listed[static_cast<std::size_t>(i)]) continue;
    for (int64_t b = 0; b < elem; ++b) touched += bytes[i * elem + b] != kCacheSentinel;
  }
  EXPECT_EQ(touched, 0) << what << ": bytes outside the mapped slots changed";
}

void expect_scales(const HostTensor& scales, std::initializer_list<std::pair<int64_t, uint32_t>> at,
                   const char* what) {
  const auto* words = reinterpret_cast<const uint32_t*>(scales.data());
  std::vector<bool> listed(static_cast<std::size_t>(scales.numel()), false);
  for (auto [off, bits] : at) {
    EXPECT_EQ(words[off], bits) << what << " scale at " << off;
    listed[static_cast<std::size_t>(off)] = true;
  }
  const uint32_t sentinel = 0x5A5A5A5Au;
  static_assert(kScaleSentinel == 0x5A);
  for (int64_t i = 0; i < scales.numel(); ++i) {
    if (!listed[static_cast<std::size_t>(i)]) {
      EXPECT_EQ(words[i], sentinel) << what << " at " << i;
    }
  }
}

TEST(KnownAnswer, RmsNormOfQHeads) {
  testing::Layer l = tiny_layer(KvCacheDtype::kAuto, {17, -1}, false);
  HostTensor out(DType::kBF16, {kT, 1, kD});
  out.fill_pattern(kCacheSentinel);
  RmsNormArgs a;
  a.input = l.qkv_views().q;
  a.output = out.view();
  a.weight = l.q_weight.view();
  a.eps = 1e-6f;
  CpuRmsNorm k;
  const KernelRun r = k.run(a);
  EXPECT_EQ(r.units_total, 2);
  EXPECT_EQ(r.units_completed, 2);
  expect_u16(out.as<uint16_t>().data(), kRmsNormQ, "rms_norm q");
}

void run_rotary_case(int64_t rot, bool neox, const uint16_t (&expected)[2 * kT * kD], const char* what) {
  testing::Layer l = tiny_layer(KvCacheDtype::kAuto, {17, -1}, false);
  const HostTensor before = l.qkv;
  RotaryArgs a;
  const QkvViews v = l.qkv_views();
  a.q = v.q;
  a.k = v.k;
  a.positions = l.positions.view();
  // The table's row is [cos(rot/2) | sin(rot/2)]: a rot-wide table with the formula values.
  HostTensor cs(DType::kBF16, {kMaxPos, rot});
  for (int64_t p = 0; p < kMaxPos; ++p) {
    for (int64_t j = 0; j < rot / 2; ++j) {
      cs.as<uint16_t>()[static_cast<std::size_t>(p * rot + j)] = bf(cos_in(p, j));
      cs.as<uint16_t>()[static_cast<std::size_t>(p * rot + rot / 2 + j)] = bf(sin_in(p, j));
    }
  }
  a.cos_sin_cache = cs.view();
  a.rotary_dim = rot;
  a.is_neox = neox;
  CpuRotaryEmbedding k;
  EXPECT_EQ(k.run(a).units_completed, 4);
  // Expected order: q head of tokens 0, 1, then k head of tokens 0, 1.
  std::vector<uint16_t> got;
  auto qkv = l.qkv.as<uint16_t>();
  for (int64_t head : {0, 1}) {
    for (int64_t t = 0; t < kT; ++t) {
      for (int64_t d = 0; d < kD; ++d) got.push_back(qkv[static_cast<std::size_t>(t * 3 * kD + head * kD + d)]);
    }
  }
  expect_u16(got.data(), expected, what);
  // V untouched.
  for (int64_t t = 0; t < kT; ++t) {
    for (int64_t d = 0; d < kD; ++d) {
      const auto i = static_cast<std::size_t>(t * 3 * kD + 2 * kD + d);
      EXPECT_EQ(qkv[i], before.as<uint16_t>()[i]) << "v changed at token " << t << " dim " << d;
    }
  }
}

TEST(KnownAnswer, RotaryNeoxFull) { run_rotary_case(kD, true, kRotaryNeox, "rotary neox"); }
TEST(KnownAnswer, RotaryGptjPartial32) {
  run_rotary_case(32, false, kRotaryGptjRot32, "rotary gptj rot 32");
}

TEST(KnownAnswer, FusedAutoWritesQkBackSkipsPaddedCacheAndLeavesV) {
  testing::Layer l = tiny_layer(KvCacheDtype::kAuto, {17, -1}, false);
  CpuFusedQkNormRopeCache k;
  const KernelRun r = k.run(l.fused_args());
  EXPECT_EQ(r.units_total, 6);
  EXPECT_EQ(r.units_completed, 6);
  expect_u16(l.qkv.as<uint16_t>().data(), kFusedAutoQkv, "fused auto qkv");
  expect_cache(l.k_cache, kFusedAutoKCache, "fused auto k_cache");
  expect_cache(l.v_cache, kFusedAutoVCache, "fused auto v_cache");
}

TEST(KnownAnswer, FusedFp8DividesByPerTokenScaleAndStoresScales) {
  testing::Layer l = tiny_layer(KvCacheDtype::kFp8E4M3FN, {17, -1}, false);
  CpuFusedQkNormRopeCache k;
  k.run(l.fused_args());
  expect_u16(l.qkv.as<uint16_t>().data(), kFusedFp8FnQkv, "fused fp8 qkv");
  expect_cache(l.k_cache, kFusedFp8FnKCache, "fused fp8 k_cache");
  expect_cache(l.v_cache, kFusedFp8FnVCache, "fused fp8 v_cache");
  // slot 17 = block 1, token 1: scale offset (1*1 + 0)*16 + 1 = 17.
  expect_scales(l.k_scale, {{17, kFusedFp8FnScales[0]}}, "k_scale");
  expect_scales(l.v_scale, {{17, kFusedFp8FnScales[1]}}, "v_scale");
}

TEST(KnownAnswer, ReshapeAndCacheFp8PerTensorPlainV) {
  testing::Layer l = tiny_layer(KvCacheDtype::kFp8E4M3FN, {17, 2}, true);
  const QkvViews v = l.qkv_views();
  ReshapeAndCacheArgs a;
  a.cfg = l.cfg;
  a.key = v.k;
  a.value = v.v;
  a.slot_mapping = l.slots.view();
  a.cache = l.cache();
  a.v_layout = VCacheLayout::kPlain;
  a.k_scale = 0.5f;
  a.v_scale = 0.25f;
  CpuReshapeAndCache k;
  EXPECT_EQ(k.run(a).units_completed, 2);
  expect_cache(l.k_cache, kReshapeFp8KCache, "reshape fp8 k_cache");
  expect_cache(l.v_cache, kReshapeFp8VCache, "reshape fp8 v_cache");
  expect_scales(l.k_scale, {}, "k_scale untouched");
}

TEST(KnownAnswer, PerTokenQuantFnuzMultipliesByReciprocal) {
  testing::Layer l = tiny_layer(KvCacheDtype::kFp8E4M3FNUZ, {17, 2}, false);
  const QkvViews v = l.qkv_views();
  PerTokenQuantCacheArgs a;
  a.cfg = l.cfg;
  a.key = v.k;
  a.value = v.v;
  a.slot_mapping = l.slots.view();
  a.cache = l.cache();
  a.v_layout = VCacheLayout::kShuffle;
  CpuPerTokenQuantCache k;
  EXPECT_EQ(k.run(a).units_completed, 2);
  expect_cache(l.k_cache, kPerTokenKCache, "per-token k_cache");
  expect_cache(l.v_cache, kPerTokenVCache, "per-token v_cache");
  expect_scales(l.k_scale, {{17, kPerTokenKScales[0]}, {2, kPerTokenKScales[1]}}, "k_scale");
  expect_scales(l.v_scale, {{17, kPerTokenVScales[0]}, {2, kPerTokenVScales[1]}}, "v_scale");
}

TEST(KnownAnswer, BranchBRopesQAlwaysAndKOnlyForCachedTokens) {
  testing::Layer l = tiny_layer(KvCacheDtype::kAuto, {17, -1}, true);
  const QkvViews v = l.qkv_views();
  RopeReshapeCacheArgs a;
  a.cfg = l.cfg;
  a.q = v.q;
  a.k = v.k;
  a.v = v.v;
  a.cos_sin_cache = l.cos_sin.view();
  a.positions = l.positions.view();
  a.slot_mapping = l.slots.view();
  a.cache = l.cache();
  a.v_layout = VCacheLayout::kPlain;
  CpuRopeReshapeCache k;
  EXPECT_EQ(k.run(a).units_completed, 2);
  expect_u16(l.qkv.as<uint16_t>().data(), kBranchBQkv, "branch B qkv");
  expect_cache(l.k_cache, kBranchBKCache, "branch B k_cache");
  expect_cache(l.v_cache, kBranchBVCache, "branch B v_cache");
}

}  // namespace
}  // namespace rcsim::cpu
