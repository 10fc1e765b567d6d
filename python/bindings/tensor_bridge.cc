// Buffer protocol and DLPack -> TensorView (see tensor_bridge.h).
#include "python/bindings/tensor_bridge.h"

#include <fmt/format.h>

#include <array>
#include <cstdint>
#include <cstring>
#include <utility>

#include "core/limits.h"

namespace py = pybind11;

namespace rcsim::python {

// The DLPack C ABI (dlpack.h, v0.x "dltensor" capsules, which NumPy and PyTorch export by
// default). Field order and sizes are fixed by that ABI.
struct DLDeviceAbi {
  int32_t device_type;  // 1 CPU, 2 CUDA, 3 CUDA host, 10 ROCm, 13 CUDA managed
  int32_t device_id;
};
struct DLDataTypeAbi {
  uint8_t code;  // 0 int, 1 uint, 2 float, 4 bfloat
  uint8_t bits;
  uint16_t lanes;
};
struct DLTensorAbi {
  void* data;
  DLDeviceAbi device;
  int32_t ndim;
  DLDataTypeAbi dtype;
  int64_t* shape;
  int64_t* strides;  // in elements; null = compact row-major
  uint64_t byte_offset;
};
struct DLManagedTensorAbi {
  DLTensorAbi dl_tensor;
  void* manager_ctx;
  void (*deleter)(DLManagedTensorAbi* self);
};

namespace {

constexpr int32_t kDlCpu = 1, kDlCuda = 2, kDlCudaHost = 3, kDlRocm = 10, kDlCudaManaged = 13;
constexpr uint8_t kDlInt = 0, kDlUInt = 1, kDlFloat = 2, kDlBfloat = 4;

// A zero-element tensor may have no data pointer; its view still has to be "present".
std::byte g_empty_tensor_storage[64];

// Maps an element kind and width onto rcsim's dtypes (see the header for the integer rules).
DType map_dtype(bool is_float, bool is_bfloat, bool is_int, int64_t bits, const std::string& name,
                std::optional<DType> fp8, const std::string& type_text) {
  if (is_bfloat && bits == 16) return DType::kBF16;
  if (is_float && bits == 16) return DType::kFP16;
  if (is_float && bits == 32) return DType::kFP32;
  if (is_int && bits == 64) return DType::kI64;
  if (is_int && bits == 16) return DType::kBF16;  // bf16 bits in a NumPy uint16/int16 array
  if (is_int && bits == 8) {
    if (!fp8) {
      throw py::value_error(
          fmt::format("{}: an 8-bit tensor holds fp8 codes, but no fp8 format is known here "
                      "(pass kv_cache_dtype='fp8_e4m3fn' or 'fp8_e4m3fnuz')",
                      name));
    }
    return *fp8;
  }
  throw py::value_error(
      fmt::format("{}: element type {} is not one rcsim stores "
                  "(bf16, fp16, fp32, fp8 as uint8, int64)",
                  name, type_text));
}

void set_shape(TensorView& v, const std::string& name, int64_t ndim, const int64_t* shape,
               const int64_t* strides_elems) {
  if (ndim > limits::kTensorRankMax) {
    throw py::value_error(
        fmt::format("{}: rank {} exceeds rcsim's limit {}", name, ndim, limits::kTensorRankMax));
  }
  v.rank = static_cast<int>(ndim);
  int64_t expected = 1;
  for (int64_t d = ndim - 1; d >= 0; --d) {
    const auto i = static_cast<std::size_t>(d);
    v.shape[i] = shape[d];
    v.strides[i] = strides_elems != nullptr ? strides_elems[d] : expected;
    if (v.strides[i] < 0) {
      throw py::value_error(fmt::format("{}: negative strides are not supported", name));
    }
    expected *= shape[d];
  }
}

// A buffer-protocol object (NumPy array, memoryview) as a host view: its format mapped to a
// dtype, its byte strides to element strides (a stride that is no whole number of elements is
// refused), and a read-only buffer refused when the kernel writes it.
TensorView view_of_buffer(py::handle object, const std::string& name, std::optional<DType> fp8,
                          bool writable) {
  const py::buffer_info info = py::reinterpret_borrow<py::buffer>(object).request();
  const std::string& f = info.format;
  const char code = f.empty() ? '?' : f.back();
  const bool is_float = code == 'e' || code == 'f' || code == 'd';
  const bool is_int = std::strchr("bBhHiIlLqQ", code) != nullptr;
  TensorView v;
  v.dtype = map_dtype(is_float, false, is_int, info.itemsize * 8, name, fp8,
                      fmt::format("buffer format '{}'", f));
  if (info.ndim > limits::kTensorRankMax) {
    throw py::value_error(fmt::format("{}: rank {} exceeds rcsim's limit {}", name, info.ndim,
                                      limits::kTensorRankMax));
  }
  std::array<int64_t, limits::kTensorRankMax> strides{};
  std::array<int64_t, limits::kTensorRankMax> shape{};
  for (py::ssize_t d = 0; d < info.ndim; ++d) {
    const auto i = static_cast<std::size_t>(d);
    if (info.strides[i] % info.itemsize != 0) {
      throw py::value_error(fmt::format("{}: stride not a multiple of the element size", name));
    }
    strides[i] = info.strides[i] / info.itemsize;
    shape[i] = info.shape[i];
  }
  set_shape(v, name, info.ndim, shape.data(), strides.data());
  v.base = static_cast<std::byte*>(info.ptr);
  v.device = DeviceTag::kHost;
  if (writable && info.readonly) {
    throw py::value_error(fmt::format("{} is read-only but the kernel writes it", name));
  }
  return v;
}

// Takes the DLPack capsule of `object` (`__dlpack__()`): renamed "used_dltensor" so nobody else
// frees it, and its managed tensor stored in `managed` (whose owner calls the deleter).
const DLTensorAbi& consume_dlpack_capsule(py::handle object, const std::string& name,
                                          DLManagedTensorAbi*& managed) {
  py::capsule capsule = object.attr("__dlpack__")();
  auto* m = static_cast<DLManagedTensorAbi*>(PyCapsule_GetPointer(capsule.ptr(), "dltensor"));
  if (m == nullptr) {
    PyErr_Clear();
    throw py::value_error(fmt::format("{}: __dlpack__ did not return a 'dltensor' capsule", name));
  }
  PyCapsule_SetName(capsule.ptr(), "used_dltensor");
  managed = m;
  return m->dl_tensor;
}

// Where a DLPack tensor lives: host memory (CPU, CUDA pinned host) or a GPU's.
DeviceTag device_of_dlpack(const DLTensorAbi& t, const std::string& name) {
  switch (t.device.device_type) {
    case kDlCpu:
    case kDlCudaHost:
      return DeviceTag::kHost;
    case kDlCuda:
    case kDlRocm:
    case kDlCudaManaged:
      return DeviceTag::kGpu;
    default:
      throw py::value_error(
          fmt::format("{}: DLPack device type {} is not supported", name, t.device.device_type));
  }
}

// A DLPack tensor as a view: its type code mapped to a dtype (one lane only), shape and element
// strides as given, the data pointer plus byte_offset.
TensorView view_of_dlpack(const DLTensorAbi& t, const std::string& name,
                          std::optional<DType> fp8) {
  const uint8_t c = t.dtype.code;
  if (t.dtype.lanes != 1) throw py::value_error(fmt::format("{}: vector lanes unsupported", name));
  TensorView v;
  v.dtype = map_dtype(c == kDlFloat, c == kDlBfloat, c == kDlInt || c == kDlUInt, t.dtype.bits,
                      name, fp8, fmt::format("DLPack code {} bits {}", c, t.dtype.bits));
  set_shape(v, name, t.ndim, t.shape, t.strides);
  v.base = static_cast<std::byte*>(t.data) + t.byte_offset;
  v.device = device_of_dlpack(t, name);
  return v;
}

}  // namespace

BorrowedTensor::~BorrowedTensor() {
  if (managed_ != nullptr && managed_->deleter != nullptr) managed_->deleter(managed_);
}

BorrowedTensor::BorrowedTensor(BorrowedTensor&& other) noexcept
    : view_(other.view_),
      owner_(std::move(other.owner_)),
      managed_(std::exchange(other.managed_, nullptr)) {}

BorrowedTensor& BorrowedTensor::operator=(BorrowedTensor&& other) noexcept {
  if (this != &other) {
    if (managed_ != nullptr && managed_->deleter != nullptr) managed_->deleter(managed_);
    view_ = other.view_;
    owner_ = std::move(other.owner_);
    managed_ = std::exchange(other.managed_, nullptr);
  }
  return *this;
}

BorrowedTensor BorrowedTensor::borrow_optional(py::handle object, const std::string& name,
                                               std::optional<DType> fp8, bool writable) {
  if (object.is_none()) return {};
  return borrow(object, name, fp8, writable);
}

BorrowedTensor BorrowedTensor::borrow(py::handle object, const std::string& name,
                                      std::optional<DType> fp8, bool writable) {
  if (object.is_none()) throw py::value_error(fmt::format("{} is None", name));
  BorrowedTensor out;
  out.owner_ = py::reinterpret_borrow<py::object>(object);
  if (py::isinstance<py::buffer>(object)) {  // NumPy arrays, memoryviews
    out.view_ = view_of_buffer(object, name, fp8, writable);
  } else if (py::hasattr(object, "__dlpack__")) {  // PyTorch tensors (CPU and CUDA)
    // The capsule's deleter becomes `out`'s before anything can throw, so it runs either way.
    const DLTensorAbi& t = consume_dlpack_capsule(object, name, out.managed_);
    out.view_ = view_of_dlpack(t, name, fp8);
  } else {
    throw py::value_error(
        fmt::format("{}: expected a NumPy array or a PyTorch tensor, got {}", name,
                    py::str(py::type::handle_of(object).attr("__name__")).cast<std::string>()));
  }
  TensorView& v = out.view_;
  if (v.base == nullptr) {
    if (v.numel() != 0) throw py::value_error(fmt::format("{}: null data pointer", name));
    v.base = g_empty_tensor_storage;
  }
  v.offset = 0;
  return out;
}

}  // namespace rcsim::python
