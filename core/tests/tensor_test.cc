// Goal: the tensor vocabulary the kernels rely on: split_qkv gives ATOM's aliasing q/k/v views
// (token stride (Hq+2Hkv)*D), contiguity and element offsets follow the strides, copy_view moves
// every element and nothing else, HostTensor refuses sizes beyond the limit.
// Method: small hand-sized tensors with expected offsets written out; a sentinel-filled
// destination for the copy; every byte compared.
#include <cstdint>
#include <cstring>

#include <gtest/gtest.h>

#include "core/check.h"
#include "core/tensor.h"

namespace rcsim {
namespace {

TEST(Tensor, SplitQkvAliasesTheQkvBufferWithTokenStrideOfAllHeads) {
  // Hq = 4, Hkv = 2, D = 8, T = 3: width (4 + 2*2) * 8 = 64.
  HostTensor qkv(DType::kBF16, {3, 64});
  const QkvViews v = split_qkv(qkv.view(), 4, 2, 8);
  EXPECT_TRUE(v.q.same_shape({3, 4, 8}));
  EXPECT_TRUE(v.k.same_shape({3, 2, 8}));
  EXPECT_TRUE(v.v.same_shape({3, 2, 8}));
  for (const TensorView* t : {&v.q, &v.k, &v.v}) {
    EXPECT_EQ(t->stride(0), 64);
    EXPECT_EQ(t->stride(1), 8);
    EXPECT_EQ(t->stride(2), 1);
    EXPECT_EQ(t->base, qkv.data());
  }
  EXPECT_EQ(v.q.offset, 0);
  EXPECT_EQ(v.k.offset, 32);
  EXPECT_EQ(v.v.offset, 48);
  // k[token 2, head 1, dim 5] is qkv element 2*64 + 32 + 1*8 + 5.
  EXPECT_EQ(v.k.offset + v.k.element_offset({2, 1, 5}), 2 * 64 + 32 + 8 + 5);
  EXPECT_EQ(v.k.data(), qkv.data() + 32 * 2);
  EXPECT_FALSE(v.q.is_contiguous());
  EXPECT_TRUE(qkv.view().is_contiguous());
  EXPECT_EQ(v.v.span_bytes(), ((3 - 1) * 64 + (2 - 1) * 8 + 7 + 1) * 2);
}

TEST(Tensor, CopyViewMovesEveryStridedElementAndNothingElse) {
  HostTensor qkv(DType::kBF16, {3, 64});
  auto bits = qkv.as<uint16_t>();
  for (std::size_t i = 0; i < bits.size(); ++i) bits[i] = static_cast<uint16_t>(0x3F80u + i);
  const QkvViews v = split_qkv(qkv.view(), 4, 2, 8);
  HostTensor dst(DType::kBF16, {3, 2, 8});
  dst.fill_pattern(0xA5);
  copy_view(v.v, dst.view());
  const auto out = dst.as<uint16_t>();
  for (int64_t t = 0; t < 3; ++t)
    for (int64_t h = 0; h < 2; ++h)
      for (int64_t d = 0; d < 8; ++d) {
        EXPECT_EQ(out[static_cast<std::size_t>((t * 2 + h) * 8 + d)],
                  static_cast<uint16_t>(0x3F80u + t * 64 + 48 + h * 8 + d));
      }
  // Into a strided destination: the K region of a second qkv; the rest keeps its sentinel.
  HostTensor other(DType::kBF16, {3, 64});
  other.fill_pattern(0x5A);
  const QkvViews w = split_qkv(other.view(), 4, 2, 8);
  copy_view(dst.view(), w.k);
  const auto o = other.as<uint16_t>();
  for (int64_t t = 0; t < 3; ++t)
    for (int64_t c = 0; c < 64; ++c) {
      const uint16_t got = o[static_cast<std::size_t>(t * 64 + c)];
      if (c >= 32 && c < 48) {
        EXPECT_EQ(got, static_cast<uint16_t>(0x3F80u + t * 64 + 48 + (c - 32)));
      } else {
        EXPECT_EQ(got, 0x5A5Au) << "token " << t << " column " << c;
      }
    }
}

TEST(Tensor, HostTensorRefusesSizesBeyondTheLimitAndNegativeDims) {
  EXPECT_THROW(HostTensor(DType::kFP32, {int64_t{1} << 40}), InvalidInput);
  EXPECT_THROW(HostTensor(DType::kBF16, {4, -1}), InvalidInput);
  HostTensor empty(DType::kBF16, {0, 8});
  EXPECT_TRUE(empty.empty());
  EXPECT_EQ(empty.view().span_bytes(), 0);
}

TEST(Tensor, HostTensorCopiesAreDeepAndFillPatternCoversEveryByte) {
  HostTensor a(DType::kFP32, {5});
  a.fill_pattern(0x11);
  HostTensor b = a;
  EXPECT_TRUE(a.bytes_equal(b));
  b.as<float>()[4] = 1.0f;
  EXPECT_FALSE(a.bytes_equal(b));
  const auto* p = reinterpret_cast<const uint8_t*>(a.data());
  for (int64_t i = 0; i < a.bytes(); ++i) EXPECT_EQ(p[i], 0x11);
}

}  // namespace
}  // namespace rcsim
