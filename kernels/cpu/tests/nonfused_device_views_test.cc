// Goal: run_nonfused() composes the kernels of any backend (the simulator's GPU graph replay runs
// it on the device under test): views tagged as device memory must reach that backend's kernels
// and never the CPU-only value checks, and views split across devices are refused before any
// kernel runs. Method: a "device" kernel set that takes only GPU-tagged views and forwards them,
// retagged, to the CPU kernels over the same memory; its results must equal the plain CPU run bit
// for bit (q/k and both caches, sentinels included), for both fallback orders, auto and fp8.
#include <cstdint>
#include <functional>

#include <gtest/gtest.h>

#include "core/check.h"
#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/nonfused_reference.h"
#include "kernels/cpu/tests/test_support.h"

namespace rcsim::cpu {
namespace {

TensorView tagged(TensorView v, DeviceTag tag) {
  if (!v.is_null()) v.device = tag;
  return v;
}
KvCacheViews tagged(KvCacheViews c, DeviceTag tag) {
  c.k_cache = tagged(c.k_cache, tag);
  c.v_cache = tagged(c.v_cache, tag);
  c.k_scale = tagged(c.k_scale, tag);
  c.v_scale = tagged(c.v_scale, tag);
  return c;
}
void require_gpu(const TensorView& v) {
  RCSIM_REQUIRE(v.is_null() || v.device == DeviceTag::kGpu, "device kernel got a host view: {}",
                v.describe());
}

// Kernels of a pretend device whose memory is host memory: they accept only GPU-tagged views
// and count their calls.
struct PretendDevice {
  KernelSet cpu;
  int calls = 0;

  struct Rotary final : RotaryEmbeddingKernel {
    PretendDevice* d;
    KernelRun run(const RotaryArgs& a) override {
      for (const TensorView* v : {&a.q, &a.k, &a.positions, &a.cos_sin_cache}) require_gpu(*v);
      RotaryArgs h = a;
      h.q = tagged(a.q, DeviceTag::kHost);
      h.k = tagged(a.k, DeviceTag::kHost);
      h.positions = tagged(a.positions, DeviceTag::kHost);
      h.cos_sin_cache = tagged(a.cos_sin_cache, DeviceTag::kHost);
      ++d->calls;
      return d->cpu.rotary->run(h);
    }
  } rotary;
  struct Norm final : RmsNormKernel {
    PretendDevice* d;
    KernelRun run(const RmsNormArgs& a) override {
      for (const TensorView* v : {&a.input, &a.output, &a.weight}) require_gpu(*v);
      RmsNormArgs h = a;
      h.input = tagged(a.input, DeviceTag::kHost);
      h.output = tagged(a.output, DeviceTag::kHost);
      h.weight = tagged(a.weight, DeviceTag::kHost);
      ++d->calls;
      return d->cpu.rms_norm->run(h);
    }
  } norm;
  struct Cache final : ReshapeAndCacheKernel {
    PretendDevice* d;
    KernelRun run(const ReshapeAndCacheArgs& a) override {
      for (const TensorView* v : {&a.key, &a.value, &a.slot_mapping}) require_gpu(*v);
      ReshapeAndCacheArgs h = a;
      h.key = tagged(a.key, DeviceTag::kHost);
      h.value = tagged(a.value, DeviceTag::kHost);
      h.slot_mapping = tagged(a.slot_mapping, DeviceTag::kHost);
      h.cache = tagged(a.cache, DeviceTag::kHost);
      ++d->calls;
      return d->cpu.reshape_and_cache->run(h);
    }
  } cache;
  struct QuantCache final : PerTokenQuantCacheKernel {
    PretendDevice* d;
    KernelRun run(const PerTokenQuantCacheArgs& a) override {
      for (const TensorView* v : {&a.key, &a.value, &a.slot_mapping}) require_gpu(*v);
      PerTokenQuantCacheArgs h = a;
      h.key = tagged(a.key, DeviceTag::kHost);
      h.value = tagged(a.value, DeviceTag::kHost);
      h.slot_mapping = tagged(a.slot_mapping, DeviceTag::kHost);
      h.cache = tagged(a.cache, DeviceTag::kHost);
      ++d->calls;
      return d->cpu.per_token_quant_cache->run(h);
    }
  } quant_cache;

