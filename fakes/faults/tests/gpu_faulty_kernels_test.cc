// Goal: the fault decorators behave identically over the GPU backend and over the CPU reference:
// the same plan and seed leave the same bytes in qkv, both caches, the scales and the norm output,
// for torn writes at every unit boundary of every kernel (device-side WorkLimit) and for garbage,
// NaN, cacheonly, sticky and late faults (payloads through the DeviceMemoryAccess hooks). The CPU
// side of each comparison is itself checked by faulty_kernels_test, so agreement here carries
// that check onto the real GPU kernels.
// Method: one small layer per case (fault_test_support.h), mirrored onto the device by remapping
// every host view onto its uploaded buffer; each plan runs on both backends; all outputs are
// downloaded and compared byte for byte. Without a device the test skips, unless
// RCSIM_REQUIRE_GPU=1 (set on the GPU machine) makes that a failure.
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "core/errors.h"
#include "fakes/faults/faulty_kernels.h"
#include "fault_injection/plan/fault_plan.h"
#include "fakes/faults/tests/fault_test_support.h"
#include "kernels/cpu/cpu_backend.h"
#include "kernels/hip/gpu_backend.h"

namespace rcsim {
namespace {

using namespace fault_testing;

constexpr int64_t kTokens = 5;
const uint64_t kSeedAtStartup = test_seed();

// The device mirror of a Layer: every host tensor uploaded; host views remapped onto it.
class DeviceMirror {
 public:
  explicit DeviceMirror(const Layer& layer) {
    add(layer.qkv);
    add(layer.q_weight);
    add(layer.k_weight);
    add(layer.cos_sin);
    add(layer.positions);
    add(layer.slots);
    for (const HostTensor& t : layer.out) add(t);
  }
  // The device view with the same dtype, shape, strides and offset as `host`.
  TensorView map(const TensorView& host) const {
    if (host.is_null()) return host;
    for (const Pair& p : pairs_) {
      if (p.host == host.base) {
        TensorView v = host;
        v.base = p.device->view().base;
        v.device = DeviceTag::kGpu;
        return v;
      }
    }
    ADD_FAILURE() << "no device mirror for " << host.describe();
    return host;
  }
  // Downloads every output buffer into a snapshot comparable with Layer::snapshot().
  Snapshot download_outputs(const Layer& layer) const {
    Snapshot s = layer.snapshot();
    for (int b = 0; b < kBufCount; ++b) {
      const HostTensor& h = layer.buffer(b);
      if (h.empty()) continue;
      s[static_cast<std::size_t>(b)] = gpu::download(map(h.view()));
    }
    return s;
  }

