#include "fakes/mocks/host_memory.h"

#include <cstring>
#include <vector>

#include "core/check.h"

namespace rcsim::fakes {

HostDeviceBuffer::HostDeviceBuffer(DType dtype, std::span<const int64_t> shape)
    : tensor_(dtype, std::vector<int64_t>(shape.begin(), shape.end())) {}

std::unique_ptr<DeviceBuffer> HostMemoryBackend::allocate(DType dtype,
                                                          std::span<const int64_t> shape) {
  RCSIM_REQUIRE(shape.size() <= static_cast<std::size_t>(limits::kTensorRankMax),
                "allocation of rank {}", shape.size());
  return std::make_unique<HostDeviceBuffer>(dtype, shape);
}

KernelRun HostMemoryBackend::copy(const TensorView& src, const TensorView& dst, WorkLimit limit) {
  return copy_elements(src, dst, limit);
}

KernelRun copy_elements(const TensorView& src, const TensorView& dst, WorkLimit limit) {
  RCSIM_REQUIRE(src.device == DeviceTag::kHost && dst.device == DeviceTag::kHost,
                "host copy of a device view");
  RCSIM_REQUIRE(src.dtype == dst.dtype && src.rank == dst.rank, "copy {} -> {}", src.describe(),
                dst.describe());
  for (int d = 0; d < src.rank; ++d) {
    RCSIM_REQUIRE(src.size(d) == dst.size(d), "copy shape {} -> {}", src.describe(),
                  dst.describe());
  }
  const int64_t total = src.numel();
  const int64_t count = limit.unlimited() ? total : std::min(limit.max_units, total);
  const auto elem = static_cast<std::size_t>(dtype_size_bytes(src.dtype));
  std::array<int64_t, limits::kTensorRankMax> idx{};
  for (int64_t i = 0; i < count; ++i) {
    int64_t src_off = 0;
    int64_t dst_off = 0;
    for (int d = 0; d < src.rank; ++d) {
      const auto k = static_cast<std::size_t>(d);
      src_off += idx[k] * src.strides[k];
      dst_off += idx[k] * dst.strides[k];
    }
    std::memcpy(dst.data() + dst_off * static_cast<int64_t>(elem),
                src.data() + src_off * static_cast<int64_t>(elem), elem);
    for (int d = src.rank - 1; d >= 0; --d) {
      const auto k = static_cast<std::size_t>(d);
      if (++idx[k] < src.shape[k]) break;
      idx[k] = 0;
    }
  }
  return {total, count};
}

}  // namespace rcsim::fakes
