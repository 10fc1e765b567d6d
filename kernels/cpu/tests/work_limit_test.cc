// Goal: WorkLimit means what core/kernel_interfaces.h says for every CPU kernel: after a limit k,
// exactly units [0, min(k, N)) in the documented order are written - completely - and nothing
// else; max_units = 0 validates, writes nothing and reports N.
// Method: for each kernel, run a fresh copy of one random layer unlimited (the "full" result),
// then with k in {0, 1, N/2, N-1, N, N+3}; build the expected bytes from the untouched inputs
// plus, for each unit g < k, the bytes of unit g's write set copied from the full result (write
// sets derived from the documented unit order and the layout formulas); compare every watched
// byte.
#include <cstring>
#include <functional>
#include <vector>

#include <gtest/gtest.h>

#include "kernels/common/cache_layout.h"
#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/kernels.h"
#include "kernels/cpu/tests/test_support.h"

namespace rcsim::cpu {
namespace {

// Watched tensors, in this order: qkv, k_cache, v_cache, k_scale, v_scale, scratch.
enum Watched : int { kQkv, kKCache, kVCache, kKScale, kVScale, kScratch, kWatchedCount };

struct Range {
  int tensor;
  int64_t byte_offset;
  int64_t bytes;
};

struct Fixture {
  testing::Layer layer;
  HostTensor scratch;  // destination of the memory copy
  std::vector<HostTensor*> watched() {
    return {&layer.qkv, &layer.k_cache, &layer.v_cache, &layer.k_scale, &layer.v_scale, &scratch};
  }
};

using Runner = std::function<KernelRun(Fixture&, WorkLimit)>;
using WriteSet = std::function<void(const Fixture&, int64_t unit, std::vector<Range>&)>;

Fixture make_fixture(KvCacheDtype kv, bool plain_v) {
  Prng rng = Prng::stream(testing::test_seed(), "work-limit", static_cast<int>(kv), plain_v);
  const AttentionConfig c = test_support::small_config({.kv = kv, .max_position = 128});
  testing::LayerOptions opt;
  opt.tokens = 7;
  opt.padded_one_in = 3;
  opt.plain_v = plain_v;
  Fixture f{testing::make_layer(c, rng, opt), HostTensor(DType::kBF16, {7, 4, 64})};
  f.scratch.fill_pattern(0x3C);
  return f;
}

int64_t slot_of(const Fixture& f, int64_t t) {
  return f.layer.slots.as<int64_t>()[static_cast<std::size_t>(t)];
}

void add_head(const Fixture& f, int64_t t, int64_t head, std::vector<Range>& out) {
  const int64_t D = f.layer.cfg.head_dim;
  out.push_back({kQkv, (t * f.layer.cfg.qkv_width() + head * D) * 2, D * 2});
}

void add_cache(const Fixture& f, int64_t t, int64_t kv_head, bool key, VCacheLayout vl,
               bool scale, std::vector<Range>& out) {
  const AttentionConfig& c = f.layer.cfg;
  const int64_t slot = slot_of(f, t);
  if (slot < 0) return;
  const layout::PagedCacheShape s = c.cache_shape();
  const int64_t b = slot / c.block_size, tok = slot % c.block_size;
  const int64_t elem = dtype_size_bytes(c.cache_storage_dtype());
  for (int64_t d = 0; d < c.head_dim; ++d) {
    const int64_t off = key ? layout::k_xpacked_offset(s, b, kv_head, tok, d)
                            : (vl == VCacheLayout::kShuffle ? layout::v_shuffle_offset(s, b, kv_head, tok, d)
                                                            : layout::v_plain_offset(s, b, kv_head, tok, d));
    out.push_back({key ? kKCache : kVCache, off * elem, elem});
  }
  if (scale) out.push_back({key ? kKScale : kVScale, layout::scale_offset(s, b, kv_head, tok) * 4, 4});
}

void check_limits(const char* name, KvCacheDtype kv, bool plain_v, const Runner& run,
                  const WriteSet& write_set) {
  Fixture full = make_fixture(kv, plain_v);
  const KernelRun all = run(full, WorkLimit{});
  const int64_t n = all.units_total;
  ASSERT_GT(n, 2) << name;
  EXPECT_EQ(all.units_completed, n) << name;
  for (int64_t k : {int64_t{0}, int64_t{1}, n / 2, n - 1, n, n + 3}) {
    Fixture part = make_fixture(kv, plain_v);
    std::vector<HostTensor> expected;
    for (HostTensor* t : part.watched()) expected.push_back(*t);
    const KernelRun r = run(part, WorkLimit{k});
    EXPECT_EQ(r.units_total, n) << name << " k=" << k;
    EXPECT_EQ(r.units_completed, std::min(k, n)) << name << " k=" << k;
    std::vector<HostTensor*> full_tensors = full.watched();
    for (int64_t g = 0; g < std::min(k, n); ++g) {
      std::vector<Range> ranges;
      write_set(full, g, ranges);
      for (const Range& rg : ranges) {
        std::memcpy(expected[static_cast<std::size_t>(rg.tensor)].data() + rg.byte_offset,
                    full_tensors[static_cast<std::size_t>(rg.tensor)]->data() + rg.byte_offset,
                    static_cast<std::size_t>(rg.bytes));
      }
    }
    std::vector<HostTensor*> got = part.watched();
    for (int i = 0; i < kWatchedCount; ++i) {
      if (got[static_cast<std::size_t>(i)]->empty()) continue;
      const auto bad = testing::first_byte_mismatch(*got[static_cast<std::size_t>(i)],
                                                    expected[static_cast<std::size_t>(i)]);
      EXPECT_FALSE(bad.has_value()) << name << " k=" << k << " of N=" << n << ": tensor " << i
                                    << " byte " << bad.value_or(-1) << " " << testing::repro_line();
    }
  }
  // The limit is not vacuous: the full run wrote something beyond the first unit's write set.
  Fixture fresh = make_fixture(kv, plain_v);
  bool changed = false;
  for (int i = 0; i < kWatchedCount; ++i) {
    if (fresh.watched()[static_cast<std::size_t>(i)]->empty()) continue;
    changed |= testing::first_byte_mismatch(*fresh.watched()[static_cast<std::size_t>(i)],
                                            *full.watched()[static_cast<std::size_t>(i)])
                   .has_value();
  }
  EXPECT_TRUE(changed) << name;
}

TEST(WorkLimit, FusedUnitsAreTokenMajorOverQThenKThenVHeads) {
  for (KvCacheDtype kv : {KvCacheDtype::kAuto, KvCacheDtype::kFp8E4M3FN}) {
    check_limits(
        "fused", kv, false,
        [](Fixture& f, WorkLimit lim) {
          FusedQkNormRopeCacheArgs a = f.layer.fused_args();
          a.limit = lim;
          return CpuFusedQkNormRopeCache().run(a);
        },
        [kv](const Fixture& f, int64_t g, std::vector<Range>& out) {
          const AttentionConfig& c = f.layer.cfg;
          const int64_t heads = c.num_heads_q + 2 * c.num_heads_kv;
          const int64_t t = g / heads, h = g % heads;
          if (h < c.num_heads_q + c.num_heads_kv) add_head(f, t, h, out);
          if (h >= c.num_heads_q + c.num_heads_kv) {
            add_cache(f, t, h - c.num_heads_q - c.num_heads_kv, false, VCacheLayout::kShuffle, is_fp8(kv), out);
          } else if (h >= c.num_heads_q) {
            add_cache(f, t, h - c.num_heads_q, true, VCacheLayout::kShuffle, is_fp8(kv), out);
          }
        });
  }
}

TEST(WorkLimit, RmsNormAndRotaryUnitsAreHeadRows) {
  check_limits(
      "rms_norm", KvCacheDtype::kAuto, false,
      [](Fixture& f, WorkLimit lim) {
        RmsNormArgs a;
        a.input = a.output = f.layer.qkv_views().q;
        a.weight = f.layer.q_weight.view();
        a.limit = lim;
        return CpuRmsNorm().run(a);
      },
      [](const Fixture& f, int64_t g, std::vector<Range>& out) {
        add_head(f, g / f.layer.cfg.num_heads_q, g % f.layer.cfg.num_heads_q, out);
      });
  check_limits(
      "rotary", KvCacheDtype::kAuto, false,
      [](Fixture& f, WorkLimit lim) {
        RotaryArgs a;
        const QkvViews v = f.layer.qkv_views();
        a.q = v.q;
        a.k = v.k;
        a.positions = f.layer.positions.view();
        a.cos_sin_cache = f.layer.cos_sin.view();
        a.rotary_dim = 64;
        a.limit = lim;
        return CpuRotaryEmbedding().run(a);
      },
      [](const Fixture& f, int64_t g, std::vector<Range>& out) {
        const AttentionConfig& c = f.layer.cfg;
        const int64_t q_units = f.layer.tokens * c.num_heads_q;
        if (g < q_units) {
          add_head(f, g / c.num_heads_q, g % c.num_heads_q, out);
        } else {
          add_head(f, (g - q_units) / c.num_heads_kv, c.num_heads_q + (g - q_units) % c.num_heads_kv, out);
        }
      });
}

TEST(WorkLimit, CacheWriterUnits) {
  check_limits(
      "reshape_and_cache", KvCacheDtype::kAuto, true,
      [](Fixture& f, WorkLimit lim) {
        ReshapeAndCacheArgs a;
        const QkvViews v = f.layer.qkv_views();
        a.cfg = f.layer.cfg;
        a.key = v.k;
        a.value = v.v;
        a.slot_mapping = f.layer.slots.view();
        a.cache = f.layer.cache();
        a.v_layout = VCacheLayout::kPlain;
        a.limit = lim;
        return CpuReshapeAndCache().run(a);
      },
      [](const Fixture& f, int64_t t, std::vector<Range>& out) {
        for (int64_t h = 0; h < f.layer.cfg.num_heads_kv; ++h) {
          add_cache(f, t, h, true, VCacheLayout::kPlain, false, out);
          add_cache(f, t, h, false, VCacheLayout::kPlain, false, out);
        }
      });
  check_limits(
      "per_token_quant", KvCacheDtype::kFp8E4M3FNUZ, false,
      [](Fixture& f, WorkLimit lim) {
        PerTokenQuantCacheArgs a;
        const QkvViews v = f.layer.qkv_views();
        a.cfg = f.layer.cfg;
        a.key = v.k;
        a.value = v.v;
        a.slot_mapping = f.layer.slots.view();
        a.cache = f.layer.cache();
        a.limit = lim;
        return CpuPerTokenQuantCache().run(a);
      },
      [](const Fixture& f, int64_t g, std::vector<Range>& out) {
        const int64_t t = g / f.layer.cfg.num_heads_kv, h = g % f.layer.cfg.num_heads_kv;
        add_cache(f, t, h, true, VCacheLayout::kShuffle, true, out);
        add_cache(f, t, h, false, VCacheLayout::kShuffle, true, out);
      });
  check_limits(
      "branch_b", KvCacheDtype::kAuto, true,
      [](Fixture& f, WorkLimit lim) {
        RopeReshapeCacheArgs a;
        const QkvViews v = f.layer.qkv_views();
        a.cfg = f.layer.cfg;
        a.q = v.q;
        a.k = v.k;
        a.v = v.v;
        a.cos_sin_cache = f.layer.cos_sin.view();
        a.positions = f.layer.positions.view();
        a.slot_mapping = f.layer.slots.view();
        a.cache = f.layer.cache();
        a.v_layout = VCacheLayout::kPlain;
        a.limit = lim;
        return CpuRopeReshapeCache().run(a);
      },
      [](const Fixture& f, int64_t g, std::vector<Range>& out) {
        const AttentionConfig& c = f.layer.cfg;
        const int64_t t = g / c.num_heads_q, hq = g % c.num_heads_q;
        const int64_t group = c.num_heads_q / c.num_heads_kv;
        add_head(f, t, hq, out);
        if (hq % group != 0 || slot_of(f, t) < 0) return;
        add_head(f, t, c.num_heads_q + hq / group, out);
        add_cache(f, t, hq / group, true, VCacheLayout::kPlain, false, out);
        add_cache(f, t, hq / group, false, VCacheLayout::kPlain, false, out);
      });
}

TEST(WorkLimit, HostCopyUnitsAreSourceElementsRowMajor) {
  check_limits(
      "host copy", KvCacheDtype::kAuto, false,
      [](Fixture& f, WorkLimit lim) {
        return HostMemoryBackend().copy(f.layer.qkv_views().q, f.scratch.view(), lim);
      },
      [](const Fixture&, int64_t i, std::vector<Range>& out) { out.push_back({kScratch, i * 2, 2}); });
}

}  // namespace
}  // namespace rcsim::cpu
