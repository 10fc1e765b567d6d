// Goal: the paged-cache index formulas (kernels/common/cache_layout.h) are bijections onto whole
// caches, the kernels write exactly the elements the formulas name for the mapped slots (and no
// other byte), and the 64-bit offsets stay exact for caches beyond 4 GiB.
// Method: enumerate every (block, head, token, dim) of small caches of every x and check each
// offset is in range and hit exactly once; run the cache writers over every slot of a sentinel
// cache and compare against an independently placed copy; evaluate the formulas at the far corner
// of a > 4 GiB cache and compare with the row-major offset written out per layout.
#include <cstdint>
#include <vector>

#include <gtest/gtest.h>

#include "kernels/common/cache_layout.h"
#include "kernels/cpu/kernels.h"
#include "kernels/cpu/tests/test_support.h"

namespace rcsim::cpu {
namespace {

using layout::PagedCacheShape;

using OffsetFn = int64_t (*)(const PagedCacheShape&, int64_t, int64_t, int64_t, int64_t);

void expect_bijection(const PagedCacheShape& s, OffsetFn fn, const char* name) {
  const int64_t n = layout::cache_elements(s);
  std::vector<uint8_t> hits(static_cast<std::size_t>(n), 0);
  for (int64_t b = 0; b < s.num_blocks; ++b)
    for (int64_t h = 0; h < s.num_heads_kv; ++h)
      for (int64_t t = 0; t < s.block_size; ++t)
        for (int64_t d = 0; d < s.head_dim; ++d) {
          const int64_t off = fn(s, b, h, t, d);
          ASSERT_TRUE(off >= 0 && off < n) << name << " offset " << off << " out of [0, " << n
                                           << ") at (" << b << "," << h << "," << t << "," << d << ")";
          ++hits[static_cast<std::size_t>(off)];
        }
  for (int64_t i = 0; i < n; ++i) {
    ASSERT_EQ(hits[static_cast<std::size_t>(i)], 1) << name << " element " << i;
  }
}

TEST(CacheLayout, EveryFormulaIsABijectionOverAWholeCache) {
  for (int64_t x : {8, 16}) {
    for (int64_t bs : {16, 32}) {
      for (int64_t d : {64, 128}) {
        const PagedCacheShape s{3, 2, bs, d, x};
        expect_bijection(s, layout::k_xpacked_offset, "k x-packed");
        expect_bijection(s, layout::v_shuffle_offset, "v shuffle");
        expect_bijection(s, layout::v_plain_offset, "v plain");
        expect_bijection(s, layout::flash_offset, "flash");
      }
    }
  }
  // Scales: (b, h, t) -> [NB, H, BS] is a bijection too.
  const PagedCacheShape s{3, 2, 16, 64, 8};
  const int64_t n = layout::scale_elements(s);
  ASSERT_EQ(n, 3 * 2 * 16) << "scale_elements of [NB=3, H=2, BS=16]";
  std::vector<int> hits(static_cast<std::size_t>(n), 0);
  for (int64_t b = 0; b < 3; ++b)
    for (int64_t h = 0; h < 2; ++h)
      for (int64_t t = 0; t < 16; ++t) {
        const int64_t off = layout::scale_offset(s, b, h, t);
        ASSERT_TRUE(off >= 0 && off < n) << "scale offset " << off << " out of [0, " << n
                                         << ") at (" << b << "," << h << "," << t << ")";
        ++hits[static_cast<std::size_t>(off)];
      }
  for (int v : hits) EXPECT_EQ(v, 1);
}

TEST(CacheLayout, FormulasMatchTheirLogicalShapesRowMajor) {
  // Independent statement of each layout: the row-major offset in its logical shape.
  const PagedCacheShape s{2, 2, 16, 64, 8};
  const int64_t H = 2, BS = 16, D = 64, x = 8;
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t t = 0; t < BS; ++t)
        for (int64_t d = 0; d < D; ++d) {
          // K [NB, H, D/x, BS, x]
          EXPECT_EQ(layout::k_xpacked_offset(s, b, h, t, d),
                    (((b * H + h) * (D / x) + d / x) * BS + t) * x + d % x);
          // V shuffle [NB, H, BS/x, D, x]
          EXPECT_EQ(layout::v_shuffle_offset(s, b, h, t, d),
                    (((b * H + h) * (BS / x) + t / x) * D + d) * x + t % x);
          // V plain [NB, H, D, BS]
          EXPECT_EQ(layout::v_plain_offset(s, b, h, t, d), ((b * H + h) * D + d) * BS + t);
          // Flash / NHD [NB, BS, H, D]: token before head (HND, [NB, H, BS, D], is a bijection
          // too and meets it at the far corner; only this statement tells them apart)
          EXPECT_EQ(layout::flash_offset(s, b, h, t, d), ((b * BS + t) * H + h) * D + d);
        }
}

TEST(CacheLayout, OffsetsBeyondFourGiBStayExact) {
  // 300k blocks x 8 heads x 16 tokens x 128 dims = 4.9e9 elements (> 2^32): no allocation, only
  // the formulas at the last element, against the row-major value computed here in 64 bits.
  const PagedCacheShape s{300000, 8, 16, 128, 8};
  const int64_t b = s.num_blocks - 1, h = 7, t = 15, d = 127;
  const int64_t n = layout::cache_elements(s);
  EXPECT_GT(n, int64_t{1} << 32);
  EXPECT_EQ(layout::k_xpacked_offset(s, b, h, t, d), n - 1);
  EXPECT_EQ(layout::v_shuffle_offset(s, b, h, t, d), n - 1);
  EXPECT_EQ(layout::v_plain_offset(s, b, h, t, d), n - 1);
  EXPECT_EQ(layout::flash_offset(s, b, h, t, d), n - 1);
  // A middle element whose offset exceeds 2^32 while every factor fits 32 bits.
  const int64_t bm = 290000;  // 290000 * 8 * 16 * 128 = 4.75e9 > 2^32
  EXPECT_EQ(layout::v_plain_offset(s, bm, 3, 5, 9), ((bm * 8 + 3) * 128 + 9) * 16 + 5);
  EXPECT_GT(layout::v_plain_offset(s, bm, 3, 5, 9), int64_t{1} << 32);
  EXPECT_EQ(layout::scale_offset(s, b, h, t), layout::scale_elements(s) - 1);
}

// Writes every slot of a cache with reshape_and_cache ("auto") and checks each element against a
// copy placed by the logical-shape formula; with half the slots mapped, unmapped bytes keep the
// sentinel.
TEST(CacheLayout, ReshapeAndCacheWritesExactlyTheMappedSlots) {
  const uint64_t seed = testing::test_seed();
  for (VCacheLayout vl : {VCacheLayout::kShuffle, VCacheLayout::kPlain}) {
    Prng rng = Prng::stream(seed, "layout-write", static_cast<int>(vl));
    AttentionConfig cfg;
    cfg.num_heads_q = 2;
    cfg.num_heads_kv = 2;
    cfg.head_dim = 64;
    cfg.rotary_dim = 64;
    cfg.block_size = 16;
    cfg.num_blocks = 4;
    testing::LayerOptions opt;
    opt.tokens = cfg.num_slots();
    opt.padded_one_in = 2;
    opt.plain_v = vl == VCacheLayout::kPlain;
    testing::Layer l = testing::make_layer(cfg, rng, opt);
    const QkvViews v = l.qkv_views();
    ReshapeAndCacheArgs a;
    a.cfg = cfg;
    a.key = v.k;
    a.value = v.v;
    a.slot_mapping = l.slots.view();
    a.cache = l.cache();
    a.v_layout = vl;
    CpuReshapeAndCache k;
    k.run(a);
    HostTensor k_expected = l.k_cache, v_expected = l.v_cache;
    k_expected.fill_pattern(testing::kCacheSentinel);
    v_expected.fill_pattern(testing::kCacheSentinel);
    auto ke = k_expected.as<uint16_t>();
    auto ve = v_expected.as<uint16_t>();
    const auto q = l.qkv.as<uint16_t>();
    const int64_t BS = 16, H = 2, D = 64, x = 8, W = cfg.qkv_width();
    int64_t mapped = 0;
    for (int64_t t = 0; t < opt.tokens; ++t) {
      const int64_t slot = l.slots.as<int64_t>()[static_cast<std::size_t>(t)];
      if (slot < 0) continue;
      ++mapped;
      const int64_t b = slot / BS, s = slot % BS;
      for (int64_t h = 0; h < H; ++h)
        for (int64_t d = 0; d < D; ++d) {
          const uint16_t kval = q[static_cast<std::size_t>(t * W + (2 + h) * D + d)];
          const uint16_t vval = q[static_cast<std::size_t>(t * W + (4 + h) * D + d)];
          ke[static_cast<std::size_t>((((b * H + h) * (D / x) + d / x) * BS + s) * x + d % x)] = kval;
          const int64_t vo = vl == VCacheLayout::kPlain
                                 ? ((b * H + h) * D + d) * BS + s
                                 : (((b * H + h) * (BS / x) + s / x) * D + d) * x + s % x;
          ve[static_cast<std::size_t>(vo)] = vval;
        }
    }
    EXPECT_GT(mapped, 0);
    EXPECT_LT(mapped, opt.tokens);
    const auto kbad = testing::first_byte_mismatch(l.k_cache, k_expected);
    const auto vbad = testing::first_byte_mismatch(l.v_cache, v_expected);
    EXPECT_FALSE(kbad.has_value()) << "k_cache byte " << kbad.value_or(-1) << " " << testing::repro_line();
    EXPECT_FALSE(vbad.has_value()) << v_layout_name(vl) << " v_cache byte " << vbad.value_or(-1)
                                   << " " << testing::repro_line();
  }
}

}  // namespace
}  // namespace rcsim::cpu
