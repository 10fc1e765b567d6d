// The fault-injecting decorators (faulty_kernels.h): one small class per kernel interface that
// asks the fault engine (fault_engine.h) what to do on each call and otherwise forwards to the real
// kernel, plus the decorated memory backend (backup allocations, restore copies).
#include "fakes/faults/faulty_kernels.h"

#include <memory>
#include <mutex>
#include <string>
#include <utility>

#include <fmt/format.h>

#include "core/check.h"
#include "fakes/faults/fault_engine.h"

namespace rcsim {

using fault_detail::BufferRegistry;
using fault_detail::ix;

namespace {
constexpr auto kNoCacheOnly = [](const auto&) {
  RCSIM_FAIL("cacheonly at a site that writes no cache");
};
}  // namespace

struct FaultyKernelSet::Impl::Fused final : FusedQkNormRopeCacheKernel {
  explicit Fused(Impl& e) : engine(e) {}
  KernelRun run(const FusedQkNormRopeCacheArgs& args) override {
    return engine.run_kernel(FaultSite::kFused, *engine.inner.fused, args,
                             [this](const FusedQkNormRopeCacheArgs& limited) {
                               // The out-of-place variant leaves qkv alone: point q/k outputs at
                               // scratch unless the caller already did.
                               FusedQkNormRopeCacheArgs redirected = limited;
                               std::unique_ptr<DeviceBuffer> q_scratch;
                               std::unique_ptr<DeviceBuffer> k_scratch;
                               const int64_t t = limited.qkv.size(0);
                               const int64_t d = limited.cfg.head_dim;
                               if (redirected.q_out.is_null()) {
                                 q_scratch = engine.scratch(limited.qkv.dtype,
                                                            {t, limited.cfg.num_heads_q, d});
                                 redirected.q_out = q_scratch->view();
                               }
                               if (redirected.k_out.is_null()) {
                                 k_scratch = engine.scratch(limited.qkv.dtype,
                                                            {t, limited.cfg.num_heads_kv, d});
                                 redirected.k_out = k_scratch->view();
                               }
                               engine.inner.fused->run(redirected);
                             });
  }
  Impl& engine;
};

struct FaultyKernelSet::Impl::RopeCache final : RopeReshapeCacheKernel {
  explicit RopeCache(Impl& e) : engine(e) {}
  KernelRun run(const RopeReshapeCacheArgs& args) override {
    return engine.run_kernel(
        FaultSite::kRopeCache, *engine.inner.rope_reshape_cache, args,
        [this](const RopeReshapeCacheArgs& limited) {
          // Branch B ropes q and k in place: run it on copies so only the cache changes.
          RopeReshapeCacheArgs redirected = limited;
          auto q_copy = engine.scratch(limited.q.dtype,
                                       {limited.q.size(0), limited.q.size(1), limited.q.size(2)});
          auto k_copy = engine.scratch(limited.k.dtype,
                                       {limited.k.size(0), limited.k.size(1), limited.k.size(2)});
          engine.inner.memory->copy(limited.q, q_copy->view());
          engine.inner.memory->copy(limited.k, k_copy->view());
          redirected.q = q_copy->view();
          redirected.k = k_copy->view();
          engine.inner.rope_reshape_cache->run(redirected);
        });
  }
  Impl& engine;
};

struct FaultyKernelSet::Impl::Rotary final : RotaryEmbeddingKernel {
  explicit Rotary(Impl& e) : engine(e) {}
  KernelRun run(const RotaryArgs& args) override {
    return engine.run_kernel(FaultSite::kFallbackRope, *engine.inner.rotary, args, kNoCacheOnly);
  }
  Impl& engine;
};

struct FaultyKernelSet::Impl::Norm final : RmsNormKernel {
  explicit Norm(Impl& e) : engine(e) {}
  KernelRun run(const RmsNormArgs& args) override {
    return engine.run_kernel(FaultSite::kFallbackNorm, *engine.inner.rms_norm, args, kNoCacheOnly);
  }
  Impl& engine;
};

struct FaultyKernelSet::Impl::Cache final : ReshapeAndCacheKernel {
  explicit Cache(Impl& e) : engine(e) {}
  KernelRun run(const ReshapeAndCacheArgs& args) override {
    return engine.run_kernel(FaultSite::kFallbackCache, *engine.inner.reshape_and_cache, args,
                             kNoCacheOnly);
  }
  Impl& engine;
};

struct FaultyKernelSet::Impl::PerToken final : PerTokenQuantCacheKernel {
  explicit PerToken(Impl& e) : engine(e) {}
  KernelRun run(const PerTokenQuantCacheArgs& args) override {
    return engine.run_kernel(FaultSite::kFallbackCache, *engine.inner.per_token_quant_cache, args,
                             kNoCacheOnly);
  }
  Impl& engine;
};

// A buffer handed out by the decorated memory backend: forgets its base when it dies, so a later
// allocation at the same address is classified afresh.
class RegisteredBuffer final : public DeviceBuffer {
 public:
  RegisteredBuffer(std::unique_ptr<DeviceBuffer> inner,
                   std::shared_ptr<BufferRegistry> registry)
      : inner_(std::move(inner)), registry_(std::move(registry)) {
    std::lock_guard<std::mutex> lock(registry_->mu);
    registry_->bases.insert(inner_->view().base);
  }
  ~RegisteredBuffer() override {
    std::lock_guard<std::mutex> lock(registry_->mu);
    registry_->bases.erase(inner_->view().base);
  }
  TensorView view() const override { return inner_->view(); }

