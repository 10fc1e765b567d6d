// Every bound in rcsim, in one place. Loops are bounded by these; reaching one is an assertion,
// not a hang. Generators draw from the same numbers, so 0, 1, max-1 and max are reachable.
#pragma once

#include <array>
#include <cstdint>

namespace rcsim::limits {

inline constexpr int64_t kTokensPerBatchMax = 32768;
inline constexpr int64_t kHeadsQMax = 128;
inline constexpr int64_t kHeadsKvMax = 32;  // the fused kernel's compile-time ceiling
inline constexpr std::array<int64_t, 6> kHeadsKvSupported = {1, 2, 4, 8, 16, 32};
inline constexpr std::array<int64_t, 3> kHeadDimsSupported = {64, 128, 256};
inline constexpr int64_t kHeadDimMax = 256;
inline constexpr std::array<int64_t, 3> kBlockSizesSupported = {16, 32, 64};
inline constexpr int64_t kBlocksMax = int64_t{1} << 22;
inline constexpr int64_t kMaxPositionMax = int64_t{1} << 20;
inline constexpr int64_t kLayersMax = 128;
inline constexpr int64_t kSimStepsMax = 1'000'000;
inline constexpr int64_t kSimRequestsMax = 4096;
inline constexpr int64_t kFaultRulesMax = 64;
inline constexpr int64_t kRetriesMax = 8;
inline constexpr int64_t kThreadsMax = 64;
inline constexpr int64_t kFaultSpecCharsMax = 4096;
inline constexpr int64_t kTensorRankMax = 6;
// Host-side tensors above this many bytes are refused (a malformed case file must not OOM us).
inline constexpr int64_t kHostTensorBytesMax = int64_t{8} << 30;

template <typename T, std::size_t N>
constexpr bool contains(const std::array<T, N>& values, T v) {
  for (const T& x : values) {
    if (x == v) return true;
  }
  return false;
}

}  // namespace rcsim::limits
