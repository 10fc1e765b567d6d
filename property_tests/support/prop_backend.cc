// Property-suite backends (see prop_backend.h): the CPU reference, or the GPU kernels behind
// per-call host<->device mirrors.
#include "property_tests/support/prop_backend.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

#include "core/check.h"
#include "core/mutants.h"
#include "kernels/cpu/cpu_backend.h"

#ifdef RCSIM_HAVE_GPU_BACKEND
#include "kernels/hip/gpu_backend.h"
#include "kernels/hip/gpu_runtime.h"
#endif

namespace rcsim::props {

std::string_view prop_backend_name() {
  static const std::string name = [] {
    const char* env = std::getenv("RCSIM_PROPERTY_BACKEND");
    const std::string v = env == nullptr || *env == '\0' ? "cpu" : env;
    RCSIM_ASSERT(v == "cpu" || v == "gpu", "RCSIM_PROPERTY_BACKEND='{}' (expected cpu | gpu)", v);
    return v;
  }();
  return name;
}

#ifdef RCSIM_HAVE_GPU_BACKEND
namespace {

// The device copies of the host buffers one call touches. Views sharing a host base (q, k, v of
// qkv) share one device buffer covering their byte range [lo, hi) from that base.
class CallMirror {
 public:
  CallMirror() = default;
  CallMirror(const CallMirror&) = delete;
  CallMirror& operator=(const CallMirror&) = delete;
  ~CallMirror() {
    for (Group& g : groups_) gpu::device_free(g.device);
  }
  void add(TensorView& v) {
    if (!v.is_null()) views_.push_back(&v);
  }
  void add(KvCacheViews& c) {
    for (TensorView* v : {&c.k_cache, &c.v_cache, &c.k_scale, &c.v_scale}) add(*v);
  }
  // Uploads every group and rebases the views onto the device copies.
  void upload() {
    for (TensorView* v : views_) {
      RCSIM_ASSERT(v->device == DeviceTag::kHost, "mirror: {} is not a host view", v->describe());
      const int64_t lo = v->offset * dtype_size_bytes(v->dtype);
      const int64_t hi = lo + v->span_bytes();
      Group& g = group_of(v->base);
      g.lo = std::min(g.lo, lo);
      g.hi = std::max(g.hi, hi);
    }
    for (Group& g : groups_) {
      g.device = static_cast<std::byte*>(gpu::device_alloc(std::max<int64_t>(g.hi - g.lo, 1)));
      if (g.hi > g.lo) gpu::copy_to_device(g.device, g.host + g.lo, g.hi - g.lo);
    }
    for (TensorView* v : views_) {
      const Group& g = group_of(v->base);
      const int64_t elem = dtype_size_bytes(v->dtype);
      RCSIM_ASSERT(g.lo % elem == 0, "mirror: misaligned view group for {}", v->describe());
      v->offset -= g.lo / elem;
      v->base = g.device;
      v->device = DeviceTag::kGpu;
    }
  }
  // Device results back into the host buffers (after a call that returned).
  void download() {
    for (const Group& g : groups_) {
      if (g.hi > g.lo) gpu::copy_to_host(g.host + g.lo, g.device, g.hi - g.lo);
    }
  }

 private:
  struct Group {
    std::byte* host = nullptr;
    int64_t lo = INT64_MAX;
    int64_t hi = 0;
    std::byte* device = nullptr;
  };
  Group& group_of(std::byte* host_base) {
    for (Group& g : groups_) {
      if (g.host == host_base) return g;
    }
    Group g;
    g.host = host_base;
    groups_.push_back(g);
    return groups_.back();
  }
  std::vector<TensorView*> views_;
  std::vector<Group> groups_;
};

// Runs `inner` on a mirrored copy of `args`; `add_views` names the views of the args type.
template <typename Args, typename Kernel, typename AddViews>
KernelRun mirrored_run(Kernel& inner, const Args& args, AddViews&& add_views) {
  Args d = args;
  CallMirror m;
  add_views(m, d);
  m.upload();
  const KernelRun r = inner.run(d);
  m.download();
  return r;
}

class MirroredFused final : public FusedQkNormRopeCacheKernel {
 public:
  explicit MirroredFused(FusedQkNormRopeCacheKernel& k) : k_(k) {}
  KernelRun run(const FusedQkNormRopeCacheArgs& a) override {
    return mirrored_run(k_, a, [](CallMirror& m, FusedQkNormRopeCacheArgs& d) {
      for (TensorView* v : {&d.qkv, &d.q_weight, &d.k_weight, &d.cos_sin_cache, &d.positions,
                            &d.slot_mapping, &d.q_out, &d.k_out}) {
        m.add(*v);
      }
      m.add(d.cache);
    });
  }

