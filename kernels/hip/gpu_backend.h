// The GPU backend: every kernel interface of core/kernel_interfaces.h implemented by the HIP
// kernels of this folder (hipcc for AMD, nvcc for NVIDIA), plus device memory, handed out as a
// KernelSet exactly like rcsim::cpu::CpuBackend. The dispatcher, the fault decorators and the
// property suites run on it unchanged.
//
// Contract (same as the CPU reference, kernels/cpu/kernels.h):
//  * Every argument is validated before a launch (views on this device, shapes, dtypes, head dims,
//    positions and slots in range - the last two read back to the host); violations throw
//    InvalidInput and write nothing.
//  * WorkLimit maps onto the kernels' device-side unit limit: units [0, k) are written completely
//    by the GPU, the rest not at all. max_units = 0 validates, launches nothing and returns N.
//  * Vendor errors become KernelError in gpu_runtime.hip. A sticky error (a real one, or one
//    injected through inject_sticky_error()) poisons the backend: every later call throws
//    KernelError(kStickyDevice), as a real context would, without harming the machine.
//  * Calls are synchronous (the backend synchronises before returning), so host-side checks
//    between calls see the device's results.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "core/kernel_interfaces.h"
#include "core/tensor.h"
#include "kernels/hip/gpu_params.h"
#include "kernels/hip/gpu_runtime.h"

namespace rcsim::gpu {

// Shared by the kernels of one backend: the poisoned (sticky-error) state.
class BackendState {
 public:
  // Throws KernelError(kStickyDevice) naming `kernel` once poisoned.
  void check_usable(std::string_view kernel) const;
  void poison(std::string reason, bool injected);
  bool poisoned() const { return poisoned_; }
  // The thread mapping every kernel launch asks for (gpu_params.h): the tiled one by default;
  // tests force AITER's reference mapping to check that it writes the same bits.
  void set_mapping(KernelMapping m) { mapping_ = m; }
  KernelMapping mapping() const { return mapping_; }
  // Whether the tiled kernels launch programmatically (FusedParams::programmatic_launch says what
  // that is): on by default; tests turn it off to check that both launches write the same bits.
  void set_programmatic_launch(bool on) { programmatic_launch_ = on; }
  bool programmatic_launch() const { return programmatic_launch_; }

 private:
  KernelMapping mapping_ = KernelMapping::kAuto;
  bool programmatic_launch_ = true;
  bool poisoned_ = false;
  bool injected_ = false;
  std::string reason_;
};

// One device allocation, owned; views are tagged DeviceTag::kGpu.
class GpuBuffer final : public DeviceBuffer {
 public:
  GpuBuffer(DType dtype, std::span<const int64_t> shape);
  ~GpuBuffer() override;
  GpuBuffer(const GpuBuffer&) = delete;
  GpuBuffer& operator=(const GpuBuffer&) = delete;
  TensorView view() const override { return view_; }
  int64_t bytes() const { return bytes_; }

 private:
  void* data_ = nullptr;
  int64_t bytes_ = 0;
  TensorView view_;
};

class GpuMemoryBackend final : public MemoryBackend {
 public:
  explicit GpuMemoryBackend(std::shared_ptr<BackendState> state) : state_(std::move(state)) {}
  DeviceTag device() const override { return DeviceTag::kGpu; }
  std::unique_ptr<DeviceBuffer> allocate(DType dtype, std::span<const int64_t> shape) override;
  KernelRun copy(const TensorView& src, const TensorView& dst, WorkLimit limit = {}) override;

 private:
  std::shared_ptr<BackendState> state_;
};

// The launch parameters the fused kernel gets for these arguments under this state (what its
// run() launches, after the same checks, which throw on bad input): for tests that queue launches
// themselves, e.g. back to back in one graph with no host sync between them.
FusedParams fused_params_of(const FusedQkNormRopeCacheArgs& a, const BackendState& state);

class GpuFusedQkNormRopeCache;
class GpuRopeReshapeCache;
class GpuRotaryEmbedding;
class GpuRmsNorm;
class GpuReshapeAndCache;
class GpuPerTokenQuantCache;

class GpuBackend {
 public:
  // Throws KernelError(kUnavailable) when the runtime finds no device.
  GpuBackend();
  ~GpuBackend();
  GpuBackend(const GpuBackend&) = delete;
  GpuBackend& operator=(const GpuBackend&) = delete;

  KernelSet kernels();
  GpuMemoryBackend& memory() { return *memory_; }
  const DeviceInfo& device_info() const { return info_; }
  // Models a sticky device error (e.g. a device-side assert) without raising a real one.
  void inject_sticky_error(std::string reason) { state_->poison(std::move(reason), true); }
  bool poisoned() const { return state_->poisoned(); }
  void set_kernel_mapping(KernelMapping m) { state_->set_mapping(m); }
  void set_programmatic_launch(bool on) { state_->set_programmatic_launch(on); }
  FusedParams fused_params(const FusedQkNormRopeCacheArgs& a) const {
    return fused_params_of(a, *state_);
  }

 private:
  DeviceInfo info_;
  std::shared_ptr<BackendState> state_;
  std::unique_ptr<GpuFusedQkNormRopeCache> fused_;
  std::unique_ptr<GpuRopeReshapeCache> rope_reshape_cache_;
  std::unique_ptr<GpuRotaryEmbedding> rotary_;
  std::unique_ptr<GpuRmsNorm> rms_norm_;
  std::unique_ptr<GpuReshapeAndCache> reshape_and_cache_;
  std::unique_ptr<GpuPerTokenQuantCache> per_token_quant_cache_;
  std::unique_ptr<GpuMemoryBackend> memory_;
};

// Test and tool helpers: whole-tensor host <-> device copies (contiguous views only).
std::unique_ptr<GpuBuffer> upload(const HostTensor& host);
void upload_into(const HostTensor& host, const TensorView& device_view);
HostTensor download(const TensorView& device_view);

}  // namespace rcsim::gpu
