// The CPU backend: one instance of every CPU reference kernel plus host memory, handed out as a
// KernelSet (core/kernel_interfaces.h). The dispatcher, the fault-injecting decorators and the
// simulator run against this backend on machines without a GPU; the GPU backend is checked
// against it. All views it accepts are host views (DeviceTag::kHost).
//
// The kernels themselves are declared in kernels/cpu/kernels.h (include it to call one directly);
// this header only promises the backend's shape, so it stays stable while kernels evolve.
#pragma once

#include <cstdint>
#include <memory>
#include <span>

#include "core/fidelity.h"
#include "core/kernel_interfaces.h"
#include "core/tensor.h"

namespace rcsim::cpu {

class CpuFusedQkNormRopeCache;
class CpuRopeReshapeCache;
class CpuRotaryEmbedding;
class CpuRmsNorm;
class CpuReshapeAndCache;
class CpuPerTokenQuantCache;

// A host buffer owned by the memory backend's caller (through the unique_ptr it returns).
class HostDeviceBuffer final : public DeviceBuffer {
 public:
  HostDeviceBuffer(DType dtype, std::span<const int64_t> shape);
  TensorView view() const override { return tensor_.view(); }
  HostTensor& tensor() { return tensor_; }

 private:
  HostTensor tensor_;
};

// MemoryBackend on host memory. copy() moves elements of src in row-major order (the unit order),
// any strides, and stops after exactly min(limit, N) elements; max_units = 0 validates and
// copies nothing. Shape, dtype or device mismatches throw InvalidInput before any write.
class HostMemoryBackend final : public MemoryBackend {
 public:
  DeviceTag device() const override { return DeviceTag::kHost; }
  std::unique_ptr<DeviceBuffer> allocate(DType dtype, std::span<const int64_t> shape) override;
  KernelRun copy(const TensorView& src, const TensorView& dst, WorkLimit limit = {}) override;
};

class CpuBackend {
 public:
  // `fidelity` selects what the kernels compute (core/fidelity.h): the spec by default, or AITER
  // as shipped for one target and version.
  explicit CpuBackend(Fidelity fidelity = Fidelity::kMath);
  ~CpuBackend();
  CpuBackend(const CpuBackend&) = delete;
  CpuBackend& operator=(const CpuBackend&) = delete;

  // Every pointer is non-null and lives as long as this backend.
  KernelSet kernels();
  HostMemoryBackend& memory() { return *memory_; }
  Fidelity fidelity() const { return fidelity_; }

 private:
  Fidelity fidelity_;
  std::unique_ptr<CpuFusedQkNormRopeCache> fused_;
  std::unique_ptr<CpuRopeReshapeCache> rope_reshape_cache_;
  std::unique_ptr<CpuRotaryEmbedding> rotary_;
  std::unique_ptr<CpuRmsNorm> rms_norm_;
  std::unique_ptr<CpuReshapeAndCache> reshape_and_cache_;
  std::unique_ptr<CpuPerTokenQuantCache> per_token_quant_cache_;
  std::unique_ptr<HostMemoryBackend> memory_;
};

}  // namespace rcsim::cpu
