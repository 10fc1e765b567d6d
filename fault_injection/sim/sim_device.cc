// The CPU implementation of SimDevice: host memory through the CPU backend's memory backend.
#include "fault_injection/sim/sim_device.h"

#include <cstring>

#include <fmt/format.h>

#include "core/check.h"
#include "core/errors.h"
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

  void upload(const TensorView& src, const TensorView& dst) override {
    RCSIM_ASSERT(src.is_contiguous() && dst.is_contiguous() && dst.numel() == src.numel() &&
                     dst.dtype == src.dtype,
                 "upload: shape or dtype mismatch");
    std::memcpy(dst.data(), src.data(),
                static_cast<std::size_t>(src.numel() * dtype_size_bytes(src.dtype)));
  }

  TensorView host_view(const TensorView& device_view) override { return device_view; }
  void release_host_views() override {}
  std::string_view backend_name() const override { return "cpu"; }

 private:
  cpu::CpuBackend backend_;
};

}  // namespace

std::unique_ptr<SimDevice> make_cpu_sim_device() { return std::make_unique<CpuSimDevice>(); }

namespace {
ScopedGpuStandIn::Factory& gpu_stand_in() {
  static ScopedGpuStandIn::Factory factory;
  return factory;
}
}  // namespace

ScopedGpuStandIn::ScopedGpuStandIn(Factory factory) {
  RCSIM_ASSERT(!gpu_stand_in() && factory, "one GPU stand-in at a time, and a real one");
  gpu_stand_in() = std::move(factory);
}
ScopedGpuStandIn::~ScopedGpuStandIn() { gpu_stand_in() = nullptr; }

#ifdef RCSIM_HAVE_GPU_BACKEND
std::unique_ptr<SimDevice> make_gpu_sim_device();  // gpu_sim_device.cc
int gpu_device_count_of_runtime();                  // gpu_sim_device.cc
void select_gpu_device_of_runtime(int device_index);
bool gpu_backend_built() { return true; }
int gpu_device_count() { return gpu_device_count_of_runtime(); }
void select_gpu_device(int device_index) { select_gpu_device_of_runtime(device_index); }
#else
bool gpu_backend_built() { return static_cast<bool>(gpu_stand_in()); }
int gpu_device_count() { return 0; }
void select_gpu_device(int device_index) {
  throw InvalidInput(fmt::format("GPU {}: this binary was built without the GPU backend",
                                 device_index));
}
#endif

std::unique_ptr<SimDevice> make_sim_device(std::string_view backend) {
  if (backend == "cpu") return make_cpu_sim_device();
  RCSIM_REQUIRE(backend == "gpu", "backend '{}' is unknown (expected cpu | gpu)", backend);
  if (gpu_stand_in()) return gpu_stand_in()();
#ifdef RCSIM_HAVE_GPU_BACKEND
  return make_gpu_sim_device();
#else
  throw InvalidInput(
      "backend 'gpu': this binary was built without the GPU backend (configure with "
      "-DRCSIM_HOST_ONLY=OFF, e.g. the cuda or hip-amd preset)");
#endif
}

}  // namespace rcsim::sim
