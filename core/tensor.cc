#include "core/tensor.h"

#include <cstring>

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace rcsim {

int64_t TensorView::numel() const {
  int64_t n = 1;
  for (int d = 0; d < rank; ++d) n *= shape[static_cast<std::size_t>(d)];
  return n;
}

bool TensorView::is_contiguous() const {
  int64_t expected = 1;
  for (int d = rank - 1; d >= 0; --d) {
    const auto i = static_cast<std::size_t>(d);
    if (shape[i] != 1 && strides[i] != expected) return false;
    expected *= shape[i];
  }
  return true;
}

int64_t TensorView::element_offset(std::initializer_list<int64_t> index) const {
  RCSIM_ASSERT(static_cast<int>(index.size()) == rank, "index of {} for rank {}", index.size(),
               rank);
  int64_t off = 0;
  std::size_t d = 0;
  for (int64_t i : index) {
    RCSIM_ASSERT(i >= 0 && i < shape[d], "index {} out of [0, {}) in dim {}", i, shape[d], d);
    off += i * strides[d];
    ++d;
  }
  return off;
}

int64_t TensorView::span_bytes() const {
  if (rank == 0) return dtype_size_bytes(dtype);
  int64_t last = 0;
  for (int d = 0; d < rank; ++d) {
    const auto i = static_cast<std::size_t>(d);
    if (shape[i] == 0) return 0;
    last += (shape[i] - 1) * strides[i];
  }
  return (last + 1) * dtype_size_bytes(dtype);
}

std::string TensorView::describe() const {
  if (is_null()) return "null";
  std::vector<int64_t> s(shape.begin(), shape.begin() + rank);
  std::vector<int64_t> st(strides.begin(), strides.begin() + rank);
  return fmt::format("{}{} strides {} +{}", dtype_name(dtype), s, st, offset);
}

bool TensorView::same_shape(std::initializer_list<int64_t> expected) const {
  if (static_cast<int>(expected.size()) != rank) return false;
  std::size_t d = 0;
  for (int64_t e : expected) {
    if (shape[d++] != e) return false;
  }
  return true;
}

TensorView TensorView::contiguous(std::byte* base, DType dtype, std::span<const int64_t> shape,
                                  DeviceTag device) {
  RCSIM_ASSERT(shape.size() <= static_cast<std::size_t>(limits::kTensorRankMax), "rank {}",
               shape.size());
  TensorView v;
  v.base = base;
  v.dtype = dtype;
  v.rank = static_cast<int>(shape.size());
  v.device = device;
  int64_t stride = 1;
  for (int d = v.rank - 1; d >= 0; --d) {
    const auto i = static_cast<std::size_t>(d);
    v.shape[i] = shape[i];
    v.strides[i] = stride;
    stride *= shape[i];
  }
  return v;
}

TensorView TensorView::contiguous(std::byte* base, DType dtype,
                                  std::initializer_list<int64_t> shape, DeviceTag device) {
  return contiguous(base, dtype, std::span<const int64_t>(shape.begin(), shape.size()), device);
}

QkvViews split_qkv(const TensorView& qkv, int64_t num_heads_q, int64_t num_heads_kv,
                   int64_t head_dim) {
  RCSIM_ASSERT(qkv.rank == 2, "qkv must be 2-D, got {}", qkv.describe());
  const int64_t tokens = qkv.size(0);
  const int64_t token_stride = qkv.stride(0);
  auto head_view = [&](int64_t heads, int64_t first_head) {
    TensorView v = qkv;
    v.rank = 3;
    v.shape = {tokens, heads, head_dim, 0, 0, 0};
    v.strides = {token_stride, head_dim, 1, 0, 0, 0};
    v.offset = qkv.offset + first_head * head_dim;
    return v;
  };
  return {head_view(num_heads_q, 0), head_view(num_heads_kv, num_heads_q),
          head_view(num_heads_kv, num_heads_q + num_heads_kv)};
}

HostTensor::HostTensor(DType dtype, std::vector<int64_t> shape)
    : dtype_(dtype), shape_(std::move(shape)) {
  numel_ = 1;
  for (int64_t s : shape_) {
    RCSIM_REQUIRE(s >= 0, "negative dimension {} in tensor shape", s);
    numel_ *= s;
    RCSIM_REQUIRE(numel_ * dtype_size_bytes(dtype_) <= limits::kHostTensorBytesMax,
                  "tensor of {} elements exceeds the host tensor limit", numel_);
  }
  storage_.resize(static_cast<std::size_t>(numel_ * dtype_size_bytes(dtype_)));
}

HostTensor::HostTensor(const HostTensor& other) = default;
HostTensor& HostTensor::operator=(const HostTensor& other) = default;

TensorView HostTensor::view() const {
  return TensorView::contiguous(data(), dtype_, std::span<const int64_t>(shape_));
}

void HostTensor::fill_pattern(uint8_t byte_value) {
  std::memset(storage_.data(), byte_value, storage_.size());
}

bool HostTensor::bytes_equal(const HostTensor& other) const {
  return dtype_ == other.dtype_ && shape_ == other.shape_ && storage_ == other.storage_;
}

void copy_view(const TensorView& src, const TensorView& dst) {
  RCSIM_ASSERT(src.device == DeviceTag::kHost && dst.device == DeviceTag::kHost,
               "copy_view is host-only");
  RCSIM_ASSERT(src.dtype == dst.dtype && src.rank == dst.rank, "copy_view {} -> {}",
               src.describe(), dst.describe());
  for (int d = 0; d < src.rank; ++d) {
    RCSIM_ASSERT(src.size(d) == dst.size(d), "copy_view shape {} -> {}", src.describe(),
                 dst.describe());
  }
  const int64_t elem = dtype_size_bytes(src.dtype);
  const int64_t n = src.numel();
  std::array<int64_t, limits::kTensorRankMax> idx{};
  for (int64_t i = 0; i < n; ++i) {
    int64_t so = 0, doff = 0;
    for (int d = 0; d < src.rank; ++d) {
      const auto k = static_cast<std::size_t>(d);
      so += idx[k] * src.strides[k];
      doff += idx[k] * dst.strides[k];
    }
    std::memcpy(dst.data() + doff * elem, src.data() + so * elem, static_cast<std::size_t>(elem));
    for (int d = src.rank - 1; d >= 0; --d) {
      const auto k = static_cast<std::size_t>(d);
      if (++idx[k] < src.shape[k]) break;
      idx[k] = 0;
    }
  }
}

}  // namespace rcsim
