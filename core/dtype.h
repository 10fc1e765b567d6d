// Element types rcsim stores and the few facts about each that the rest of the code needs.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "kernels/common/numeric.h"

namespace rcsim {

enum class DType : uint8_t { kBF16, kFP16, kFP32, kFP8E4M3FN, kFP8E4M3FNUZ, kI64 };

constexpr int64_t dtype_size_bytes(DType t) {
  switch (t) {
    case DType::kBF16:
    case DType::kFP16: return 2;
    case DType::kFP32: return 4;
    case DType::kFP8E4M3FN:
    case DType::kFP8E4M3FNUZ: return 1;
    case DType::kI64: return 8;
  }
  return 0;
}
constexpr std::string_view dtype_name(DType t) {
  switch (t) {
    case DType::kBF16: return "bf16";
    case DType::kFP16: return "fp16";
    case DType::kFP32: return "fp32";
    case DType::kFP8E4M3FN: return "fp8_e4m3fn";
    case DType::kFP8E4M3FNUZ: return "fp8_e4m3fnuz";
    case DType::kI64: return "i64";
  }
  return "?";
}
std::optional<DType> dtype_from_name(std::string_view name);

constexpr bool is_activation_dtype(DType t) { return t == DType::kBF16 || t == DType::kFP16; }
constexpr bool is_fp8(DType t) { return t == DType::kFP8E4M3FN || t == DType::kFP8E4M3FNUZ; }
constexpr numeric::Fp8Format fp8_format(DType t) {
  return t == DType::kFP8E4M3FN ? numeric::Fp8Format::kE4M3FN : numeric::Fp8Format::kE4M3FNUZ;
}

// Activation (bf16/fp16) storage <-> fp32, the two conversions every kernel uses.
inline float activation_to_float(uint16_t bits, DType t) {
  return t == DType::kBF16 ? numeric::bf16_bits_to_float(bits) : numeric::fp16_bits_to_float(bits);
}
inline uint16_t float_to_activation(float v, DType t) {
  return t == DType::kBF16 ? numeric::float_to_bf16_bits(v) : numeric::float_to_fp16_bits(v);
}

// The KV cache element type as ATOM/AITER name it: "auto" stores the activation dtype unchanged.
enum class KvCacheDtype : uint8_t { kAuto, kFp8E4M3FN, kFp8E4M3FNUZ };
constexpr std::string_view kv_cache_dtype_name(KvCacheDtype k) {
  switch (k) {
    case KvCacheDtype::kAuto: return "auto";
    case KvCacheDtype::kFp8E4M3FN: return "fp8_e4m3fn";
    case KvCacheDtype::kFp8E4M3FNUZ: return "fp8_e4m3fnuz";
  }
  return "?";
}
std::optional<KvCacheDtype> kv_cache_dtype_from_name(std::string_view name);
constexpr bool is_fp8(KvCacheDtype k) { return k != KvCacheDtype::kAuto; }
constexpr DType kv_storage_dtype(KvCacheDtype k, DType activation) {
  switch (k) {
    case KvCacheDtype::kAuto: return activation;
    case KvCacheDtype::kFp8E4M3FN: return DType::kFP8E4M3FN;
    case KvCacheDtype::kFp8E4M3FNUZ: return DType::kFP8E4M3FNUZ;
  }
  return activation;
}
constexpr numeric::Fp8Format fp8_format(KvCacheDtype k) {
  return k == KvCacheDtype::kFp8E4M3FN ? numeric::Fp8Format::kE4M3FN
                                       : numeric::Fp8Format::kE4M3FNUZ;
}

}  // namespace rcsim
