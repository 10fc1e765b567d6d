// The CPU backend's wiring and its host memory (see cpu_backend.h).
#include "kernels/cpu/cpu_backend.h"

#include <array>
#include <cstring>

#include "core/check.h"
#include "core/limits.h"
#include "kernels/cpu/detail.h"
#include "kernels/cpu/kernels.h"

namespace rcsim::cpu {

namespace {
std::vector<int64_t> shape_vector(std::span<const int64_t> shape) {
  RCSIM_REQUIRE(shape.size() <= static_cast<std::size_t>(limits::kTensorRankMax),
                "rank {} exceeds {}", shape.size(), limits::kTensorRankMax);
  return {shape.begin(), shape.end()};
}
}  // namespace

HostDeviceBuffer::HostDeviceBuffer(DType dtype, std::span<const int64_t> shape)
    : tensor_(dtype, shape_vector(shape)) {}

std::unique_ptr<DeviceBuffer> HostMemoryBackend::allocate(DType dtype,
                                                          std::span<const int64_t> shape) {
  return std::make_unique<HostDeviceBuffer>(dtype, shape);
}

// Units: elements of src in row-major order; after k units, exactly the first k elements of dst
// (in src's row-major index order) have been written.
KernelRun HostMemoryBackend::copy(const TensorView& src, const TensorView& dst, WorkLimit limit) {
  detail::require_work_limit(limit);
  RCSIM_REQUIRE(!src.is_null() && !dst.is_null(), "copy: null view (src {}, dst {})",
                src.describe(), dst.describe());
  RCSIM_REQUIRE(src.device == DeviceTag::kHost && dst.device == DeviceTag::kHost,
                "copy: host views only (src {}, dst {})", src.describe(), dst.describe());
  RCSIM_REQUIRE(src.dtype == dst.dtype && src.rank == dst.rank,
                "copy: dtype/rank mismatch (src {}, dst {})", src.describe(), dst.describe());
  for (int d = 0; d < src.rank; ++d) {
    RCSIM_REQUIRE(src.size(d) == dst.size(d) && src.stride(d) >= 0 && dst.stride(d) >= 0,
                  "copy: shape mismatch (src {}, dst {})", src.describe(), dst.describe());
  }
  const int64_t total = src.numel();
  const int64_t run_units = detail::units_to_run(limit, total);
  const auto elem = static_cast<std::size_t>(dtype_size_bytes(src.dtype));
  std::array<int64_t, limits::kTensorRankMax> idx{};
  for (int64_t i = 0; i < run_units; ++i) {
    int64_t src_off = 0, dst_off = 0;
    for (int d = 0; d < src.rank; ++d) {
      const auto k = static_cast<std::size_t>(d);
      src_off += idx[k] * src.strides[k];
      dst_off += idx[k] * dst.strides[k];
    }
    std::memmove(dst.data() + dst_off * static_cast<int64_t>(elem),
                 src.data() + src_off * static_cast<int64_t>(elem), elem);
    for (int d = src.rank - 1; d >= 0; --d) {
      const auto k = static_cast<std::size_t>(d);
      if (++idx[k] < src.shape[k]) break;
      idx[k] = 0;
    }
  }
  return {total, run_units};
}

CpuBackend::CpuBackend()
    : fused_(std::make_unique<CpuFusedQkNormRopeCache>()),
      rope_reshape_cache_(std::make_unique<CpuRopeReshapeCache>()),
      rotary_(std::make_unique<CpuRotaryEmbedding>()),
      rms_norm_(std::make_unique<CpuRmsNorm>()),
      reshape_and_cache_(std::make_unique<CpuReshapeAndCache>()),
      per_token_quant_cache_(std::make_unique<CpuPerTokenQuantCache>()),
      memory_(std::make_unique<HostMemoryBackend>()) {}

CpuBackend::~CpuBackend() = default;

KernelSet CpuBackend::kernels() {
  KernelSet set;
  set.fused = fused_.get();
  set.rope_reshape_cache = rope_reshape_cache_.get();
  set.rotary = rotary_.get();
  set.rms_norm = rms_norm_.get();
  set.reshape_and_cache = reshape_and_cache_.get();
  set.per_token_quant_cache = per_token_quant_cache_.get();
  set.memory = memory_.get();
  return set;
}

}  // namespace rcsim::cpu
