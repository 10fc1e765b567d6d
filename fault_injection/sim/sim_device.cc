// The CPU implementation of SimDevice: host memory through the CPU backend's memory backend.
#include "fault_injection/sim/sim_device.h"

#include <cstring>

#include "core/check.h"
#include "kernels/cpu/cpu_backend.h"

namespace rcsim::sim {

DeviceTensor SimDevice::upload_new(const HostTensor& src, uint8_t fill) {
  DeviceTensor t = allocate(src.dtype(), src.shape(), fill);
  upload(src, t->view());
  return t;
}

namespace {

class CpuSimDevice final : public SimDevice {
 public:
  KernelSet kernels() override { return backend_.kernels(); }

  DeviceTensor allocate(DType dtype, std::span<const int64_t> shape, uint8_t fill) override {
    DeviceTensor t = backend_.memory().allocate(dtype, shape);
    const TensorView v = t->view();
    std::memset(v.data(), fill, static_cast<std::size_t>(v.span_bytes()));
    return t;
  }

  void copy(const TensorView& src, const TensorView& dst) override {
    // Whole contiguous tensors (every snapshot and backup of the engine) move as one block; the
    // memory backend's strided copy handles the rest.
    if (src.is_contiguous() && dst.is_contiguous() && src.dtype == dst.dtype &&
        src.numel() == dst.numel() && src.rank == dst.rank) {
      std::memcpy(dst.data(), src.data(), static_cast<std::size_t>(src.span_bytes()));
      return;
    }
    backend_.memory().copy(src, dst);
  }

  void upload(const HostTensor& src, const TensorView& dst) override {
    RCSIM_ASSERT(dst.is_contiguous() && dst.numel() == src.numel() && dst.dtype == src.dtype(),
                 "upload: shape or dtype mismatch");
    std::memcpy(dst.data(), src.data(), static_cast<std::size_t>(src.bytes()));
  }

  TensorView host_view(const TensorView& device_view) override { return device_view; }
  void release_host_views() override {}

 private:
  cpu::CpuBackend backend_;
};

}  // namespace

std::unique_ptr<SimDevice> make_cpu_sim_device() { return std::make_unique<CpuSimDevice>(); }

}  // namespace rcsim::sim
