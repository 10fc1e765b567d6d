// Shared comparisons (see compare.h).
#include "property_tests/support/compare.h"

#include <cmath>
#include <cstring>

#include <fmt/format.h>

#include "kernels/common/cache_layout.h"
#include "kernels/common/numeric.h"

namespace rcsim::props {

Tolerance tolerance_for(DType act) {
  return act == DType::kBF16 ? Tolerance{1e-2, 1.6e-2} : Tolerance{2e-3, 2e-3};
}

Tolerance order_tolerance_for(DType act) {
  Tolerance t = tolerance_for(act);
  // Each order rounds the normalised or rotated values once more than the other touches them:
  // 2 roundings of terms up to M on each side, 4 in all.
  t.head_max_roundoffs = 4.0;
  t.unit_roundoff = act == DType::kBF16 ? 1.0 / 256.0 : 1.0 / 2048.0;
  return t;
}

std::string bits_hex(uint32_t bits, int width_hex_digits) {
  return fmt::format("0x{:0{}x}", bits, width_hex_digits);
}

namespace {

uint16_t qkv_bits(const AttentionConfig& cfg, const HostTensor& qkv, int64_t token, int64_t head,
                  int64_t dim) {
  const int64_t width = cfg.qkv_width();
  return qkv.as<uint16_t>()[static_cast<std::size_t>(token * width + head * cfg.head_dim + dim)];
}

std::string head_name(const AttentionConfig& cfg, int64_t head) {
  if (head < cfg.num_heads_q) return fmt::format("q{}", head);
  if (head < cfg.num_heads_q + cfg.num_heads_kv) return fmt::format("k{}", head - cfg.num_heads_q);
  return fmt::format("v{}", head - cfg.num_heads_q - cfg.num_heads_kv);
}

}  // namespace

float qkv_value(const AttentionConfig& cfg, const HostTensor& qkv, int64_t token, int64_t head,
                int64_t dim) {
  return activation_to_float(qkv_bits(cfg, qkv, token, head, dim), cfg.act_dtype);
}

NumericStats compare_qk_numeric(const AttentionConfig& cfg, const HostTensor& actual,
                                const HostTensor& expected, Tolerance tol) {
  NumericStats s;
  const int64_t tokens = actual.shape()[0];
  double dot = 0.0, norm_a = 0.0, norm_b = 0.0;
  for (int64_t t = 0; t < tokens; ++t) {
    for (int64_t h = 0; h < cfg.num_heads_q + cfg.num_heads_kv; ++h) {
      double head_max = 0.0;
      for (int64_t d = 0; d < cfg.head_dim; ++d) {
        const double b = std::fabs(qkv_value(cfg, expected, t, h, d));
        if (std::isfinite(b) && b > head_max) head_max = b;
      }
      const double atol = tol.atol + tol.head_max_roundoffs * tol.unit_roundoff * head_max;
      for (int64_t d = 0; d < cfg.head_dim; ++d) {
        const double a = qkv_value(cfg, actual, t, h, d);
        const double b = qkv_value(cfg, expected, t, h, d);
        ++s.compared;
        bool bad;
        if (std::isnan(a) || std::isnan(b)) {
          bad = std::isnan(a) != std::isnan(b);
        } else if (std::isinf(a) || std::isinf(b)) {
          bad = a != b;
        } else {
          const double err = std::fabs(a - b);
          if (err > s.max_abs_error) s.max_abs_error = err;
          bad = err > atol + tol.rtol * std::fabs(b);
          dot += a * b;
          norm_a += a * a;
          norm_b += b * b;
        }
        if (bad) {
          if (s.mismatches == 0) {
            s.first_bad = fmt::format("(token {}, head {}, dim {}): {} vs expected {}", t,
                                      head_name(cfg, h), d, a, b);
          }
          ++s.mismatches;
        }
      }
    }
  }
  if (norm_a > 0.0 && norm_b > 0.0) s.cosine_similarity = dot / std::sqrt(norm_a * norm_b);
  return s;
}

std::optional<std::string> first_qkv_bit_difference(const AttentionConfig& cfg,
                                                    const HostTensor& actual,
                                                    const HostTensor& expected,
                                                    NanRule qk_rule) {
  const int64_t tokens = actual.shape()[0];
  const int64_t heads = cfg.num_heads_q + 2 * cfg.num_heads_kv;
  const int64_t qk_heads = cfg.num_heads_q + cfg.num_heads_kv;  // heads [qk_heads, heads) are V
  for (int64_t t = 0; t < tokens; ++t) {
    for (int64_t h = 0; h < heads; ++h) {
      const NanRule rule = h < qk_heads ? qk_rule : NanRule::kBitExact;
      for (int64_t d = 0; d < cfg.head_dim; ++d) {
        const uint16_t a = qkv_bits(cfg, actual, t, h, d);
        const uint16_t b = qkv_bits(cfg, expected, t, h, d);
        if (!element_bits_equal(cfg.act_dtype, a, b, rule)) {
          return fmt::format("qkv differs at (token {}, head {}, dim {}): {} ({}) vs expected {} ({})",
                             t, head_name(cfg, h), d,
                             activation_to_float(a, cfg.act_dtype), bits_hex(a, 4),
                             activation_to_float(b, cfg.act_dtype), bits_hex(b, 4));
        }
      }
    }
  }
  return std::nullopt;
}

std::optional<std::string> first_byte_difference(const HostTensor& actual,
                                                  const HostTensor& expected,
                                                  std::string_view what, NanRule rule) {
  if (actual.bytes() != expected.bytes() || actual.dtype() != expected.dtype()) {
    return fmt::format("{}: sizes or dtypes differ ({} bytes of {} vs {} bytes of {})", what,
                       actual.bytes(), dtype_name(actual.dtype()), expected.bytes(),
                       dtype_name(expected.dtype()));
  }
  const int64_t elem = dtype_size_bytes(actual.dtype());
  const int64_t n = actual.bytes();
  if (n == 0) return std::nullopt;  // empty tensors (no scales for "auto"): data() may be null
  if (std::memcmp(actual.data(), expected.data(), static_cast<std::size_t>(n)) == 0) {
    return std::nullopt;
  }
  for (int64_t first = 0; first < n; first += elem) {
    uint64_t a = 0, b = 0;
    std::memcpy(&a, actual.data() + first, static_cast<std::size_t>(elem));
    std::memcpy(&b, expected.data() + first, static_cast<std::size_t>(elem));
    if (!element_bits_equal(actual.dtype(), a, b, rule)) {
      return fmt::format("{} differs at element {} of {}: 0x{:0{}x} vs expected 0x{:0{}x}", what,
                         first / elem, n / elem, a, 2 * elem, b, 2 * elem);
    }
  }
  return std::nullopt;
}

std::optional<std::string> first_fp8_code_difference_beyond_one_step(const HostTensor& actual,
                                                                     const HostTensor& expected,
                                                                     std::string_view what) {
  if (actual.bytes() != expected.bytes()) return fmt::format("{}: sizes differ", what);
  const auto* a = reinterpret_cast<const uint8_t*>(actual.data());
  const auto* b = reinterpret_cast<const uint8_t*>(expected.data());
  for (int64_t i = 0; i < actual.bytes(); ++i) {
    if (a[i] == b[i]) continue;
    // Sign-magnitude codes are monotonic in the magnitude: one step = magnitude codes 1 apart.
    const bool same_sign = (a[i] & 0x80) == (b[i] & 0x80);
    const int diff = std::abs(static_cast<int>(a[i] & 0x7F) - static_cast<int>(b[i] & 0x7F));
    if (!same_sign || diff > 1) {
      return fmt::format("{} differs by more than one fp8 step at element {}: {} vs expected {}",
                         what, i, bits_hex(a[i], 2), bits_hex(b[i], 2));
    }
  }
  return std::nullopt;
}

namespace {
float cache_value(const AttentionConfig& cfg, const HostTensor& cache, const HostTensor& scale,
                  int64_t offset, int64_t scale_offset) {
  if (!is_fp8(cfg.kv_cache_dtype)) {
    return activation_to_float(cache.as<uint16_t>()[static_cast<std::size_t>(offset)],
                               cfg.act_dtype);
  }
  const uint8_t code = reinterpret_cast<const uint8_t*>(cache.data())[offset];
  const float s = scale.as<float>()[static_cast<std::size_t>(scale_offset)];
  return numeric::fp8_bits_to_float(code, fp8_format(cfg.kv_cache_dtype)) * s;
}
}  // namespace

float cache_k_value(const AttentionConfig& cfg, const HostTensor& k_cache, const HostTensor& k_scale,
                    int64_t block, int64_t head, int64_t tok, int64_t dim) {
  const auto shape = cfg.cache_shape();
  return cache_value(cfg, k_cache, k_scale, layout::k_xpacked_offset(shape, block, head, tok, dim),
                     layout::scale_offset(shape, block, head, tok));
}

float cache_v_value(const AttentionConfig& cfg, const HostTensor& v_cache, const HostTensor& v_scale,
                    int64_t block, int64_t head, int64_t tok, int64_t dim) {
  const auto shape = cfg.cache_shape();
  return cache_value(cfg, v_cache, v_scale, layout::v_shuffle_offset(shape, block, head, tok, dim),
                     layout::scale_offset(shape, block, head, tok));
}

}  // namespace rcsim::props