 private:
  void add(const HostTensor& t) {
    if (t.empty()) return;
    pairs_.push_back({t.data(), gpu::upload(t)});
  }
  struct Pair {
    const std::byte* host;
    std::unique_ptr<gpu::GpuBuffer> device;
  };
  std::vector<Pair> pairs_;
};

template <typename Args>
Args on_device(Args a, const DeviceMirror& m);
template <>
FusedQkNormRopeCacheArgs on_device(FusedQkNormRopeCacheArgs a, const DeviceMirror& m) {
  for (TensorView* v : {&a.qkv, &a.q_weight, &a.k_weight, &a.cos_sin_cache, &a.positions,
                        &a.slot_mapping, &a.cache.k_cache, &a.cache.v_cache, &a.cache.k_scale,
                        &a.cache.v_scale}) {
    *v = m.map(*v);
  }
  return a;
}
template <>
RopeReshapeCacheArgs on_device(RopeReshapeCacheArgs a, const DeviceMirror& m) {
  for (TensorView* v : {&a.q, &a.k, &a.v, &a.cos_sin_cache, &a.positions, &a.slot_mapping,
                        &a.cache.k_cache, &a.cache.v_cache}) {
    *v = m.map(*v);
  }
  return a;
}
template <>
RotaryArgs on_device(RotaryArgs a, const DeviceMirror& m) {
  for (TensorView* v : {&a.q, &a.k, &a.positions, &a.cos_sin_cache}) *v = m.map(*v);
  return a;
}
template <>
RmsNormArgs on_device(RmsNormArgs a, const DeviceMirror& m) {
  for (TensorView* v : {&a.input, &a.output, &a.weight}) *v = m.map(*v);
  return a;
}
template <>
ReshapeAndCacheArgs on_device(ReshapeAndCacheArgs a, const DeviceMirror& m) {
  for (TensorView* v : {&a.key, &a.value, &a.slot_mapping, &a.cache.k_cache, &a.cache.v_cache}) {
    *v = m.map(*v);
  }
  return a;
}
template <>
PerTokenQuantCacheArgs on_device(PerTokenQuantCacheArgs a, const DeviceMirror& m) {
  for (TensorView* v : {&a.key, &a.value, &a.slot_mapping, &a.cache.k_cache, &a.cache.v_cache,
                        &a.cache.k_scale, &a.cache.v_scale}) {
    *v = m.map(*v);
  }
  return a;
}

KernelRun run_on_device(Which w, const Layer& l, const DeviceMirror& m, const KernelSet& ks) {
  switch (w) {
    case Which::kFused: return ks.fused->run(on_device(l.fused_args(), m));
    case Which::kRopeCache: return ks.rope_reshape_cache->run(on_device(l.rope_cache_args(), m));
    case Which::kRotary: return ks.rotary->run(on_device(l.rotary_args(), m));
    case Which::kNorm: return ks.rms_norm->run(on_device(l.norm_args(), m));
    case Which::kCache: return ks.reshape_and_cache->run(on_device(l.cache_args(), m));
    case Which::kPerToken: return ks.per_token_quant_cache->run(on_device(l.per_token_args(), m));
  }
  return {};
}

struct Outcome {
  std::optional<FailureClass> failure;
  Snapshot memory;
};

class GpuFaultsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const gpu::DeviceInfo info = gpu::query_device();
    if (info.device_count == 0) {
      if (std::getenv("RCSIM_REQUIRE_GPU") != nullptr) FAIL() << "RCSIM_REQUIRE_GPU set, no device";
      GTEST_SKIP() << "no " << info.platform << " device";
    }
    gpu_ = std::make_unique<gpu::GpuBackend>();
  }

  // `calls` runs of `w` under one FaultyKernelSet (late/sticky need several).
  Outcome run_cpu(Which w, KvCacheDtype kv, const std::string& spec, uint64_t stream, int calls) {
    Layer layer(small_config(kv), kTokens, stream);
    FaultyKernelSet faulty(cpu_.kernels(), parse_fault_plan(spec), test_seed());
    Outcome o;
    for (int i = 0; i < calls; ++i) {
      try {
        layer.run(w, faulty.kernels());
      } catch (const KernelError& e) {
        EXPECT_TRUE(e.injected()) << e.what();
        o.failure = e.failure_class();
      }
    }
    o.memory = layer.snapshot();
    return o;
  }
  Outcome run_gpu(Which w, KvCacheDtype kv, const std::string& spec, uint64_t stream, int calls) {
    Layer layer(small_config(kv), kTokens, stream);
    DeviceMirror mirror(layer);
    FaultyKernelSet faulty(gpu_->kernels(), parse_fault_plan(spec), test_seed());
    DeviceMemoryAccess access;
    access.download = [](const TensorView& v) { return gpu::download(v); };
    access.upload = [](const HostTensor& h, const TensorView& v) { gpu::upload_into(h, v); };
    faulty.set_device_memory_access(access);
    Outcome o;
    for (int i = 0; i < calls; ++i) {
      try {
        run_on_device(w, layer, mirror, faulty.kernels());
      } catch (const KernelError& e) {
        EXPECT_TRUE(e.injected()) << e.what();
        o.failure = e.failure_class();
      }
    }
    o.memory = mirror.download_outputs(layer);
    return o;
  }
  void expect_same(Which w, KvCacheDtype kv, const std::string& spec, int calls = 1) {
    SCOPED_TRACE(fmt::format("{} {} {} (repro: RCSIM_SEED={} gpu_faulty_kernels_test)",
                             which_name(w), kv_cache_dtype_name(kv), spec, test_seed()));
    const Outcome c = run_cpu(w, kv, spec, 50, calls);
    const Outcome g = run_gpu(w, kv, spec, 50, calls);
    EXPECT_EQ(c.failure, g.failure);
    ASSERT_EQ(first_difference(c.memory, g.memory), "");
    ++compared_;
  }