 private:
  FusedQkNormRopeCacheKernel& k_;
};

class MirroredRopeReshapeCache final : public RopeReshapeCacheKernel {
 public:
  explicit MirroredRopeReshapeCache(RopeReshapeCacheKernel& k) : k_(k) {}
  KernelRun run(const RopeReshapeCacheArgs& a) override {
    return mirrored_run(k_, a, [](CallMirror& m, RopeReshapeCacheArgs& d) {
      for (TensorView* v : {&d.q, &d.k, &d.v, &d.cos_sin_cache, &d.positions, &d.slot_mapping}) {
        m.add(*v);
      }
      m.add(d.cache);
    });
  }

 private:
  RopeReshapeCacheKernel& k_;
};

class MirroredRotary final : public RotaryEmbeddingKernel {
 public:
  explicit MirroredRotary(RotaryEmbeddingKernel& k) : k_(k) {}
  KernelRun run(const RotaryArgs& a) override {
    return mirrored_run(k_, a, [](CallMirror& m, RotaryArgs& d) {
      for (TensorView* v : {&d.q, &d.k, &d.positions, &d.cos_sin_cache}) m.add(*v);
    });
  }

 private:
  RotaryEmbeddingKernel& k_;
};

class MirroredRmsNorm final : public RmsNormKernel {
 public:
  explicit MirroredRmsNorm(RmsNormKernel& k) : k_(k) {}
  KernelRun run(const RmsNormArgs& a) override {
    return mirrored_run(k_, a, [](CallMirror& m, RmsNormArgs& d) {
      for (TensorView* v : {&d.input, &d.output, &d.weight}) m.add(*v);
    });
  }

 private:
  RmsNormKernel& k_;
};

class MirroredReshapeAndCache final : public ReshapeAndCacheKernel {
 public:
  explicit MirroredReshapeAndCache(ReshapeAndCacheKernel& k) : k_(k) {}
  KernelRun run(const ReshapeAndCacheArgs& a) override {
    return mirrored_run(k_, a, [](CallMirror& m, ReshapeAndCacheArgs& d) {
      for (TensorView* v : {&d.key, &d.value, &d.slot_mapping}) m.add(*v);
      m.add(d.cache);
    });
  }

 private:
  ReshapeAndCacheKernel& k_;
};

class MirroredPerTokenQuantCache final : public PerTokenQuantCacheKernel {
 public:
  explicit MirroredPerTokenQuantCache(PerTokenQuantCacheKernel& k) : k_(k) {}
  KernelRun run(const PerTokenQuantCacheArgs& a) override {
    return mirrored_run(k_, a, [](CallMirror& m, PerTokenQuantCacheArgs& d) {
      for (TensorView* v : {&d.key, &d.value, &d.slot_mapping}) m.add(*v);
      m.add(d.cache);
    });
  }

 private:
  PerTokenQuantCacheKernel& k_;
};

// Backups live in host memory (the CPU memory backend allocates them); every copy - backup,
// restore, partial restore under a WorkLimit - runs on the device through the GPU memory backend.
class MirroredMemory final : public MemoryBackend {
 public:
  MirroredMemory(MemoryBackend& host, MemoryBackend& gpu) : host_(host), gpu_(gpu) {}
  DeviceTag device() const override { return DeviceTag::kHost; }
  std::unique_ptr<DeviceBuffer> allocate(DType dtype, std::span<const int64_t> shape) override {
    return host_.allocate(dtype, shape);
  }
  KernelRun copy(const TensorView& src, const TensorView& dst, WorkLimit limit) override {
    TensorView s = src, d = dst;
    CallMirror m;
    m.add(s);
    m.add(d);
    m.upload();
    const KernelRun r = gpu_.copy(s, d, limit);
    m.download();
    return r;
  }

