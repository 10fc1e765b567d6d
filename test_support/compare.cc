// Comparisons that name the first difference (see compare.h).
#include "test_support/compare.h"

#include <algorithm>
#include <cstring>

#include <fmt/format.h>

namespace rcsim::test_support {

int64_t first_byte_difference(const HostTensor& a, const HostTensor& b) {
  const int64_t n = std::min(a.bytes(), b.bytes());
  for (int64_t i = 0; i < n; ++i) {
    if (a.data()[i] != b.data()[i]) return i;
  }
  return a.bytes() == b.bytes() ? -1 : n;
}

std::optional<std::string> first_head_mismatch(const TensorView& a, const TensorView& b) {
  const int64_t tokens = a.size(0), heads = a.size(1), dims = a.size(2);
  for (int64_t t = 0; t < tokens; ++t) {
    for (int64_t h = 0; h < heads; ++h) {
      for (int64_t d = 0; d < dims; ++d) {
        uint16_t x, y;
        std::memcpy(&x, a.data() + a.element_offset({t, h, d}) * 2, 2);
        std::memcpy(&y, b.data() + b.element_offset({t, h, d}) * 2, 2);
        if (x != y) {
          return fmt::format("first mismatch at (token {}, head {}, dim {}): 0x{:04X} vs 0x{:04X}",
                             t, h, d, x, y);
        }
      }
    }
  }
  return std::nullopt;
}

std::string qkv_difference(const HostTensor& expected, const HostTensor& actual,
                           const AttentionConfig& cfg) {
  const int64_t byte = first_byte_difference(expected, actual);
  if (byte < 0) return "identical";
  const int64_t elem = byte / dtype_size_bytes(expected.dtype());
  const int64_t token = elem / cfg.qkv_width();
  const int64_t col = elem % cfg.qkv_width();
  return fmt::format("first difference at token {}, head {}, dim {}", token, col / cfg.head_dim,
                     col % cfg.head_dim);
}

}  // namespace rcsim::test_support
