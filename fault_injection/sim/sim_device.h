// The device the simulator runs on: the fault-free kernels the fault decorators wrap and the
// oracle runs, the memory the engine's caches, inputs, snapshots, backups and restores live in,
// and the way back to host memory for the checkers. The engine touches device memory only
// through this interface: make_cpu_sim_device() (host memory, the CPU reference) and, in a build
// with the GPU backend, make_gpu_sim_device() (device memory, kernels/hip's GpuBackend). The
// checkers read host views, which on a GPU device are mirrors filled by host_view() and on the
// CPU device the memory itself.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string_view>

#include "core/kernel_interfaces.h"
#include "core/tensor.h"
#include "fakes/faults/faulty_kernels.h"

namespace rcsim::sim {

using DeviceTensor = std::unique_ptr<DeviceBuffer>;

class SimDevice {
 public:
  virtual ~SimDevice() = default;

  // The backend's fault-free kernels (memory included); they live as long as this device.
  virtual KernelSet kernels() = 0;
  // A device tensor whose every byte is `fill` (the sentinel untouched memory must keep).
  virtual DeviceTensor allocate(DType dtype, std::span<const int64_t> shape, uint8_t fill) = 0;
  // dst <- src, two device tensors of one dtype and shape (snapshots, backups, restores).
  virtual void copy(const TensorView& src, const TensorView& dst) = 0;
  // dst (device, contiguous) <- src (a contiguous host view), same dtype and element count:
  // step inputs, tables, weights, and the rollback of a GPU cache from the CPU oracle's state.
  virtual void upload(const TensorView& host_src, const TensorView& dst) = 0;
  void upload(const HostTensor& src, const TensorView& dst) { upload(src.view(), dst); }
  // A host-readable view of the elements of a device view, for the checkers and the digest. A
  // device with its own memory copies them into a host mirror that lives until the device's
  // next release_host_views(); the CPU device returns the view itself.
  virtual TensorView host_view(const TensorView& device_view) = 0;
  virtual void release_host_views() = 0;
  // How the fault decorators patch this device's memory from the host (garbage / NaN payloads);
  // empty hooks for host memory.
  virtual DeviceMemoryAccess memory_access() { return {}; }
  // "cpu" or "gpu".
  virtual std::string_view backend_name() const = 0;

  // Convenience: a device copy of a host tensor.
  DeviceTensor upload_new(const HostTensor& src, uint8_t fill = 0);
  // Convenience: host_view of a whole buffer (null buffer: null view).
  TensorView host_view(const DeviceTensor& t) { return t ? host_view(t->view()) : TensorView{}; }
};

std::unique_ptr<SimDevice> make_cpu_sim_device();
// True when this binary was built with the GPU backend (RCSIM_HAVE_GPU_BACKEND).
bool gpu_backend_built();
// The device of a backend name ("cpu" | "gpu"). Throws InvalidInput for an unknown name or for
// "gpu" in a build without the GPU backend; KernelError(kUnavailable) when no GPU is present.
std::unique_ptr<SimDevice> make_sim_device(std::string_view backend);
// GPUs the runtime sees (0 without the GPU backend or without a device), and the one this
// thread's later GPU devices use (gpu::select_device; throws InvalidInput without the backend).
int gpu_device_count();
void select_gpu_device(int device_index);

// Test seam: while one of these lives, make_sim_device("gpu") returns the factory's device and
// gpu_backend_built() is true, so a host-only build can drive the engine's GPU path (CPU oracle,
// cross-backend twin) with a stand-in that mimics one behaviour of a GPU (its NaN bits:
// fault_injection/sim/tests/gpu_nan_stand_in_test.cc). One at a time; not for the CLI.
class ScopedGpuStandIn {
 public:
  using Factory = std::function<std::unique_ptr<SimDevice>()>;
  explicit ScopedGpuStandIn(Factory factory);
  ~ScopedGpuStandIn();
  ScopedGpuStandIn(const ScopedGpuStandIn&) = delete;
  ScopedGpuStandIn& operator=(const ScopedGpuStandIn&) = delete;
};

}  // namespace rcsim::sim
