// n / d and n % d for many n and one d, by a multiply and a shift instead of a division.
//
// Why: GPUs have no integer divider. nvcc turns a 32-bit `n / d` by a run-time d into ~20
// dependent instructions (a float reciprocal, a correction and two fix-up tests), and the tiled
// kernels divide every token's slot by the page size, in every K and V warp, on the launch's one
// dependent chain. The divisor is fixed per launch, so the host prepares it once (Granlund and
// Montgomery, "Division by invariant integers using multiplication", PLDI 1994, section 4):
//   l = ceil(log2 d),   m = floor(2^32 (2^l - d) / d) + 1,   n / d = (umulhi(n, m) + n) >> l.
// m fits in 32 bits because 2^l - d < d; the sum fits because umulhi(n, m) <= n < 2^31.
// Admitted: 1 <= d <= 2^31 and 0 <= n < 2^31 (slots are below 2^28, core/limits.h). The code does
// not rely on the theorem alone: kernels/common/tests/fast_divisor_test.cc compares it with `/`
// on a sample on the CPU, and gpu_backend_test on the device for every slot and page size.
#pragma once

#include <cstdint>

#include "kernels/common/host_device.h"

namespace rcsim {

inline constexpr uint32_t kFastDivisorMax = uint32_t{1} << 31;
inline constexpr uint32_t kFastDividendEnd = uint32_t{1} << 31;  // dividends are below this

struct FastDivisor {
  uint32_t divisor = 1;
  uint32_t magic = 1;
  uint32_t shift = 0;
};

// d must lie in [1, kFastDivisorMax]; callers check (the launchers fall back otherwise).
constexpr FastDivisor make_fast_divisor(uint32_t d) {
  uint32_t l = 0;
  while (l < 31 && (uint64_t{1} << l) < d) ++l;  // bounded: at most 31 steps
  const uint64_t magic = ((uint64_t{1} << 32) * ((uint64_t{1} << l) - d)) / d + 1;
  return {d, static_cast<uint32_t>(magic), l};
}

constexpr bool fast_divisor_admits(int64_t d) { return d >= 1 && d <= int64_t{kFastDivisorMax}; }

struct QuotRem32 {
  uint32_t quot;
  uint32_t rem;
};

// n must lie in [0, kFastDividendEnd).
RCSIM_HD QuotRem32 divide(uint32_t n, const FastDivisor& f) {
  const auto hi = static_cast<uint32_t>((static_cast<uint64_t>(n) * f.magic) >> 32);
  const uint32_t q = (hi + n) >> f.shift;
  return {q, n - q * f.divisor};
}

}  // namespace rcsim