 private:
  std::unique_ptr<DeviceBuffer> inner_;
  std::shared_ptr<BufferRegistry> registry_;
};

struct FaultyKernelSet::Impl::Memory final : MemoryBackend {
  explicit Memory(Impl& e) : engine(e) {}
  DeviceTag device() const override { return engine.inner.memory->device(); }

  std::unique_ptr<DeviceBuffer> allocate(DType dtype, std::span<const int64_t> shape) override {
    const Decision d = engine.begin_call(FaultSite::kBackup, kName);
    if (d.rule != nullptr) {
      const std::string where = fmt::format("backup call {}", d.call_index);
      if (d.rule->kind == FaultKind::kSticky) {
        std::lock_guard<std::mutex> lock(engine.mu);
        ++engine.stats.injections[ix(FaultSite::kBackup)][ix(FaultKind::kSticky)];
        engine.poisoned = true;
        throw engine.injected(FailureClass::kStickyDevice, kName,
                              "sticky device error (" + where + ")");
      }
      engine.fail_without_writing(FaultSite::kBackup, kName, d);
      RCSIM_FAIL("kind {} at backup", fault_kind_name(d.rule->kind));
    }
    return std::make_unique<RegisteredBuffer>(engine.inner.memory->allocate(dtype, shape),
                                              engine.registry);
  }

