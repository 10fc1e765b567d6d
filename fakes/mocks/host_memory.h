// A plain host MemoryBackend: real allocations (HostTensor) and an element-by-element copy that
// honours WorkLimit, so a copy stopped after k elements leaves exactly elements [0, k) written.
// The GMock MemoryBackend delegates to it by default; tests use it wherever the dispatcher needs
// working backup/scratch memory without the CPU backend.
#pragma once

#include <cstdint>
#include <memory>
#include <span>

#include "core/kernel_interfaces.h"
#include "core/tensor.h"

namespace rcsim::fakes {

class HostDeviceBuffer final : public DeviceBuffer {
 public:
  HostDeviceBuffer(DType dtype, std::span<const int64_t> shape);
  TensorView view() const override { return tensor_.view(); }
  const HostTensor& tensor() const { return tensor_; }

 private:
  HostTensor tensor_;
};

class HostMemoryBackend final : public MemoryBackend {
 public:
  DeviceTag device() const override { return DeviceTag::kHost; }
  std::unique_ptr<DeviceBuffer> allocate(DType dtype, std::span<const int64_t> shape) override;
  KernelRun copy(const TensorView& src, const TensorView& dst, WorkLimit limit = {}) override;
};

// Copies the first min(limit, numel) elements of src (row-major) into dst. Host views only.
KernelRun copy_elements(const TensorView& src, const TensorView& dst, WorkLimit limit);

}  // namespace rcsim::fakes