 private:
  MemoryBackend& host_;
  MemoryBackend& gpu_;
};

[[noreturn]] void no_gpu(const std::string& why) {
  const char* require = std::getenv("RCSIM_REQUIRE_GPU");
  if (require != nullptr && std::string(require) == "1") {
    std::fprintf(stderr, "RCSIM_PROPERTY_BACKEND=gpu: %s, and RCSIM_REQUIRE_GPU=1\n", why.c_str());
    std::abort();
  }
  std::printf("SKIPPED (RCSIM_PROPERTY_BACKEND=gpu): %s\n", why.c_str());
  std::fflush(stdout);
  std::exit(77);
}

// RCSIM_MUTANT naming a device-only mutant (core/mutants.h, e.g. gpu-v-shuffle-index) plants it
// for the whole binary: the GPU property suites must then fail (the issue-14 negative). Other
// mutants have their own *Negative* tests and are rejected here.
void plant_device_only_mutant() {
  const char* env = std::getenv("RCSIM_MUTANT");
  if (env == nullptr || *env == '\0') return;
  const std::optional<Mutant> m = mutant_from_name(env);
  RCSIM_ASSERT(m.has_value() && (*m == Mutant::kNone || mutant_is_device_only(*m)),
               "RCSIM_MUTANT='{}': the property suites take only device-only mutants here", env);
  set_active_mutant(*m);
  std::printf("rcsim properties: device-only mutant %s planted (RCSIM_MUTANT)\n", env);
}

}  // namespace

struct PropBackend::Impl {
  cpu::CpuBackend cpu;
  std::unique_ptr<gpu::GpuBackend> gpu;
  std::unique_ptr<MirroredFused> fused;
  std::unique_ptr<MirroredRopeReshapeCache> rope_reshape_cache;
  std::unique_ptr<MirroredRotary> rotary;
  std::unique_ptr<MirroredRmsNorm> rms_norm;
  std::unique_ptr<MirroredReshapeAndCache> reshape_and_cache;
  std::unique_ptr<MirroredPerTokenQuantCache> per_token_quant_cache;
  std::unique_ptr<MirroredMemory> memory;

  Impl() {
    if (prop_backend_name() != "gpu") return;
    static const bool ready = [] {
      if (gpu::query_device().device_count == 0) no_gpu("no GPU is visible");
      // One GPU per test process when CTest hands them out (RESOURCE_GROUPS gpus:1).
      if (const int d = gpu::ctest_assigned_device(); d >= 0) gpu::select_device(d);
      plant_device_only_mutant();
      return true;
    }();
    (void)ready;
    gpu = std::make_unique<gpu::GpuBackend>();
    const KernelSet g = gpu->kernels();
    fused = std::make_unique<MirroredFused>(*g.fused);
    rope_reshape_cache = std::make_unique<MirroredRopeReshapeCache>(*g.rope_reshape_cache);
    rotary = std::make_unique<MirroredRotary>(*g.rotary);
    rms_norm = std::make_unique<MirroredRmsNorm>(*g.rms_norm);
    reshape_and_cache = std::make_unique<MirroredReshapeAndCache>(*g.reshape_and_cache);
    per_token_quant_cache = std::make_unique<MirroredPerTokenQuantCache>(*g.per_token_quant_cache);
    memory = std::make_unique<MirroredMemory>(*cpu.kernels().memory, *g.memory);
  }
  KernelSet kernels() {
    if (!gpu) return cpu.kernels();
    return KernelSet{fused.get(),    rope_reshape_cache.get(),    rotary.get(),
                     rms_norm.get(), reshape_and_cache.get(), per_token_quant_cache.get(),
                     memory.get()};
  }
};
#else
struct PropBackend::Impl {
  cpu::CpuBackend cpu;
  Impl() {
    if (prop_backend_name() == "gpu") {
      std::printf("SKIPPED (RCSIM_PROPERTY_BACKEND=gpu): this build has no GPU backend\n");
      std::fflush(stdout);
      std::exit(77);
    }
  }
  KernelSet kernels() { return cpu.kernels(); }
};
#endif

PropBackend::PropBackend() : impl_(std::make_unique<Impl>()) {}
PropBackend::~PropBackend() = default;
KernelSet PropBackend::kernels() { return impl_->kernels(); }

}  // namespace rcsim::props
