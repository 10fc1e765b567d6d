// Goal: the one NaN canonicalisation (core/nan_class.h) recognises exactly the NaN encodings of
// each dtype, maps them all to one pattern, leaves every other pattern alone (infinities, -0,
// subnormals, the largest finite values), and NanRule::kBitExact still tells NaN payloads apart.
// Method: every 16-bit and 8-bit pattern is enumerated and checked against an independent
// definition (exponent all ones and mantissa non-zero; e4m3fn S.1111.111; e4m3fnuz 0x80); fp32
// at the boundaries and the NaNs the backends really produce (x86 0xFFC00000, NVIDIA 0x7FFFFFFF,
// AMD 0x7FC00000).
#include <cstdint>
#include <vector>

#include <gtest/gtest.h>

#include "core/nan_class.h"

namespace rcsim {
namespace {

bool bf16_is_nan(uint32_t b) { return ((b >> 7) & 0xFFu) == 0xFFu && (b & 0x7Fu) != 0; }
bool fp16_is_nan(uint32_t b) { return ((b >> 10) & 0x1Fu) == 0x1Fu && (b & 0x3FFu) != 0; }

TEST(NanClass, EverySixteenBitPatternClassifiedAsItsFormatSays) {
  int64_t bf16_nans = 0, fp16_nans = 0;
  for (uint32_t b = 0; b <= 0xFFFFu; ++b) {
    ASSERT_EQ(is_nan_bits(DType::kBF16, b), bf16_is_nan(b)) << std::hex << b;
    ASSERT_EQ(is_nan_bits(DType::kFP16, b), fp16_is_nan(b)) << std::hex << b;
    bf16_nans += bf16_is_nan(b);
    fp16_nans += fp16_is_nan(b);
    ASSERT_EQ(canonical_nan_bits(DType::kBF16, b), bf16_is_nan(b) ? 0x7FC0u : b) << std::hex << b;
    ASSERT_EQ(canonical_nan_bits(DType::kFP16, b), fp16_is_nan(b) ? 0x7E00u : b) << std::hex << b;
  }
  EXPECT_EQ(bf16_nans, 2 * 127);   // 2 signs x 127 non-zero 7-bit mantissas
  EXPECT_EQ(fp16_nans, 2 * 1023);  // 2 signs x 1023 non-zero 10-bit mantissas
}

TEST(NanClass, Fp8NanCodesAreTheFormatsOwn) {
  for (uint32_t b = 0; b <= 0xFFu; ++b) {
    const bool fn_nan = b == 0x7Fu || b == 0xFFu;
    const bool fnuz_nan = b == 0x80u;
    ASSERT_EQ(is_nan_bits(DType::kFP8E4M3FN, b), fn_nan) << std::hex << b;
    ASSERT_EQ(is_nan_bits(DType::kFP8E4M3FNUZ, b), fnuz_nan) << std::hex << b;
    ASSERT_EQ(canonical_nan_bits(DType::kFP8E4M3FN, b), fn_nan ? 0x7Fu : b) << std::hex << b;
    ASSERT_EQ(canonical_nan_bits(DType::kFP8E4M3FNUZ, b), b) << std::hex << b;  // one NaN code
  }
}

TEST(NanClass, BackendNansAreOneClassAndNonNansStayThemselves) {
  // The arithmetic NaNs of x86, NVIDIA and AMD, and one with a propagated payload.
  for (uint64_t nan : {0xFFC00000ull, 0x7FFFFFFFull, 0x7FC00000ull, 0x7F800001ull}) {
    EXPECT_EQ(canonical_nan_bits(DType::kFP32, nan), 0x7FC00000u) << std::hex << nan;
  }
  for (uint64_t v : {0x7F800000ull, 0xFF800000ull, 0x80000000ull, 0x00000001ull, 0x7F7FFFFFull}) {
    EXPECT_EQ(canonical_nan_bits(DType::kFP32, v), v) << std::hex << v;
  }
  // bf16 of those: the CPU reference's 0xFFC0 and the H200's 0x7FFF are one class.
  EXPECT_TRUE(element_bits_equal(DType::kBF16, 0xFFC0u, 0x7FFFu, NanRule::kNanClass));
  EXPECT_FALSE(element_bits_equal(DType::kBF16, 0xFFC0u, 0x7FFFu, NanRule::kBitExact));
  // NaN class is not "anything goes": NaN vs inf, NaN vs a number, +0 vs -0 still differ.
  EXPECT_FALSE(element_bits_equal(DType::kBF16, 0x7FC0u, 0x7F80u, NanRule::kNanClass));
  EXPECT_FALSE(element_bits_equal(DType::kBF16, 0x7FC0u, 0x3F80u, NanRule::kNanClass));
  EXPECT_FALSE(element_bits_equal(DType::kBF16, 0x0000u, 0x8000u, NanRule::kNanClass));
  EXPECT_TRUE(element_bits_equal(DType::kFP8E4M3FN, 0x7Fu, 0xFFu, NanRule::kNanClass));
  EXPECT_FALSE(element_bits_equal(DType::kFP8E4M3FN, 0x7Eu, 0xFEu, NanRule::kNanClass));
  EXPECT_FALSE(element_bits_equal(DType::kI64, 1, 2, NanRule::kNanClass));
}

TEST(NanClass, CanonicaliseRewritesOnlyNanElementsOfABuffer) {
  std::vector<uint16_t> buf = {0x3F80, 0xFFC0, 0x7F80, 0x7FFF, 0x8000, 0xFFFF, 0x7FC1};
  canonicalise_nans(DType::kBF16, std::as_writable_bytes(std::span<uint16_t>(buf)));
  const std::vector<uint16_t> want = {0x3F80, 0x7FC0, 0x7F80, 0x7FC0, 0x8000, 0x7FC0, 0x7FC0};
  EXPECT_EQ(buf, want);
}

}  // namespace
}  // namespace rcsim