  explicit PretendDevice(const KernelSet& cpu_kernels) : cpu(cpu_kernels) {
    rotary.d = norm.d = cache.d = quant_cache.d = this;
  }
  KernelSet kernels() {
    KernelSet k = cpu;
    k.fused = nullptr;
    k.rope_reshape_cache = nullptr;
    k.rotary = &rotary;
    k.rms_norm = &norm;
    k.reshape_and_cache = &cache;
    k.per_token_quant_cache = &quant_cache;
    return k;
  }
};

NonFusedArgs on_device(NonFusedArgs a) {
  for (TensorView* v : {&a.q, &a.k, &a.v, &a.q_weight, &a.k_weight, &a.cos_sin_cache,
                        &a.positions, &a.slot_mapping}) {
    *v = tagged(*v, DeviceTag::kGpu);
  }
  a.cache = tagged(a.cache, DeviceTag::kGpu);
  return a;
}

AttentionConfig config(KvCacheDtype kv) {
  AttentionConfig c;
  c.num_heads_q = 8;
  c.num_heads_kv = 2;
  c.head_dim = 128;
  c.rotary_dim = 128;
  c.is_neox = true;
  c.eps = 1e-6f;
  c.act_dtype = DType::kBF16;
  c.kv_cache_dtype = kv;
  c.block_size = 16;
  c.num_blocks = 4;
  c.max_position = 256;
  return c;
}

void expect_same(const HostTensor& got, const HostTensor& want, const char* what) {
  const auto bad = testing::first_byte_mismatch(got, want);
  EXPECT_FALSE(bad.has_value()) << what << ": first differing byte " << bad.value_or(-1) << "; "
                                << testing::repro_line();
}

TEST(NonFusedOnDeviceViews, DeviceKernelsRunAndMatchTheHostRunBitForBit) {
  CpuBackend backend;
  int index = 0;
  for (KvCacheDtype kv : {KvCacheDtype::kAuto, KvCacheDtype::kFp8E4M3FN}) {
    for (FallbackOrder order : {FallbackOrder::kRopeThenNorm, FallbackOrder::kNormThenRope}) {
      Prng rng = Prng::stream(testing::test_seed(), "nonfused-device-views", index++);
      testing::LayerOptions opt;
      opt.tokens = 6;
      testing::Layer host = testing::make_layer(config(kv), rng, opt);
      testing::Layer dev = host;
      run_nonfused(backend.kernels(), order, host.nonfused_args());
      PretendDevice device(backend.kernels());
      run_nonfused(device.kernels(), order, on_device(dev.nonfused_args()));
      EXPECT_EQ(device.calls, 4) << "rotary, two norms and the cache write; "
                                 << testing::repro_line();
      expect_same(dev.qkv, host.qkv, "qkv (q/k written in place, v untouched)");
      expect_same(dev.k_cache, host.k_cache, "k_cache");
      expect_same(dev.v_cache, host.v_cache, "v_cache");
      if (is_fp8(kv)) {
        expect_same(dev.k_scale, host.k_scale, "k_scale");
        expect_same(dev.v_scale, host.v_scale, "v_scale");
      }
    }
  }
}

TEST(NonFusedOnDeviceViews, ViewsSplitAcrossDevicesAreRefusedBeforeAnyKernel) {
  CpuBackend backend;
  Prng rng = Prng::stream(testing::test_seed(), "nonfused-device-views-mixed", 0);
  testing::Layer l = testing::make_layer(config(KvCacheDtype::kAuto), rng);
  const testing::Layer before = l;
  PretendDevice device(backend.kernels());
  NonFusedArgs a = on_device(l.nonfused_args());
  a.slot_mapping = tagged(a.slot_mapping, DeviceTag::kHost);
  EXPECT_THROW(run_nonfused(device.kernels(), FallbackOrder::kNormThenRope, a), InvalidInput)
      << testing::repro_line();
  EXPECT_EQ(device.calls, 0) << testing::repro_line();
  expect_same(l.qkv, before.qkv, "qkv");
  expect_same(l.k_cache, before.k_cache, "k_cache");
  expect_same(l.v_cache, before.v_cache, "v_cache");
}

}  // namespace
}  // namespace rcsim::cpu
