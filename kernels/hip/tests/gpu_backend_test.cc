// Goal: the GPU backend computes exactly what the CPU reference computes, stops exactly where a
// WorkLimit says (device-side torn writes), can be restored after a torn write, writes nothing on
// bad input, and models a sticky device error.
// Method: random cases from one seed (harness/gpu/gpu_case.h: non-zero inputs, a real RoPE table,
// -1 padding slots, sentinel-filled caches and scales) run on both backends; every output tensor
// (qkv including the V part that must stay untouched, both caches, both scale buffers) is compared
// byte for byte, the first bad element named by (token, head, dim) or cache coordinates.
// Seed: RCSIM_SEED (default below), printed first. RCSIM_GPU_QUICK=1 trims the grid (used under
// compute-sanitizer). Without a device the tests skip, unless RCSIM_REQUIRE_GPU=1 makes that a
// failure (set on the GPU machine, so a missing device cannot pass silently).
#include <array>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "core/check.h"
#include "core/errors.h"
#include "core/prng.h"
#include "kernels/common/numeric.h"
#include "kernels/cpu/cpu_backend.h"
#include "kernels/hip/gpu_backend.h"
#include "kernels/hip/tests/exact_quotient_check.h"
#include "kernels/hip/tests/gpu_test_fixture.h"
#include "harness/gpu/gpu_case.h"
#include "test_support/seed.h"

