// Bit-exact conversions between fp32 and the storage formats rcsim models: bf16, fp16 and the two
// fp8 e4m3 flavours (OCP e4m3fn, max 448; AMD e4m3fnuz, max 240). Shared by the CPU reference and
// the GPU kernels, so the two backends round identically.
//
// Rounding: every float -> narrow conversion is round-to-nearest-even. fp8 encoders saturate
// finite overflow and infinities to +-max (ck_tile's "clip" mode, semantics.md 2.4); NaN maps to
// the format's NaN. Decoders are exact.
#pragma once

#include <cstdint>
#include <cstring>

#include "kernels/common/host_device.h"
#include "kernels/common/shared_math_mutants.h"

namespace rcsim::numeric {

using shared_mutants::active;
using shared_mutants::SharedBug;

RCSIM_HD uint32_t float_bits(float f) {
  uint32_t u;
  memcpy(&u, &f, sizeof u);
  return u;
}
RCSIM_HD float bits_float(uint32_t u) {
  float f;
  memcpy(&f, &u, sizeof f);
  return f;
}

// ---- bf16 ----------------------------------------------------------------------------------
RCSIM_HD uint16_t float_to_bf16_bits(float f) {
  const uint32_t u = float_bits(f);
  if ((u & 0x7FFFFFFFu) > 0x7F800000u) {
    return static_cast<uint16_t>((u >> 16) | 0x0040u);  // quiet NaN, sign and payload top kept
  }
  if (active(SharedBug::kBf16Truncates)) return static_cast<uint16_t>(u >> 16);
  const uint32_t lsb = (u >> 16) & 1u;
  return static_cast<uint16_t>((u + 0x7FFFu + lsb) >> 16);  // RNE; overflow carries into inf
}
RCSIM_HD float bf16_bits_to_float(uint16_t b) {
  if (active(SharedBug::kBf16DecodeDropsLsb)) b = static_cast<uint16_t>(b & 0xFFFEu);
  return bits_float(static_cast<uint32_t>(b) << 16);
}
// Truncation (round toward zero): the upper 16 bits, NaN included (a NaN whose payload lies only in
// the low 16 bits becomes an infinity). Not the spec's rounding: it models AITER's standalone
// rmsnorm built for gfx942 (core/fidelity.h, opus fp32_to_bf16 rm=2 / ck_tile truncate).
RCSIM_HD uint16_t float_to_bf16_bits_truncate(float f) {
  return static_cast<uint16_t>(float_bits(f) >> 16);
}
RCSIM_HD float round_to_bf16(float f) { return bf16_bits_to_float(float_to_bf16_bits(f)); }

// ---- fp16 ----------------------------------------------------------------------------------
RCSIM_HD uint16_t float_to_fp16_bits(float f) {
  const uint32_t u = float_bits(f);
  const uint32_t sign = (u >> 16) & 0x8000u;
  const uint32_t mag = u & 0x7FFFFFFFu;
  if (mag > 0x7F800000u) return static_cast<uint16_t>(sign | 0x7E00u);  // NaN
  if (mag >= 0x477FF000u) return static_cast<uint16_t>(sign | 0x7C00u);  // >= 65520 -> inf
  if (mag < 0x38800000u) {                                                // below 2^-14
    if (mag < 0x33000000u) return static_cast<uint16_t>(sign);           // <= 2^-25 -> 0
    const uint32_t exp = mag >> 23;
    const uint32_t mant = (mag & 0x7FFFFFu) | 0x800000u;
    const uint32_t shift = 126u - exp;  // 14..24: value / 2^-24 = mant >> shift
    uint32_t r = mant >> shift;
    const uint32_t rem = mant & ((1u << shift) - 1u);
    const uint32_t half = 1u << (shift - 1u);
    if (rem > half || (rem == half && (r & 1u))) ++r;
    return static_cast<uint16_t>(sign | r);
  }
  const uint32_t rebased = mag - (112u << 23);
  uint32_t r = rebased >> 13;
  const uint32_t rem = rebased & 0x1FFFu;
  if (active(SharedBug::kFp16Truncates)) return static_cast<uint16_t>(sign | r);
  if (rem > 0x1000u || (rem == 0x1000u && (r & 1u))) ++r;
  return static_cast<uint16_t>(sign | r);
}
RCSIM_HD float fp16_bits_to_float(uint16_t h) {
  if (active(SharedBug::kFp16DecodeDropsLsb)) h = static_cast<uint16_t>(h & 0xFFFEu);
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1Fu;
  const uint32_t mant = h & 0x3FFu;
  if (exp == 0x1Fu) return bits_float(sign | 0x7F800000u | (mant << 13));
  if (exp == 0) {
    // Subnormal: mant * 2^-24, exact in fp32.
    const float mag = static_cast<float>(mant) * 5.9604644775390625e-8f;
    return sign ? -mag : mag;
  }
  return bits_float(sign | ((exp + 112u) << 23) | (mant << 13));
}
RCSIM_HD float round_to_fp16(float f) { return fp16_bits_to_float(float_to_fp16_bits(f)); }

// ---- fp8 e4m3 ------------------------------------------------------------------------------
enum class Fp8Format : uint8_t { kE4M3FN = 0, kE4M3FNUZ = 1 };

RCSIM_HD float fp8_max(Fp8Format fmt) {
  if (active(SharedBug::kFp8MaxOtherFormat)) return fmt == Fp8Format::kE4M3FN ? 240.0f : 448.0f;
  return fmt == Fp8Format::kE4M3FN ? 448.0f : 240.0f;
}
RCSIM_HD int fp8_bias(Fp8Format fmt) {
  if (active(SharedBug::kFp8BiasOtherFormat)) return fmt == Fp8Format::kE4M3FN ? 8 : 7;
  return fmt == Fp8Format::kE4M3FN ? 7 : 8;
}
RCSIM_HD uint8_t fp8_max_code(Fp8Format fmt) {
  const uint8_t code = fmt == Fp8Format::kE4M3FN ? 0x7E : 0x7F;
  return active(SharedBug::kFp8MaxCodeLow) ? static_cast<uint8_t>(code - 1) : code;
}
RCSIM_HD uint8_t fp8_nan_code(Fp8Format fmt, bool negative) {
  if (active(SharedBug::kFp8NanCodeZero)) return 0x00;
  return fmt == Fp8Format::kE4M3FN ? static_cast<uint8_t>(negative ? 0xFF : 0x7F) : 0x80;
}

// RNE with saturation to +-max. e4m3fnuz has no -0: a result of magnitude zero is +0 (0x80 is NaN).
RCSIM_HD uint8_t float_to_fp8_bits(float f, Fp8Format fmt) {
  const uint32_t u = float_bits(f);
  const bool negative = (u >> 31) != 0;
  const uint32_t mag = u & 0x7FFFFFFFu;
  if (mag > 0x7F800000u) return fp8_nan_code(fmt, negative);
  const uint8_t sign = negative ? 0x80 : 0x00;
  const uint8_t max_code = fp8_max_code(fmt);
  const int bias = fp8_bias(fmt);
  const int exp_unbiased = static_cast<int>(mag >> 23) - 127;
  const uint32_t mant = mag & 0x7FFFFFu;
  uint32_t code;
  if (mag >= 0x7F800000u) {
    code = max_code;  // +-inf saturates
  } else if (mag == 0 || exp_unbiased < -30) {
    code = 0;  // zero, fp32 subnormals and anything far below the smallest fp8 subnormal
  } else if (exp_unbiased >= 1 - bias) {
    // Normal in fp8: keep 3 mantissa bits, round on the other 20. A carry bumps the exponent.
    code = (static_cast<uint32_t>(exp_unbiased + bias) << 3) | (mant >> 20);
    const uint32_t rem = mant & 0xFFFFFu;
    const bool round_up = rem > 0x80000u || (rem == 0x80000u && (code & 1u));
    if (round_up && !active(SharedBug::kFp8Truncates)) ++code;
    if (code > max_code) code = max_code;  // saturate (also catches the NaN pattern in fn)
  } else {
    // Subnormal in fp8: value / 2^(1-bias-3) rounded to an integer in [0, 8].
    const uint32_t full = mant | 0x800000u;
    const uint32_t shift = static_cast<uint32_t>(20 + (1 - bias) - exp_unbiased);  // >= 21
    if (shift >= 26) {
      code = 0;  // below half the smallest subnormal
    } else {
      code = full >> shift;
      const uint32_t rem = full & ((1u << shift) - 1u);
      const uint32_t half = 1u << (shift - 1u);
      if (rem > half || (rem == half && (code & 1u))) ++code;  // 8 becomes the min normal
    }
  }
  if (code == 0 && fmt == Fp8Format::kE4M3FNUZ) return 0x00;
  return static_cast<uint8_t>(sign | code);
}

RCSIM_HD float fp8_bits_to_float(uint8_t c, Fp8Format fmt) {
  const bool negative = (c & 0x80u) != 0;
  if (fmt == Fp8Format::kE4M3FNUZ && c == 0x80u) return bits_float(0x7FC00000u);
  if (fmt == Fp8Format::kE4M3FN && (c & 0x7Fu) == 0x7Fu) {
    return bits_float((negative ? 0x80000000u : 0u) | 0x7FC00000u);
  }
  const int bias = active(SharedBug::kFp8DecodeOtherBias) ? 15 - fp8_bias(fmt) : fp8_bias(fmt);
  const uint32_t exp = (c >> 3) & 0xFu;
  const uint32_t mant = c & 0x7u;
  float mag;
  if (exp == 0) {
    // mant * 2^(1 - bias - 3): exact power-of-two scaling.
    mag = static_cast<float>(mant) * bits_float(static_cast<uint32_t>(127 + 1 - bias - 3) << 23);
  } else {
    mag = bits_float((static_cast<uint32_t>(static_cast<int>(exp) - bias + 127) << 23) | (mant << 20));
  }
  return negative ? -mag : mag;
}

}  // namespace rcsim::numeric
