// The device the simulator runs on: the fault-free kernels the fault decorators wrap and the
// oracle runs, the memory the engine's caches, inputs, snapshots, backups and restores live in,
// and the way back to host memory for the checkers. The engine touches device memory only
// through this interface, so a GPU backend can implement it (make_cpu_sim_device() is the one
// implementation today): the checkers read host views, which on a GPU device are mirrors filled
// by host_view() and on the CPU device the memory itself.
#pragma once

#include <cstdint>
#include <memory>
#include <span>

#include "core/kernel_interfaces.h"
#include "core/tensor.h"

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
  // dst (device) <- src (host), same dtype and shape: step inputs, tables, weights.
  virtual void upload(const HostTensor& src, const TensorView& dst) = 0;
  // A host-readable view of the elements of a device view, for the checkers and the digest. A
  // device with its own memory copies them into a host mirror that lives until the device's
  // next release_host_views(); the CPU device returns the view itself.
  virtual TensorView host_view(const TensorView& device_view) = 0;
  virtual void release_host_views() = 0;

  // Convenience: a device copy of a host tensor.
  DeviceTensor upload_new(const HostTensor& src, uint8_t fill = 0);
  // Convenience: host_view of a whole buffer (null buffer: null view).
  TensorView host_view(const DeviceTensor& t) { return t ? host_view(t->view()) : TensorView{}; }
};

std::unique_ptr<SimDevice> make_cpu_sim_device();

}  // namespace rcsim::sim
