// The GPU implementation of SimDevice (issue 14): the engine's system-under-test caches, inputs,
// backups and restores live in device memory of kernels/hip's GpuBackend, the fault decorators
// wrap its kernels (torn writes are the kernels' own device-side unit limits), and every view a
// checker or the digest reads is downloaded into a host mirror first. Built only when the GPU
// backend is (RCSIM_HAVE_GPU_BACKEND); sim_device.cc's make_sim_device("gpu") reaches it.
#include <cstring>
#include <vector>

#include "core/check.h"
#include "fault_injection/sim/sim_device.h"
#include "kernels/hip/gpu_backend.h"
#include "kernels/hip/gpu_runtime.h"

namespace rcsim::sim {
namespace {

class GpuSimDevice final : public SimDevice {
 public:
  KernelSet kernels() override { return backend_.kernels(); }

  DeviceTensor allocate(DType dtype, std::span<const int64_t> shape, uint8_t fill) override {
    DeviceTensor t = backend_.memory().allocate(dtype, shape);
    const TensorView v = t->view();
    if (v.span_bytes() > 0) gpu::fill_device_bytes(v.data(), fill, v.span_bytes(), nullptr);
    gpu::synchronize();
    return t;
  }

  void copy(const TensorView& src, const TensorView& dst) override {
    backend_.memory().copy(src, dst);
  }

  void upload(const TensorView& src, const TensorView& dst) override {
    RCSIM_ASSERT(src.device == DeviceTag::kHost && dst.device == DeviceTag::kGpu &&
                     src.is_contiguous() && dst.is_contiguous() && dst.numel() == src.numel() &&
                     dst.dtype == src.dtype,
                 "upload: shape, dtype or device mismatch ({} -> {})", src.describe(),
                 dst.describe());
    const int64_t bytes = src.numel() * dtype_size_bytes(src.dtype);
    if (bytes > 0) gpu::copy_to_device(dst.data(), src.data(), bytes);
  }

  // Downloads the bytes the view spans (strided views such as q inside qkv included) and returns
  // the same shape and strides over the host copy.
  TensorView host_view(const TensorView& device_view) override {
    if (device_view.is_null()) return device_view;
    RCSIM_ASSERT(device_view.device == DeviceTag::kGpu, "host_view of a non-GPU view: {}",
                 device_view.describe());
    const int64_t bytes = device_view.span_bytes();
    mirrors_.emplace_back(static_cast<std::size_t>(bytes));
    std::vector<std::byte>& mirror = mirrors_.back();
    if (bytes > 0) gpu::copy_to_host(mirror.data(), device_view.data(), bytes);
    TensorView host = device_view;
    host.base = mirror.data();
    host.offset = 0;
    host.device = DeviceTag::kHost;
    return host;
  }
  void release_host_views() override { mirrors_.clear(); }

  DeviceMemoryAccess memory_access() override {
    return DeviceMemoryAccess{[](const TensorView& v) { return gpu::download(v); },
                              [](const HostTensor& h, const TensorView& v) {
                                gpu::upload_into(h, v);
                              }};
  }
  std::string_view backend_name() const override { return "gpu"; }

 private:
  gpu::GpuBackend backend_;
  // Mirrors stay put while more are added (a vector of vectors: the inner buffers never move).
  std::vector<std::vector<std::byte>> mirrors_;
};

}  // namespace

std::unique_ptr<SimDevice> make_gpu_sim_device() { return std::make_unique<GpuSimDevice>(); }
int gpu_device_count_of_runtime() { return gpu::query_device().device_count; }
void select_gpu_device_of_runtime(int device_index) { gpu::select_device(device_index); }

}  // namespace rcsim::sim