  cpu::CpuBackend cpu_;
  std::unique_ptr<gpu::GpuBackend> gpu_;
  int64_t compared_ = 0;
};

struct KernelCase {
  Which which;
  FaultSite site;
  KvCacheDtype kv;
};
const KernelCase kCases[] = {
    {Which::kFused, FaultSite::kFused, KvCacheDtype::kAuto},
    {Which::kFused, FaultSite::kFused, KvCacheDtype::kFp8E4M3FN},
    {Which::kRopeCache, FaultSite::kRopeCache, KvCacheDtype::kAuto},
    {Which::kRotary, FaultSite::kFallbackRope, KvCacheDtype::kAuto},
    {Which::kNorm, FaultSite::kFallbackNorm, KvCacheDtype::kAuto},
    {Which::kCache, FaultSite::kFallbackCache, KvCacheDtype::kAuto},
    {Which::kPerToken, FaultSite::kFallbackCache, KvCacheDtype::kFp8E4M3FN},
};

TEST_F(GpuFaultsTest, TornAtEveryBoundaryMatchesTheCpuReference) {
  for (const KernelCase& c : kCases) {
    Layer probe(small_config(c.kv), kTokens, 50);
    FaultyKernelSet clean(cpu_.kernels(), {}, 0);
    const int64_t n = probe.run(c.which, clean.kernels(), WorkLimit{0}).units_total;
    FaultRule rule;
    rule.site = c.site;
    rule.kind = FaultKind::kTorn;
    for (const FaultPlan& plan : enumerate_fail_at_every_step(rule, n)) {
      expect_same(c.which, c.kv, to_string(plan));
    }
  }
  std::printf("torn plans compared CPU vs GPU: %lld\n", static_cast<long long>(compared_));
}

TEST_F(GpuFaultsTest, PayloadCacheOnlyStickyAndLateMatchTheCpuReference) {
  const KvCacheDtype fp8 = KvCacheDtype::kFp8E4M3FN;
  for (const char* spec : {"fused:garbage", "fused:garbage(k=17,p=1/2)", "fused:garbage(k=3,region=v)",
                           "fused:nan(k=4,region=cache)", "fused:nan(region=q)",
                           "fused:cacheonly(k=mid)", "fused:cacheonly(k=all)",
                           "fused:torn(unit=token,k=seed)", "fused:sticky(k=last)"}) {
    expect_same(Which::kFused, fp8, spec);
  }
  expect_same(Which::kRopeCache, KvCacheDtype::kAuto, "rope_cache:cacheonly(k=mid)");
  expect_same(Which::kRopeCache, KvCacheDtype::kAuto, "rope_cache:garbage(k=5,region=cache)");
  expect_same(Which::kNorm, KvCacheDtype::kAuto, "fallback.norm:nan(k=3)");
  expect_same(Which::kPerToken, fp8, "fallback.cache:garbage(k=2)");
  // Several calls: the late write, the sticky follow-ups.
  expect_same(Which::kFused, KvCacheDtype::kAuto, "fused:late(k=mid,after=1)", 3);
  expect_same(Which::kFused, KvCacheDtype::kAuto, "fused:launch(ratio=1/2)", 6);
  std::printf("fault plans compared CPU vs GPU: %lld\n", static_cast<long long>(compared_));
}

}  // namespace
}  // namespace rcsim