  KernelRun copy(const TensorView& src, const TensorView& dst, WorkLimit limit) override {
    bool from_our_buffer = false;
    {
      std::lock_guard<std::mutex> lock(engine.registry->mu);
      from_our_buffer = engine.registry->bases.count(src.base) > 0;
    }
    if (!from_our_buffer) {
      // Taking the backup: no rule applies, but the device's state does.
      engine.begin_call(FaultSite::kBackup, kName, /*select_rule=*/false);
      return engine.inner.memory->copy(src, dst, limit);
    }
    const Decision d = engine.begin_call(FaultSite::kRestore, kName);
    if (d.rule == nullptr) {
      const KernelRun run = engine.inner.memory->copy(src, dst, limit);
      engine.record_shape(FaultSite::kRestore, run.units_total, src.rank > 0 ? src.size(0) : 0);
      return run;
    }
    const FaultRule& rule = *d.rule;
    if (rule.kind == FaultKind::kLaunch) engine.fail_without_writing(FaultSite::kRestore, kName, d);
    const int64_t units_total = engine.inner.memory->copy(src, dst, WorkLimit{0}).units_total;
    const int64_t rows = src.rank > 0 ? src.size(0) : 0;
    engine.record_shape(FaultSite::kRestore, units_total, rows);
    int64_t k = 0;  // sticky defaults to k = 0 (nothing copied)
    if (rule.kind == FaultKind::kPartial || rule.k) {
      k = engine.resolve_native_k(rule, d, units_total, rows, TornUnit::kHead);
    }
    if (!limit.unlimited() && limit.max_units < k) k = limit.max_units;
    engine.inner.memory->copy(src, dst, WorkLimit{k});
    const std::string where = fmt::format("restore call {}, {} of {} elements copied",
                                          d.call_index, k, units_total);
    std::lock_guard<std::mutex> lock(engine.mu);
    ++engine.stats.injections[ix(FaultSite::kRestore)][ix(rule.kind)];
    if (rule.kind == FaultKind::kSticky) {
      engine.poisoned = true;
      throw engine.injected(FailureClass::kStickyDevice, kName,
                            "sticky device error (" + where + ")");
    }
    RCSIM_ASSERT(rule.kind == FaultKind::kPartial, "kind {} at restore",
                 fault_kind_name(rule.kind));
    throw engine.injected(FailureClass::kLaunchFailure, kName, "copy stopped part-way (" + where + ")");
  }
  Impl& engine;
};

FaultyKernelSet::Impl::Impl(KernelSet inner_set, FaultPlan fault_plan, uint64_t fault_seed)
    : inner(inner_set), plan(std::move(fault_plan)), seed(fault_seed),
      registry(std::make_shared<BufferRegistry>()) {}
FaultyKernelSet::Impl::~Impl() = default;

FaultyKernelSet::FaultyKernelSet(KernelSet inner, FaultPlan plan, uint64_t seed)
    : impl_(std::make_unique<Impl>(inner, std::move(plan), seed)) {
  Impl& e = *impl_;
  if (inner.fused) e.fused = std::make_unique<Impl::Fused>(e);
  if (inner.rope_reshape_cache) e.rope_cache = std::make_unique<Impl::RopeCache>(e);
  if (inner.rotary) e.rotary = std::make_unique<Impl::Rotary>(e);
  if (inner.rms_norm) e.norm = std::make_unique<Impl::Norm>(e);
  if (inner.reshape_and_cache) e.cache = std::make_unique<Impl::Cache>(e);
  if (inner.per_token_quant_cache) e.per_token = std::make_unique<Impl::PerToken>(e);
  if (inner.memory) e.memory = std::make_unique<Impl::Memory>(e);
}

FaultyKernelSet::~FaultyKernelSet() = default;

KernelSet FaultyKernelSet::kernels() {
  Impl& e = *impl_;
  KernelSet out;
  out.fused = e.fused.get();
  out.rope_reshape_cache = e.rope_cache.get();
  out.rotary = e.rotary.get();
  out.rms_norm = e.norm.get();
  out.reshape_and_cache = e.cache.get();
  out.per_token_quant_cache = e.per_token.get();
  out.memory = e.memory.get();
  return out;
}

const FaultStats& FaultyKernelSet::stats() const { return impl_->stats; }
const FaultPlan& FaultyKernelSet::plan() const { return impl_->plan; }
uint64_t FaultyKernelSet::seed() const { return impl_->seed; }

void FaultyKernelSet::set_log_sink(std::function<void(std::string_view line)> sink) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->log_sink = std::move(sink);
}

void FaultyKernelSet::set_device_memory_access(DeviceMemoryAccess access) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->device_access = std::move(access);
}

bool FaultyKernelSet::device_poisoned() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->poisoned;
}

}  // namespace rcsim
