// The CPU backend's wiring and its host memory (see cpu_backend.h).
#include "kernels/cpu/cpu_backend.h"

#include <algorithm>
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
  kernel_args::require_work_limit(limit);
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
  if (run_units == 0) return {total, 0};
  // Rows of the innermost dimension that are contiguous in both views are copied as one block:
  // the same bytes land as with the element-by-element order, because the blocks do not overlap
  // (checked: overlapping views take the element loop, whose order is the documented one).
  const int last = src.rank - 1;
  const int64_t row_len = src.rank == 0 ? 1 : src.shape[static_cast<std::size_t>(last)];
  const bool rows_contiguous =
      src.rank == 0 || (src.strides[static_cast<std::size_t>(last)] == 1 &&
                        dst.strides[static_cast<std::size_t>(last)] == 1);
  const std::byte* src_lo = src.data();
  const std::byte* dst_lo = dst.data();
  const bool disjoint = src_lo + src.span_bytes() <= dst_lo || dst_lo + dst.span_bytes() <= src_lo;
  std::array<int64_t, limits::kTensorRankMax> idx{};
  auto offsets = [&](int64_t& src_off, int64_t& dst_off) {
    src_off = 0;
    dst_off = 0;
    for (int d = 0; d < src.rank; ++d) {
      const auto k = static_cast<std::size_t>(d);
      src_off += idx[k] * src.strides[k];
      dst_off += idx[k] * dst.strides[k];
    }
  };
  auto advance = [&](int from_dim) {
    for (int d = from_dim; d >= 0; --d) {
      const auto k = static_cast<std::size_t>(d);
      if (++idx[k] < src.shape[k]) break;
      idx[k] = 0;
    }
  };
  if (rows_contiguous && disjoint && row_len > 0) {
    for (int64_t done = 0; done < run_units;) {
      const int64_t count = std::min(row_len, run_units - done);
      int64_t src_off = 0, dst_off = 0;
      offsets(src_off, dst_off);
      std::memcpy(dst.data() + dst_off * static_cast<int64_t>(elem),
                  src.data() + src_off * static_cast<int64_t>(elem),
                  static_cast<std::size_t>(count) * elem);
      done += count;
      advance(last - 1);  // next row (idx[last] stays 0)
    }
    return {total, run_units};
  }
  for (int64_t i = 0; i < run_units; ++i) {
    int64_t src_off = 0, dst_off = 0;
    offsets(src_off, dst_off);
    std::memmove(dst.data() + dst_off * static_cast<int64_t>(elem),
                 src.data() + src_off * static_cast<int64_t>(elem), elem);
    advance(last);
  }
  return {total, run_units};
}

CpuBackend::CpuBackend(Fidelity fidelity)
    : fidelity_(fidelity),
      fused_(std::make_unique<CpuFusedQkNormRopeCache>(fidelity)),
      rope_reshape_cache_(std::make_unique<CpuRopeReshapeCache>()),
      rotary_(std::make_unique<CpuRotaryEmbedding>()),
      rms_norm_(std::make_unique<CpuRmsNorm>(fidelity)),
      reshape_and_cache_(std::make_unique<CpuReshapeAndCache>()),
      per_token_quant_cache_(std::make_unique<CpuPerTokenQuantCache>(fidelity)),
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
