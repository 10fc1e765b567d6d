// Python tensors as rcsim TensorViews, without copies. NumPy arrays (and anything else that
// exports the buffer protocol) cross by the buffer protocol; PyTorch tensors, CPU or CUDA, by
// DLPack (`__dlpack__`). The view points into the caller's memory; a BorrowedTensor keeps the
// owner alive and releases the DLPack capsule when it goes out of scope, so a view must not
// outlive the BorrowedTensor it came from.
//
// Element types: float16/float32/int64 map to themselves; bfloat16 (PyTorch) to bf16. NumPy has
// no bfloat16 or fp8, so their bits travel as uint16 (or int16) and uint8: a 16-bit integer array
// is read as bf16 and an 8-bit one as the fp8 format the caller names (the kernel's
// kv_cache_dtype); without one an 8-bit tensor is a ValueError. PyTorch float8 tensors arrive as
// uint8 views (rcsim/_tensors.py reinterprets them; DLPack has no float8 codes in older PyTorch).
#pragma once

#include <pybind11/pybind11.h>

#include <optional>
#include <string>

#include "core/dtype.h"
#include "core/tensor.h"

namespace rcsim::python {

struct DLManagedTensorAbi;  // DLPack's DLManagedTensor (tensor_bridge.cc)

class BorrowedTensor {
 public:
  BorrowedTensor() = default;
  ~BorrowedTensor();
  BorrowedTensor(BorrowedTensor&& other) noexcept;
  BorrowedTensor& operator=(BorrowedTensor&& other) noexcept;
  BorrowedTensor(const BorrowedTensor&) = delete;
  BorrowedTensor& operator=(const BorrowedTensor&) = delete;

  const TensorView& view() const { return view_; }
  bool present() const { return !view_.is_null(); }

  // `name` is used in error messages. `fp8` is the format an 8-bit integer tensor holds.
  // `writable`: the kernel writes this tensor, so a read-only buffer is refused.
  static BorrowedTensor borrow(pybind11::handle object, const std::string& name,
                               std::optional<DType> fp8 = std::nullopt, bool writable = false);
  // None -> an absent (null) view.
  static BorrowedTensor borrow_optional(pybind11::handle object, const std::string& name,
                                        std::optional<DType> fp8 = std::nullopt,
                                        bool writable = false);

 private:
  TensorView view_;
  pybind11::object owner_;
  DLManagedTensorAbi* managed_ = nullptr;
};

}  // namespace rcsim::python
