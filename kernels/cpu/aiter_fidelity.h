// The arithmetic of the aiter-* fidelity modes (core/fidelity.h) that differs from the spec: CPU
// only, never used by the GPU kernels (which always compute the math). Each function names the
// switch it implements; core/fidelity.h names the AITER source each one was read from.
#pragma once

#include <cmath>
#include <cstdint>

#include "core/dtype.h"
#include "kernels/common/numeric.h"

namespace rcsim::cpu::aiter {

// Item 1 (neox_partner_by_xor_lane): the value element d (< rotary_dim) of a NeoX head receives
// as its rotation partner in AITER@HEAD's fused kernel. Lane l = d / n owns n = head_dim/32
// elements; it reads element i = d % n of lane l ^ delta, delta = (rotary_dim/2)/n, through a
// shuffle executed only by lanes whose dims are < rotary_dim: a source lane outside that range is
// inactive and the shuffle returns 0 (ds_bpermute). Unsigned: the caller negates for d < rot/2.
inline float neox_xor_partner(const float* x, int d, int rotary_dim, int head_dim) {
  const int n = head_dim / 32;
  const int delta = (rotary_dim / 2) / n;
  const int source_dim = ((d / n) ^ delta) * n + d % n;
  return source_dim < rotary_dim ? x[source_dim] : 0.0f;
}

// Item 4c (device_default_nan_positive): `result` of an operation on `a` and `b` as the device
// produces it: a NaN created from non-NaN operands is the positive quiet NaN 0x7FC00000 (x86
// creates 0xFFC00000). NaN operands propagate as on the host.
inline float device_result(float result, float a, float b) {
  if (std::isnan(result) && !std::isnan(a) && !std::isnan(b)) {
    return numeric::bits_float(0x7FC00000u);
  }
  return result;
}

// Item 2 (rmsnorm_bf16_truncates): the standalone rmsnorm's store of one output element.
inline uint16_t rmsnorm_store(float v, DType act_dtype, bool bf16_truncates) {
  if (bf16_truncates && act_dtype == DType::kBF16) return numeric::float_to_bf16_bits_truncate(v);
  return float_to_activation(v, act_dtype);
}

}  // namespace rcsim::cpu::aiter
