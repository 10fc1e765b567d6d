#include "core/rope_table.h"

#include <cmath>
#include <vector>

#include "core/check.h"

namespace rcsim {

HostTensor build_cos_sin_table(int64_t max_position, int64_t rotary_dim, DType act, double theta,
                               RopeTableMath math) {
  RCSIM_REQUIRE(max_position >= 1 && rotary_dim >= 2 && rotary_dim % 2 == 0 && theta > 0.0,
                "cos/sin table: max_position {} rotary_dim {} theta {}", max_position, rotary_dim,
                theta);
  const int64_t half = rotary_dim / 2;
  HostTensor table(act, {max_position, rotary_dim});
  auto out = table.as<uint16_t>();
  std::vector<double> inv_freq(static_cast<std::size_t>(half));
  for (int64_t j = 0; j < half; ++j) {
    const double f =
        1.0 / std::pow(theta, static_cast<double>(2 * j) / static_cast<double>(rotary_dim));
    // The fp32 variants round inv_freq to fp32 before use, as aiter's float32 tensor does.
    inv_freq[static_cast<std::size_t>(j)] =
        math == RopeTableMath::kFp64 ? f : static_cast<double>(static_cast<float>(f));
  }
  for (int64_t p = 0; p < max_position; ++p) {
    const auto row = static_cast<std::size_t>(p * rotary_dim);
    for (int64_t j = 0; j < half; ++j) {
      const double inv = inv_freq[static_cast<std::size_t>(j)];
      float c = 0.0f, s = 0.0f;
      if (math == RopeTableMath::kFp64) {
        const double angle = static_cast<double>(p) * inv;
        c = static_cast<float>(std::cos(angle));
        s = static_cast<float>(std::sin(angle));
      } else {
        const float angle = static_cast<float>(p) * static_cast<float>(inv);
        if (math == RopeTableMath::kFp32) {
          c = std::cos(angle);
          s = std::sin(angle);
        } else {
          c = static_cast<float>(std::cos(static_cast<double>(angle)));
          s = static_cast<float>(std::sin(static_cast<double>(angle)));
        }
      }
      out[row + static_cast<std::size_t>(j)] = float_to_activation(c, act);
      out[row + static_cast<std::size_t>(half + j)] = float_to_activation(s, act);
    }
  }
  return table;
}

}  // namespace rcsim