namespace rcsim::gpu {
namespace {

// GPU fused vs CPU fused on one case; returns false on a mismatch.
void check_fused_case(GpuBackend& gpu, cpu::CpuBackend& cpu, const CaseShape& shape,
                      uint64_t seed, WorkLimit limit = {}) {
  HostCase host = make_case(shape, seed);
  DeviceCase dev = upload_case(host);
  FusedQkNormRopeCacheArgs ha = host.fused_args();
  ha.limit = limit;
  const KernelRun want_run = cpu.kernels().fused->run(ha);
  FusedQkNormRopeCacheArgs da = dev.fused_args();
  da.limit = limit;
  const KernelRun got_run = gpu.kernels().fused->run(da);
  EXPECT_EQ(got_run.units_total, want_run.units_total);
  EXPECT_EQ(got_run.units_completed, want_run.units_completed);
  expect_same_outputs(dev.download_all(), host,
                      fmt::format("fused {} limit {}", shape.describe(), limit.max_units));
}

// ---- bit-exact: fused on the AITER op-test grid and the Qwen3 shapes ---------------------------
TEST_F(GpuTest, FusedMatchesCpuOnAiterGrid) {
  std::vector<int64_t> tokens = {3, 127, 513, 778, 1024, 1257};
  if (quick()) tokens = {3, 127};
  const std::pair<int64_t, int64_t> heads[] = {{32, 4}, {64, 8}, {4, 1}};
  const int64_t dims[] = {64, 128, 256};
  const KvCacheDtype kvs[] = {KvCacheDtype::kAuto, KvCacheDtype::kFp8E4M3FN,
                              KvCacheDtype::kFp8E4M3FNUZ};
  int64_t cases = 0;
  for (int64_t t : tokens) {
    for (auto [hq, hkv] : heads) {
      for (int64_t d : dims) {
        for (bool neox : {true, false}) {
          for (KvCacheDtype kv : kvs) {
            CaseShape s;
            s.num_tokens = t;
            s.num_heads_q = hq;
            s.num_heads_kv = hkv;
            s.head_dim = d;
            s.is_neox = neox;
            s.kv = kv;
            // Every other case in prefill layout: whole V chunks (the tiled kernel's staged
            // path) and element stores (scattered) are both checked across the grid.
            s.slot_layout = cases % 2 == 1 ? SlotLayout::kPrefill : SlotLayout::kScattered;
            check_fused_case(*gpu_, cpu_, s, mix_seed(test_seed(), static_cast<uint64_t>(cases)));
            ++cases;
            if (HasFailure()) return;
          }
        }
      }
    }
  }
  std::printf("fused AITER grid: %lld cases bit-exact\n", static_cast<long long>(cases));
}

TEST_F(GpuTest, FusedMatchesCpuOnQwen3ShapesAndVariants) {
  // Qwen3 per-rank shapes (0.6B, 8B, 32B, 235B TP8), fp16 activations, partial rotary, amax floor.
  const std::pair<int64_t, int64_t> qwen[] = {{16, 8}, {32, 8}, {64, 8}, {8, 1}, {64, 4}};
  int64_t n = 0;
  for (auto [hq, hkv] : qwen) {
    for (KvCacheDtype kv : {KvCacheDtype::kAuto, KvCacheDtype::kFp8E4M3FN}) {
      CaseShape s;
      s.num_tokens = quick() ? 33 : 1031;
      s.num_heads_q = hq;
      s.num_heads_kv = hkv;
      s.kv = kv;
      check_fused_case(*gpu_, cpu_, s, mix_seed(test_seed(), 1000 + n++));
      s.act = DType::kFP16;
      s.num_tokens = 65;
      check_fused_case(*gpu_, cpu_, s, mix_seed(test_seed(), 1000 + n++));
      s.act = DType::kBF16;
      s.rotary_dim = 64;
      check_fused_case(*gpu_, cpu_, s, mix_seed(test_seed(), 1000 + n++));
      s.is_neox = false;
      check_fused_case(*gpu_, cpu_, s, mix_seed(test_seed(), 1000 + n++));
      // NeoX partners 3 threads apart in the tiled kernel (rotary 48 of 128), and a width it
      // does not cover (40 of 64: not a multiple of 16), which runs the reference mapping.
      s.is_neox = true;
      s.rotary_dim = 48;
      s.slot_layout = SlotLayout::kPrefill;
      check_fused_case(*gpu_, cpu_, s, mix_seed(test_seed(), 1000 + n++));
      s.head_dim = 64;
      s.rotary_dim = 40;
      check_fused_case(*gpu_, cpu_, s, mix_seed(test_seed(), 1000 + n++));
    }
  }
}

TEST_F(GpuTest, FusedMatchesCpuWhenTheLaunchPrefetches) {
  // 4099 tokens (257 tiles, the last one partial): Qwen3-8B's bf16-cache launch has 3598 blocks
  // and Qwen3-32B's 5654, at least four waves on a device of up to 224 SMs, so blocks prefetch
  // the rows of blocks half a wave on (fused_qk_norm_rope_cache_tiled.hip, prefetch_tiles_of),
  // up to the batch's end. A prefetch changes no value; this checks that, and gives the
  // sanitizers a launch whose prefetch addresses they can check.
  const std::pair<int64_t, int64_t> qwen[] = {{32, 8}, {64, 8}};
  int64_t n = 0;
  for (auto [hq, hkv] : qwen) {
    for (SlotLayout layout : {SlotLayout::kPrefill, SlotLayout::kScattered}) {
      CaseShape s;
      s.num_tokens = 4099;
      s.num_heads_q = hq;
      s.num_heads_kv = hkv;
      s.kv = KvCacheDtype::kAuto;
      s.slot_layout = layout;
      check_fused_case(*gpu_, cpu_, s, mix_seed(test_seed(), 1500 + n++));
      if (quick()) break;
    }
  }
}

// 9219 tokens (577 tiles, the last one partial) of Qwen3-8B with an fp8 cache: 9232 blocks at two
// V heads per block, at least 16 waves of four resident blocks on a device of up to 144 SMs, so the
// launch takes the kernel with four V heads per block (fused_qk_norm_rope_cache_tiled.hip,
// kVHeadsWide, launch_with).
CaseShape wide_v_launch(KvCacheDtype kv, SlotLayout layout) {
  CaseShape s;
  s.num_tokens = 9219;
  s.num_heads_q = 32;
  s.num_heads_kv = 8;
  s.kv = kv;
  s.slot_layout = layout;
  return s;
}

TEST_F(GpuTest, FusedMatchesCpuInTheWideVKernel) {
  // Both fp8 formats, prefill and scattered slots.
  const std::pair<KvCacheDtype, SlotLayout> runs[] = {
      {KvCacheDtype::kFp8E4M3FN, SlotLayout::kPrefill},
      {KvCacheDtype::kFp8E4M3FNUZ, SlotLayout::kScattered}};
  int64_t n = 0;
  for (auto [kv, layout] : runs) {
    check_fused_case(*gpu_, cpu_, wide_v_launch(kv, layout), mix_seed(test_seed(), 1600 + n++));
    if (quick()) break;
  }
}

// ---- launches: programmatic (the default) and plain write the same bits ------------------------
// Two fused calls back to back in one captured graph, with no host sync between them (the backend's
// own calls sync after every launch and read the slots first, so they never overlap): the second
// reads the q and k the first wrote in place and rewrites the same cache slots. A programmatic
// launch starts while the kernel before it still runs (gpu_platform.h), so a kernel that touched
// memory before its wait (tile::start_after_previous_grid) would read rows not yet written. The
// CPU runs the same two calls one after the other.
TEST_F(GpuTest, BackToBackLaunchesInOneGraphMatchCpu) {
  int64_t n = 0;
  for (bool programmatic : {true, false}) {
    for (KvCacheDtype kv : {KvCacheDtype::kAuto, KvCacheDtype::kFp8E4M3FN}) {
      for (int64_t tokens : {int64_t{64}, int64_t{1500}}) {  // one wave of one-head blocks; several
        CaseShape s;
        s.num_tokens = tokens;
        s.kv = kv;
        HostCase host = make_case(s, mix_seed(test_seed(), 1700 + n++));
        DeviceCase dev = upload_case(host);
        cpu_.kernels().fused->run(host.fused_args());
        cpu_.kernels().fused->run(host.fused_args());
        gpu_->set_programmatic_launch(programmatic);
        const FusedParams p = gpu_->fused_params(dev.fused_args());
        GraphRunner g;
        g.begin_capture();
        launch_fused_qk_norm_rope_cache(p, g.stream());
        launch_fused_qk_norm_rope_cache(p, g.stream());
        g.end_capture();
        g.replay();
        synchronize();
        check_last_error("two fused launches in one graph");
        expect_same_outputs(dev.download_all(), host,
                            fmt::format("fused twice in one graph, {} launch, {}",
                                        programmatic ? "programmatic" : "plain", s.describe()));
        if (quick()) break;
      }
    }
  }
}

// The backend's calls with plain launches: the same bits as the CPU (the default, programmatic,
// is what every other test here runs).
TEST_F(GpuTest, PlainLaunchesMatchCpu) {
  gpu_->set_programmatic_launch(false);
  int64_t n = 0;
  for (KvCacheDtype kv : {KvCacheDtype::kAuto, KvCacheDtype::kFp8E4M3FN}) {
    CaseShape s;
    s.num_tokens = 300;
    s.kv = kv;
    check_fused_case(*gpu_, cpu_, s, mix_seed(test_seed(), 1750 + n++));
    HostCase host = make_case(s, mix_seed(test_seed(), 1750 + n++));
    DeviceCase dev = upload_case(host);
    run_nonfused(cpu_.kernels(), FallbackOrder::kNormThenRope, host.cfg, host.qkv.view(),
                 host.q_weight.view(), host.k_weight.view(), host.cos_sin.view(),
                 host.positions.view(), host.slots.view(), host.cache_views(VCacheLayout::kShuffle));
    run_nonfused(gpu_->kernels(), FallbackOrder::kNormThenRope, dev.cfg, dev.qkv->view(),
                 dev.q_weight->view(), dev.k_weight->view(), dev.cos_sin->view(),
                 dev.positions->view(), dev.slots->view(), dev.cache_views(VCacheLayout::kShuffle));
    expect_same_outputs(dev.download_all(), host,
                        fmt::format("non-fused, plain launches, {}", s.describe()));
  }
}

// ---- bit-exact: every non-fused kernel and both compositions ------------------------------------
TEST_F(GpuTest, NonFusedCompositionMatchesCpuInBothOrders) {
  // 2049 tokens (129 tiles, 774 blocks at full heads): the fp8 cache writer's launch then fills a
  // device of up to 193 SMs at four blocks each, which selects its 4-V-head instance
  // (nonfused_tiled.hip, kCacheVHeadsFull); 257 tokens keep the 2-head one. bf16 has one instance.
  struct Run {
    KvCacheDtype kv;
    int64_t tokens;
  };
  std::vector<Run> runs = {{KvCacheDtype::kAuto, 257}, {KvCacheDtype::kFp8E4M3FN, 257},
                           {KvCacheDtype::kFp8E4M3FNUZ, 257}};
  if (!quick()) {
    runs.push_back({KvCacheDtype::kFp8E4M3FN, 2049});
    runs.push_back({KvCacheDtype::kFp8E4M3FNUZ, 2049});
  }
  for (const Run& run : runs) {
    for (FallbackOrder order : {FallbackOrder::kRopeThenNorm, FallbackOrder::kNormThenRope}) {
      for (bool neox : {true, false}) {
        CaseShape s;
        s.num_tokens = run.tokens;
        s.kv = run.kv;
        s.is_neox = neox;
        s.slot_layout = neox ? SlotLayout::kPrefill : SlotLayout::kScattered;
        HostCase host = make_case(s, mix_seed(test_seed(), 2000 + static_cast<int>(run.kv)));
        DeviceCase dev = upload_case(host);
        run_nonfused(cpu_.kernels(), order, host.cfg, host.qkv.view(), host.q_weight.view(),
                     host.k_weight.view(), host.cos_sin.view(), host.positions.view(),
                     host.slots.view(), host.cache_views(VCacheLayout::kShuffle));
        run_nonfused(gpu_->kernels(), order, dev.cfg, dev.qkv->view(), dev.q_weight->view(),
                     dev.k_weight->view(), dev.cos_sin->view(), dev.positions->view(),
                     dev.slots->view(), dev.cache_views(VCacheLayout::kShuffle));
        expect_same_outputs(dev.download_all(), host,
                            fmt::format("non-fused {} order {}", s.describe(),
                                        order == FallbackOrder::kRopeThenNorm ? "rope-norm" : "norm-rope"));
      }
    }
  }
}

TEST_F(GpuTest, ModelOrderNonFusedEqualsFusedOnGpuForAuto) {
  // The model-order composition shares the fused kernel's reduction and rounding points, so for an
  // "auto" cache the two GPU paths agree bit for bit (the claim of kernels/cpu/nonfused_reference.h).
  CaseShape s;
  s.num_tokens = 300;
  HostCase host = make_case(s, mix_seed(test_seed(), 3000));
  DeviceCase fused = upload_case(host);
  DeviceCase chain = upload_case(host);
  gpu_->kernels().fused->run(fused.fused_args());
  run_nonfused(gpu_->kernels(), FallbackOrder::kNormThenRope, chain.cfg, chain.qkv->view(),
               chain.q_weight->view(), chain.k_weight->view(), chain.cos_sin->view(),
               chain.positions->view(), chain.slots->view(), chain.cache_views(VCacheLayout::kShuffle));
  expect_same_outputs(chain.download_all(), fused.download_all(), "GPU fused vs GPU norm->rope");
}

TEST_F(GpuTest, ReshapeAndCachePlainAndPerTensorFp8MatchCpu) {
  for (KvCacheDtype kv : {KvCacheDtype::kAuto, KvCacheDtype::kFp8E4M3FN}) {
    for (VCacheLayout layout : {VCacheLayout::kPlain, VCacheLayout::kShuffle}) {
     for (SlotLayout slots : {SlotLayout::kScattered, SlotLayout::kPrefill}) {
      CaseShape s;
      s.num_tokens = 200;
      s.kv = kv;
      s.slot_layout = slots;
      HostCase host = make_case(s, mix_seed(test_seed(), 4000));
      DeviceCase dev = upload_case(host);
      const QkvViews hv = split_qkv(host.qkv.view(), s.num_heads_q, s.num_heads_kv, s.head_dim);
      const QkvViews dv = split_qkv(dev.qkv->view(), s.num_heads_q, s.num_heads_kv, s.head_dim);
      ReshapeAndCacheArgs a;
      a.cfg = host.cfg;
      a.v_layout = layout;
      a.k_scale = 0.037f;
      a.v_scale = 0.011f;
      a.key = hv.k;
      a.value = hv.v;
      a.slot_mapping = host.slots.view();
      a.cache = host.cache_views(layout);
      a.cache.k_scale = a.cache.v_scale = TensorView{};
      cpu_.kernels().reshape_and_cache->run(a);
      a.key = dv.k;
      a.value = dv.v;
      a.slot_mapping = dev.slots->view();
      a.cache = dev.cache_views(layout);
      a.cache.k_scale = a.cache.v_scale = TensorView{};
      gpu_->kernels().reshape_and_cache->run(a);
      expect_same_outputs(dev.download_all(), host,
                          fmt::format("reshape_and_cache {} {} {}", s.describe(), v_layout_name(layout),
                                      slots == SlotLayout::kPrefill ? "prefill" : "scattered"));
     }
    }
  }
}

TEST_F(GpuTest, BranchBRopeReshapeCacheMatchesCpu) {
  for (KvCacheDtype kv : {KvCacheDtype::kAuto, KvCacheDtype::kFp8E4M3FNUZ}) {
    for (VCacheLayout layout : {VCacheLayout::kPlain, VCacheLayout::kShuffle}) {
      for (bool neox : {true, false}) {
        CaseShape s;
        s.num_tokens = 150;
        s.kv = kv;
        s.is_neox = neox;
        s.head_dim = 64;
        HostCase host = make_case(s, mix_seed(test_seed(), 5000));
        DeviceCase dev = upload_case(host);
        auto args = [&](const TensorView& qkv, const TensorView& cs, const TensorView& pos,
                        const TensorView& slots, KvCacheViews cache) {
          const QkvViews v = split_qkv(qkv, s.num_heads_q, s.num_heads_kv, s.head_dim);
          RopeReshapeCacheArgs a;
          a.cfg = host.cfg;
          a.q = v.q;
          a.k = v.k;
          a.v = v.v;
          a.cos_sin_cache = cs;
          a.positions = pos;
          a.slot_mapping = slots;
          cache.k_scale = cache.v_scale = TensorView{};
          a.cache = cache;
          a.v_layout = layout;
          a.apply_scale = is_fp8(kv);
          a.k_scale_static = a.v_scale_static = 448.0f / 240.0f;
          return a;
        };
        cpu_.kernels().rope_reshape_cache->run(args(host.qkv.view(), host.cos_sin.view(),
                                                    host.positions.view(), host.slots.view(),
                                                    host.cache_views(layout)));
        gpu_->kernels().rope_reshape_cache->run(args(dev.qkv->view(), dev.cos_sin->view(),
                                                     dev.positions->view(), dev.slots->view(),
                                                     dev.cache_views(layout)));
        expect_same_outputs(dev.download_all(), host, "branch B " + s.describe());
      }
    }
  }
}

// ---- device-side torn writes, restore, write set ------------------------------------------------
TEST_F(GpuTest, TornFusedWritesMatchCpuAtEveryInterestingStep) {
  for (KvCacheDtype kv : {KvCacheDtype::kAuto, KvCacheDtype::kFp8E4M3FN}) {
   for (SlotLayout slots : {SlotLayout::kScattered, SlotLayout::kPrefill}) {
    CaseShape s;
    s.num_tokens = 37;
    s.num_heads_q = 8;
    s.num_heads_kv = 2;
    s.kv = kv;
    s.slot_layout = slots;
    const int64_t n = s.num_tokens * (s.num_heads_q + 2 * s.num_heads_kv);
    Prng rng = Prng::stream(test_seed(), "torn", static_cast<int>(kv));
    const int64_t ks[] = {0, 1, 2, 11, 12, n / 2, rng.range(1, n - 1), n - 1, n, n + 5};
    for (int64_t k : ks) {
      check_fused_case(*gpu_, cpu_, s, mix_seed(test_seed(), 6000), WorkLimit{k});
    }
    // Every unit boundary of the first V chunks, where a run is cut by the limit.
    if (slots == SlotLayout::kPrefill) {
      for (int64_t k = 0; k < 12 * (s.num_heads_q + 2 * s.num_heads_kv) && !HasFailure(); k += 5) {
        check_fused_case(*gpu_, cpu_, s, mix_seed(test_seed(), 6000), WorkLimit{k});
      }
    }
   }
  }
}

// The instance that only long launches take (four V heads per block, 16 waves or more) maps its
// rows to the tile's run (v_cache_tile_writer.h, kRowsTakeRun): rows before the run's leader stage
// tokens of the next tile. Limits inside the batch, each in a V head of a token drawn from the
// middle, cut runs there (prefill slots: runs start at random rows).
TEST_F(GpuTest, TornFusedWritesInTheWideVKernelMatchCpu) {
  if (quick()) GTEST_SKIP() << "9219-token launches; the full run covers them";
  const CaseShape s = wide_v_launch(KvCacheDtype::kFp8E4M3FN, SlotLayout::kPrefill);
  const int64_t heads = s.num_heads_q + 2 * s.num_heads_kv;
  Prng rng = Prng::stream(test_seed(), "torn-wide", 0);
  for (int n = 0; n < 4 && !HasFailure(); ++n) {
    const int64_t token = rng.range(s.num_tokens / 4, 3 * s.num_tokens / 4);
    const int64_t k = token * heads + s.num_heads_q + s.num_heads_kv + rng.range(0, s.num_heads_kv - 1);
    check_fused_case(*gpu_, cpu_, s, mix_seed(test_seed(), 6100), WorkLimit{k});
  }
}

// GPU vs CPU rotary, rms_norm and the per-token fp8 cache writer on one case, each stopped by a
// work limit (7k, 3k and 5k units).
void check_torn_nonfused_case(GpuBackend& gpu, cpu::CpuBackend& cpu, const CaseShape& s,
                              uint64_t seed, int64_t k) {
  HostCase host = make_case(s, seed);
  DeviceCase dev = upload_case(host);
  const QkvViews hv = split_qkv(host.qkv.view(), s.num_heads_q, s.num_heads_kv, s.head_dim);
  const QkvViews dv = split_qkv(dev.qkv->view(), s.num_heads_q, s.num_heads_kv, s.head_dim);
  RotaryArgs r;
  r.rotary_dim = s.head_dim;
  r.limit = WorkLimit{k * 7};
  r.q = hv.q, r.k = hv.k, r.positions = host.positions.view(), r.cos_sin_cache = host.cos_sin.view();
  cpu.kernels().rotary->run(r);
  r.q = dv.q, r.k = dv.k, r.positions = dev.positions->view(), r.cos_sin_cache = dev.cos_sin->view();
  gpu.kernels().rotary->run(r);
  RmsNormArgs m;
  m.limit = WorkLimit{k * 3};
  m.input = m.output = hv.q, m.weight = host.q_weight.view();
  cpu.kernels().rms_norm->run(m);
  m.input = m.output = dv.q, m.weight = dev.q_weight->view();
  gpu.kernels().rms_norm->run(m);
  PerTokenQuantCacheArgs c;
  c.cfg = host.cfg;
  c.limit = WorkLimit{k * 5};
  c.key = hv.k, c.value = hv.v, c.slot_mapping = host.slots.view();
  c.cache = host.cache_views(VCacheLayout::kShuffle);
  cpu.kernels().per_token_quant_cache->run(c);
  c.key = dv.k, c.value = dv.v, c.slot_mapping = dev.slots->view();
  c.cache = dev.cache_views(VCacheLayout::kShuffle);
  gpu.kernels().per_token_quant_cache->run(c);
  expect_same_outputs(dev.download_all(), host,
                      fmt::format("torn non-fused T={} D={} k={}", s.num_tokens, s.head_dim, k));
}

TEST_F(GpuTest, TornNonFusedKernelsMatchCpu) {
  // 29 tokens: the short-launch instances; 2049 the cache writer's 4-V-head one
  // (NonFusedCompositionMatchesCpuInBothOrders), whose rows take the tile's run, cut mid-batch, at
  // both head dims that have that instance (64: four tokens per warp, 128: two).
  struct Limits {
    int64_t tokens;
    int64_t head_dim;
    std::vector<int64_t> ks;
  };
  std::vector<Limits> sizes = {{29, 128, {0, 1, 13, 28, 29}}};
  if (!quick()) {
    sizes.push_back({2049, 128, {701, 1013, 1555, 2048}});
    sizes.push_back({2049, 64, {701, 1013, 1555, 2048}});
  }
  for (const Limits& size : sizes) {
    for (SlotLayout slots : {SlotLayout::kScattered, SlotLayout::kPrefill}) {
      CaseShape s;
      s.num_tokens = size.tokens;
      s.head_dim = size.head_dim;
      s.kv = KvCacheDtype::kFp8E4M3FN;
      s.slot_layout = slots;
      for (int64_t k : size.ks) check_torn_nonfused_case(*gpu_, cpu_, s, mix_seed(test_seed(), 7000), k);
    }
  }
}

// ---- the reference (AITER) thread mapping writes the same bits as the tiled one -----------------
// The tiled kernels run by default wherever they apply; this forces AITER's 32-lane mapping on
// configurations the tiled kernels also cover, so both device forms are held to the CPU reference.
TEST_F(GpuTest, ReferenceMappingMatchesCpu) {
  gpu_->set_kernel_mapping(KernelMapping::kReference);
  int64_t n = 0;
  for (int64_t d : {64, 128, 256}) {
    for (KvCacheDtype kv : {KvCacheDtype::kAuto, KvCacheDtype::kFp8E4M3FNUZ}) {
      for (SlotLayout slots : {SlotLayout::kScattered, SlotLayout::kPrefill}) {
        CaseShape s;
        s.num_tokens = 131;
        s.num_heads_q = 16;
        s.num_heads_kv = 4;
        s.head_dim = d;
        s.kv = kv;
        s.slot_layout = slots;
        s.is_neox = n % 2 == 0;
        check_fused_case(*gpu_, cpu_, s, mix_seed(test_seed(), 9000 + n++));
        HostCase host = make_case(s, mix_seed(test_seed(), 9100 + n));
        DeviceCase dev = upload_case(host);
        run_nonfused(cpu_.kernels(), FallbackOrder::kRopeThenNorm, host.cfg, host.qkv.view(),
                     host.q_weight.view(), host.k_weight.view(), host.cos_sin.view(),
                     host.positions.view(), host.slots.view(), host.cache_views(VCacheLayout::kShuffle));
        run_nonfused(gpu_->kernels(), FallbackOrder::kRopeThenNorm, dev.cfg, dev.qkv->view(),
                     dev.q_weight->view(), dev.k_weight->view(), dev.cos_sin->view(),
                     dev.positions->view(), dev.slots->view(), dev.cache_views(VCacheLayout::kShuffle));
        expect_same_outputs(dev.download_all(), host, "reference-mapping non-fused " + s.describe());
        if (HasFailure()) return;
      }
    }
  }
  gpu_->set_kernel_mapping(KernelMapping::kAuto);
}

TEST_F(GpuTest, RestoreAfterTornFusedWriteIsByteExactIncludingNaNPayloads) {
  CaseShape s;
  s.num_tokens = 64;
  HostCase host = make_case(s, mix_seed(test_seed(), 8000));
  // NaN payloads in the input must survive backup and restore bit for bit.
  auto bits = host.qkv.as<uint16_t>();
  bits[5] = 0x7FC1;
  bits[bits.size() - 3] = 0xFF81;
  DeviceCase dev = upload_case(host);
  const HostTensor snapshot = download(dev.qkv->view());
  MemoryBackend& mem = gpu_->memory();
  const int64_t n = s.num_tokens * (s.num_heads_q + 2 * s.num_heads_kv);
  for (int64_t k : {int64_t{1}, n / 3, n - 1}) {
    const std::array<int64_t, 2> shape{s.num_tokens, host.cfg.qkv_width()};
    auto backup = mem.allocate(host.cfg.act_dtype, shape);
    mem.copy(dev.qkv->view(), backup->view());
    FusedQkNormRopeCacheArgs a = dev.fused_args();
    a.limit = WorkLimit{k};
    const KernelRun run = gpu_->kernels().fused->run(a);
    ASSERT_EQ(run.units_completed, k);
    EXPECT_FALSE(download(dev.qkv->view()).bytes_equal(snapshot)) << "torn write changed nothing";
    mem.copy(backup->view(), dev.qkv->view());
    EXPECT_TRUE(download(dev.qkv->view()).bytes_equal(snapshot)) << "restore k=" << k << "\n" << repro();
  }
  // A torn copy (the restore itself failing part-way) leaves exactly the first k elements copied.
  const std::array<int64_t, 2> shape{s.num_tokens, host.cfg.qkv_width()};
  auto scratch = mem.allocate(host.cfg.act_dtype, shape);
  fill_device_bytes(scratch->view().data(), 0x00, host.qkv.bytes(), nullptr);
  synchronize();
  const int64_t k = 1001;
  const KernelRun run = mem.copy(dev.qkv->view(), scratch->view(), WorkLimit{k});
  EXPECT_EQ(run.units_completed, k);
  const HostTensor partial = download(scratch->view());
  EXPECT_EQ(std::memcmp(partial.data(), snapshot.data(), static_cast<std::size_t>(k * 2)), 0);
  const auto pb = partial.as<uint16_t>();
  for (std::size_t i = static_cast<std::size_t>(k); i < pb.size(); ++i) {
    ASSERT_EQ(pb[i], 0) << "element " << i << " past the copy limit was written";
  }
}

TEST_F(GpuTest, FallbackOverwritesEveryCacheByteATornFusedCallWrote) {
  // PR #279: qkv restored, the cache is not; the non-fused path must overwrite every slot the torn
  // fused call wrote. Write-set: after torn fused + restore + fallback (model order, auto), the
  // caches equal those of the fallback alone on a fresh cache.
  CaseShape s;
  s.num_tokens = 90;
  HostCase host = make_case(s, mix_seed(test_seed(), 9000));
  DeviceCase torn = upload_case(host);
  DeviceCase clean = upload_case(host);
  const HostTensor snapshot = host.qkv;
  FusedQkNormRopeCacheArgs a = torn.fused_args();
  a.limit = WorkLimit{s.num_tokens * (s.num_heads_q + 2 * s.num_heads_kv) / 2};
  gpu_->kernels().fused->run(a);
  upload_into(snapshot, torn.qkv->view());
  for (DeviceCase* d : {&torn, &clean}) {
    run_nonfused(gpu_->kernels(), FallbackOrder::kNormThenRope, d->cfg, d->qkv->view(),
                 d->q_weight->view(), d->k_weight->view(), d->cos_sin->view(),
                 d->positions->view(), d->slots->view(), d->cache_views(VCacheLayout::kShuffle));
  }
  expect_same_outputs(torn.download_all(), clean.download_all(), "torn+fallback vs fallback");
  // And unmapped slots still hold the sentinel: compare with the untouched host cache there.
  const HostCase out = clean.download_all();
  const auto slots = host.slots.as<int64_t>();
  std::vector<bool> mapped(static_cast<std::size_t>(host.cfg.num_slots()), false);
  for (int64_t sl : slots) {
    if (sl >= 0) mapped[static_cast<std::size_t>(sl)] = true;
  }
  const layout::PagedCacheShape cs = host.cfg.cache_shape();
  const auto kc = out.k_cache.as<uint16_t>();
  int64_t checked = 0;
  for (int64_t sl = 0; sl < host.cfg.num_slots(); ++sl) {
    if (mapped[static_cast<std::size_t>(sl)]) continue;
    for (int64_t h = 0; h < cs.num_heads_kv; ++h) {
      for (int64_t d = 0; d < cs.head_dim; ++d) {
        const int64_t o = layout::k_xpacked_offset(cs, sl / cs.block_size, h, sl % cs.block_size, d);
        ASSERT_EQ(kc[static_cast<std::size_t>(o)], 0xA5A5) << "unmapped slot " << sl << " written";
        ++checked;
      }
    }
  }
  EXPECT_GT(checked, 0);
}

// ---- bad input, sticky errors, determinism -----------------------------------------------------
TEST_F(GpuTest, BadInputThrowsAndWritesNothing) {
  CaseShape s;
  s.num_tokens = 20;
  HostCase host = make_case(s, mix_seed(test_seed(), 10000));
  host.positions.as<int64_t>()[7] = host.cfg.max_position;  // one past the table
  DeviceCase dev = upload_case(host);
  EXPECT_THROW(gpu_->kernels().fused->run(dev.fused_args()), InvalidInput);
  expect_same_outputs(dev.download_all(), host, "rejected call");
  host.positions.as<int64_t>()[7] = 0;
  host.slots.as<int64_t>()[3] = host.cfg.num_slots();
  DeviceCase dev2 = upload_case(host);
  EXPECT_THROW(gpu_->kernels().fused->run(dev2.fused_args()), InvalidInput);
  expect_same_outputs(dev2.download_all(), host, "rejected call (slot)");
  // A host view handed to the GPU backend is a caller bug, rejected the same way.
  EXPECT_THROW(gpu_->kernels().fused->run(host.fused_args()), InvalidInput);
}

TEST_F(GpuTest, StickyErrorPoisonsEveryLaterCall) {
  CaseShape s;
  s.num_tokens = 8;
  HostCase host = make_case(s, mix_seed(test_seed(), 11000));
  DeviceCase dev = upload_case(host);
  gpu_->kernels().fused->run(dev.fused_args());  // healthy first
  gpu_->inject_sticky_error("device-side assert (modelled)");
  EXPECT_TRUE(gpu_->poisoned());
  const HostCase before = dev.download_all();
  for (int i = 0; i < 3; ++i) {
    try {
      gpu_->kernels().fused->run(dev.fused_args());
      ADD_FAILURE() << "a poisoned backend ran the fused kernel";
    } catch (const KernelError& e) {
      EXPECT_EQ(e.failure_class(), FailureClass::kStickyDevice);
      EXPECT_TRUE(e.injected());
    }
  }
  const std::array<int64_t, 1> shape{4};
  EXPECT_THROW(gpu_->memory().allocate(DType::kBF16, shape), KernelError);
  RmsNormArgs m;
  const QkvViews v = split_qkv(dev.qkv->view(), s.num_heads_q, s.num_heads_kv, s.head_dim);
  m.input = m.output = v.q;
  m.weight = dev.q_weight->view();
  EXPECT_THROW(gpu_->kernels().rms_norm->run(m), KernelError);
  expect_same_outputs(dev.download_all(), before, "poisoned calls wrote");
  // A fresh backend (a new context) works again.
  GpuBackend fresh;
  EXPECT_NO_THROW(fresh.kernels().fused->run(dev.fused_args()));
}

TEST_F(GpuTest, SameSeedTwiceGivesIdenticalDeviceOutputs) {
  CaseShape s;
  s.num_tokens = 513;
  s.kv = KvCacheDtype::kFp8E4M3FN;
  HostCase host = make_case(s, mix_seed(test_seed(), 12000));
  DeviceCase a = upload_case(host);
  DeviceCase b = upload_case(host);
  gpu_->kernels().fused->run(a.fused_args());
  gpu_->kernels().fused->run(b.fused_args());
  expect_same_outputs(a.download_all(), b.download_all(), "determinism");
}

// ---- issue 10 item 8: a cache beyond 4 GiB -----------------------------------------------------
// The fused kernel's fp8 stores divide by one reciprocal per head (kernels/common/exact_quotient.h);
// this runs that division on the device over every (bf16/fp16 significand, fp32 divisor
// significand) pair and every bf16/fp16 value across the admitted divisor range.
TEST_F(GpuTest, OneReciprocalDivisionMatchesTheTrueDivisionOnTheDevice) {
  std::array<float, 64> significands;
  SplitMix64 stream(test_seed());
  for (float& m : significands) {
    m = numeric::bits_float(0x3F800000u | static_cast<uint32_t>(stream.next() & 0x7FFFFFu));
  }
  significands[0] = 1.0f;  // powers of two: the admitted range's edges themselves
  const ExactQuotientCounts c = check_exact_quotient_on_device(significands);
  std::printf("exact quotient: %lld significand pairs, %lld value pairs, %lld needed the "
              "correction, %lld disagree\n",
              static_cast<long long>(c.significand_pairs), static_cast<long long>(c.value_pairs),
              static_cast<long long>(c.corrected), static_cast<long long>(c.disagreements));
  EXPECT_EQ(c.significand_pairs, int64_t{2} * 1024 * (int64_t{1} << 23));
  EXPECT_EQ(c.value_pairs, int64_t{131072} * 120 * 64);
  EXPECT_GT(c.corrected, c.significand_pairs / 100) << "the sweep never exercises the correction";
  EXPECT_EQ(c.disagreements, 0) << "first: v bits 0x" << std::hex << c.first_bad_v_bits
                                << ", d bits 0x" << c.first_bad_d_bits << std::dec << "\n"
                                << repro();
}

TEST_F(GpuTest, CacheBeyondFourGiBIsWrittenAtTheRightOffsets) {
  if (quick()) GTEST_SKIP() << "large allocation skipped in quick mode";
  // bf16 cache, Hkv 8, D 128, BS 16: 32 KiB per block per side; 147456 blocks = 4.5 GiB per side,
  // so K/V offsets of the last blocks exceed 2^31 elements (and 2^32 bytes).
  CaseShape s;
  s.num_tokens = 96;
  s.num_heads_q = 16;
  s.num_heads_kv = 8;
  s.num_blocks = 147456;
  HostCase host = make_case(s, mix_seed(test_seed(), 13000));
  ASSERT_GT(host.k_cache.bytes(), int64_t{4} << 30);
  // Put the tokens at the end of the cache, where 32-bit offsets would wrap.
  auto slots = host.slots.as<int64_t>();
  const int64_t last = host.cfg.num_slots() - 1;
  for (std::size_t t = 0; t < slots.size(); ++t) {
    if (slots[t] >= 0) slots[t] = last - static_cast<int64_t>(t) * 37;
  }
  DeviceCase dev = upload_case(host);
  cpu_.kernels().fused->run(host.fused_args());
  gpu_->kernels().fused->run(dev.fused_args());
  expect_same_outputs(dev.download_all(), host, "cache > 4 GiB");
}

}  // namespace
}  // namespace rcsim::gpu
