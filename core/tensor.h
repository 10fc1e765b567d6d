// Tensor views and host-owned tensors.
//
// A TensorView is a non-owning description of memory: dtype, shape, strides (in elements), an
// element offset from the allocation's base and a device tag. q, k and v are aliasing views into
// the packed qkv buffer (token stride (Hq + 2*Hkv) * D), exactly as torch.split gives them in ATOM.
// HostTensor owns host memory; the GPU backend has its own owning type and hands out views tagged
// kGpu. Views never outlive what they point into: the owner is always the caller's.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <span>
#include <string>
#include <vector>

#include "core/check.h"
#include "core/dtype.h"
#include "core/limits.h"

namespace rcsim {

enum class DeviceTag : uint8_t { kHost, kGpu };

struct TensorView {
  std::byte* base = nullptr;
  DType dtype = DType::kBF16;
  int rank = 0;
  std::array<int64_t, limits::kTensorRankMax> shape{};
  std::array<int64_t, limits::kTensorRankMax> strides{};  // in elements
  int64_t offset = 0;                                       // in elements, from base
  DeviceTag device = DeviceTag::kHost;

  bool is_null() const { return base == nullptr; }
  int64_t size(int dim) const {
    RCSIM_ASSERT(dim >= 0 && dim < rank, "dim {} of rank {}", dim, rank);
    return shape[static_cast<std::size_t>(dim)];
  }
  int64_t stride(int dim) const {
    RCSIM_ASSERT(dim >= 0 && dim < rank, "dim {} of rank {}", dim, rank);
    return strides[static_cast<std::size_t>(dim)];
  }
  int64_t numel() const;
  bool is_contiguous() const;
  std::byte* data() const { return base + offset * dtype_size_bytes(dtype); }
  template <typename T>
  T* data_as() const {
    return reinterpret_cast<T*>(data());
  }
  // Element offset (relative to data()) of a multi-index; the index count must equal rank.
  int64_t element_offset(std::initializer_list<int64_t> index) const;
  // Bytes between the first and one past the last element this view can touch.
  int64_t span_bytes() const;
  std::string describe() const;  // "bf16[4, 16, 128] strides [...] +off"
  bool same_shape(std::initializer_list<int64_t> expected) const;

  static TensorView contiguous(std::byte* base, DType dtype, std::initializer_list<int64_t> shape,
                               DeviceTag device = DeviceTag::kHost);
  static TensorView contiguous(std::byte* base, DType dtype, std::span<const int64_t> shape,
                               DeviceTag device = DeviceTag::kHost);
};

// The three aliasing views ATOM takes of qkv [T, (Hq+2Hkv)*D].
struct QkvViews {
  TensorView q;  // [T, Hq, D]
  TensorView k;  // [T, Hkv, D]
  TensorView v;  // [T, Hkv, D]
};
QkvViews split_qkv(const TensorView& qkv, int64_t num_heads_q, int64_t num_heads_kv,
                   int64_t head_dim);

// Host-owned, 64-byte aligned, contiguous tensor.
class HostTensor {
 public:
  HostTensor() = default;
  HostTensor(DType dtype, std::vector<int64_t> shape);
  HostTensor(const HostTensor& other);
  HostTensor& operator=(const HostTensor& other);
  HostTensor(HostTensor&&) noexcept = default;
  HostTensor& operator=(HostTensor&&) noexcept = default;

  TensorView view() const;
  DType dtype() const { return dtype_; }
  const std::vector<int64_t>& shape() const { return shape_; }
  int64_t numel() const { return numel_; }
  int64_t bytes() const { return numel_ * dtype_size_bytes(dtype_); }
  std::byte* data() const { return const_cast<std::byte*>(storage_.data()); }
  bool empty() const { return numel_ == 0; }
  template <typename T>
  std::span<T> as() const {
    RCSIM_ASSERT(sizeof(T) == static_cast<std::size_t>(dtype_size_bytes(dtype_)),
                 "element size mismatch");
    return {reinterpret_cast<T*>(data()), static_cast<std::size_t>(numel_)};
  }
  // Fills every byte with a repeating pattern (sentinel for "must stay untouched").
  void fill_pattern(uint8_t byte_value);
  bool bytes_equal(const HostTensor& other) const;

 private:
  DType dtype_ = DType::kBF16;
  std::vector<int64_t> shape_;
  int64_t numel_ = 0;
  std::vector<std::byte> storage_;
};

// Copies src into dst element by element (any strides, same dtype and shape). Host views only.
void copy_view(const TensorView& src, const TensorView& dst);

}  // namespace rcsim
