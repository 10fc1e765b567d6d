// Reading and writing NumPy .npy files (format versions 1.0-3.0) for the tensors rcsim exchanges
// with PyTorch/NumPy: `rcsim case` loads its inputs from them and writes every input and output.
//
// .npy cannot name bf16, fp16-as-bits or fp8, so tensors are stored by their bits and the real
// dtype travels beside them (meta.json): bf16/fp16 as `<u2`, fp8 as `|u1`, fp32 as `<f4`, i64 as
// `<i8`. The reader is strict because these files come from outside: magic, version, header
// syntax, the descr (exactly the storage descr of the expected dtype), C order, rank and every
// dimension, the byte count (shape product, checked for overflow, bounded by
// limits::kHostTensorBytesMax), and the data length (neither truncated nor trailing bytes). Every
// rejection is an InvalidInput that names the file and what was wrong.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/dtype.h"
#include "core/tensor.h"

namespace rcsim::io {

// The .npy descr of a dtype's storage ("<u2", "|u1", "<f4", "<i8").
std::string_view npy_descr(DType dtype);

struct NpyHeader {
  std::string descr;
  bool fortran_order = false;
  std::vector<int64_t> shape;
  std::size_t data_offset = 0;  // bytes from the file start to the first element
};

// The header limit: NumPy itself refuses headers beyond 10000 bytes unless told otherwise.
inline constexpr std::size_t kNpyHeaderBytesMax = 65536;

// Parses and validates the header of an .npy image. `name` is used in error messages.
NpyHeader parse_npy_header(std::span<const std::byte> bytes, std::string_view name);

// Decodes an .npy image into a tensor of `dtype` (the descr must be npy_descr(dtype)).
HostTensor decode_npy(std::span<const std::byte> bytes, DType dtype, std::string_view name);
HostTensor read_npy(const std::filesystem::path& path, DType dtype);

// Encodes a host view (any strides; elements in row-major order) as a version 1.0 .npy image.
std::vector<std::byte> encode_npy(const TensorView& view);
void write_npy(const std::filesystem::path& path, const TensorView& view);

}  // namespace rcsim::io
