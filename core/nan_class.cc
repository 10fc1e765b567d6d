#include "core/nan_class.h"

#include <cstring>

#include "core/check.h"

namespace rcsim {

bool is_nan_bits(DType dtype, uint64_t bits) {
  switch (dtype) {
    case DType::kBF16: return (bits & 0x7FFFu) > 0x7F80u;
    case DType::kFP16: return (bits & 0x7FFFu) > 0x7C00u;
    case DType::kFP32: return (bits & 0x7FFFFFFFu) > 0x7F800000u;
    case DType::kFP8E4M3FN: return (bits & 0x7Fu) == 0x7Fu;  // S.1111.111, either sign
    case DType::kFP8E4M3FNUZ: return (bits & 0xFFu) == 0x80u;  // the one NaN code
    case DType::kI64: return false;
  }
  return false;
}

uint64_t canonical_nan_bits(DType dtype, uint64_t bits) {
  if (!is_nan_bits(dtype, bits)) return bits;
  switch (dtype) {
    case DType::kBF16: return 0x7FC0u;
    case DType::kFP16: return 0x7E00u;
    case DType::kFP32: return 0x7FC00000u;
    case DType::kFP8E4M3FN: return 0x7Fu;
    case DType::kFP8E4M3FNUZ: return 0x80u;
    case DType::kI64: break;
  }
  return bits;
}

bool element_bits_equal(DType dtype, uint64_t a, uint64_t b, NanRule rule) {
  if (a == b) return true;
  return rule == NanRule::kNanClass && canonical_nan_bits(dtype, a) == canonical_nan_bits(dtype, b);
}

void canonicalise_nans(DType dtype, std::span<std::byte> elements) {
  const auto esize = static_cast<std::size_t>(dtype_size_bytes(dtype));
  RCSIM_ASSERT(esize > 0 && elements.size() % esize == 0,
               "canonicalise_nans: {} bytes is not a whole number of {} elements", elements.size(),
               dtype_name(dtype));
  for (std::size_t i = 0; i < elements.size(); i += esize) {
    uint64_t bits = 0;
    std::memcpy(&bits, elements.data() + i, esize);  // little-endian host
    const uint64_t canonical = canonical_nan_bits(dtype, bits);
    if (canonical != bits) std::memcpy(elements.data() + i, &canonical, esize);
  }
}

}  // namespace rcsim
