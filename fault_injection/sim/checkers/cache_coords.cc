#include "fault_injection/sim/checkers/cache_coords.h"

#include <cstring>

namespace rcsim::sim {

std::string_view part_name(CachePart p) {
  switch (p) {
    case CachePart::kK: return "k_cache";
    case CachePart::kV: return "v_cache";
    case CachePart::kKScale: return "k_scale";
    case CachePart::kVScale: return "v_scale";
  }
  return "?";
}

CacheCoord unravel(const AttentionConfig& a, CachePart part, VCacheLayout v_layout, int64_t e) {
  const int64_t h = a.num_heads_kv, d = a.head_dim, bs = a.block_size, x = a.x();
  CacheCoord c{};
  switch (part) {
    case CachePart::kK: {  // [NB, H, D/x, BS, x]
      const int64_t xi = e % x;
      e /= x;
      c.token = e % bs;
      e /= bs;
      const int64_t dx = e % (d / x);
      e /= d / x;
      c.head = e % h;
      c.block = e / h;
      c.dim = dx * x + xi;
      break;
    }
    case CachePart::kV:
      if (v_layout == VCacheLayout::kShuffle) {  // [NB, H, BS/x, D, x]
        const int64_t xi = e % x;
        e /= x;
        c.dim = e % d;
        e /= d;
        const int64_t tx = e % (bs / x);
        e /= bs / x;
        c.head = e % h;
        c.block = e / h;
        c.token = tx * x + xi;
      } else {  // [NB, H, D, BS]
        c.token = e % bs;
        e /= bs;
        c.dim = e % d;
        e /= d;
        c.head = e % h;
        c.block = e / h;
      }
      break;
    case CachePart::kKScale:
    case CachePart::kVScale:  // [NB, H, BS]
      c.token = e % bs;
      e /= bs;
      c.head = e % h;
      c.block = e / h;
      c.dim = -1;
      break;
  }
  return c;
}

NanRule cache_part_nan_rule(CachePart part, KvCacheDtype cache_dtype) {
  if (part == CachePart::kV && !is_fp8(cache_dtype)) return NanRule::kBitExact;
  return NanRule::kNanClass;
}

int64_t first_difference(const TensorView& a, const TensorView& b, int64_t from, NanRule rule) {
  const int64_t esize = dtype_size_bytes(a.dtype);
  const auto* pa = reinterpret_cast<const unsigned char*>(a.data());
  const auto* pb = reinterpret_cast<const unsigned char*>(b.data());
  const int64_t n = a.numel();
  // Fast path: memcmp of the remaining bytes, then locate.
  if (std::memcmp(pa + from * esize, pb + from * esize,
                  static_cast<std::size_t>((n - from) * esize)) == 0) {
    return -1;
  }
  for (int64_t i = from; i < n; ++i) {
    if (std::memcmp(pa + i * esize, pb + i * esize, static_cast<std::size_t>(esize)) == 0) continue;
    if (!element_bits_equal(a.dtype, element_bits(a, i), element_bits(b, i), rule)) return i;
  }
  return -1;
}

uint64_t element_bits(const TensorView& t, int64_t i) {
  uint64_t bits = 0;
  const int64_t esize = dtype_size_bytes(t.dtype);
  std::memcpy(&bits, t.data() + i * esize, static_cast<std::size_t>(esize));
  return bits;
}

}  // namespace rcsim::sim
