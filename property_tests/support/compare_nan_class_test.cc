// Goal: the property suites' comparisons that put a backend's run beside the CPU reference
// (check_restore's second oracle, RCSIM_PROPERTY_BACKEND=gpu) accept the GPU's NaN bits in
// computed q/k and caches (NanRule::kNanClass) and still report the same NaN difference in V,
// which is data movement, with its first (token, head, dim); the default stays bit-exact.
// Method: random non-zero bf16 qkv from one seed; the "GPU" copy differs in one NaN's bits.
#include <cstdint>
#include <string>

#include <gtest/gtest.h>

#include "core/prng.h"
#include "property_tests/support/compare.h"

namespace rcsim::props {
namespace {

constexpr uint64_t kSeed = 0x4E414E44ull;

AttentionConfig config() {
  AttentionConfig a;
  a.num_heads_q = 2;
  a.num_heads_kv = 1;
  a.head_dim = 64;
  a.rotary_dim = 64;
  return a;
}

HostTensor random_qkv(const AttentionConfig& a) {
  HostTensor t(DType::kBF16, {4, a.qkv_width()});
  Prng rng(kSeed);
  for (uint16_t& v : t.as<uint16_t>()) v = static_cast<uint16_t>(0x3C00 + rng.next_u64() % 0x0400);
  return t;
}

uint16_t& at(const AttentionConfig& a, HostTensor& qkv, int64_t t, int64_t head, int64_t d) {
  return qkv.as<uint16_t>()[static_cast<std::size_t>(t * a.qkv_width() + head * a.head_dim + d)];
}

TEST(CompareNanClass, QkNanBitsOfAnotherBackendPassOnlyUnderNanClass) {
  const AttentionConfig a = config();
  HostTensor cpu = random_qkv(a);
  HostTensor gpu = random_qkv(a);
  at(a, cpu, 3, 1, 17) = 0xFFC0;  // q head 1: x86's NaN
  at(a, gpu, 3, 1, 17) = 0x7FFF;  // the H200's
  at(a, cpu, 2, 2, 40) = 0xFFC0;  // k head 0
  at(a, gpu, 2, 2, 40) = 0x7FFF;
  EXPECT_EQ(first_qkv_bit_difference(a, gpu, cpu, NanRule::kNanClass), std::nullopt)
      << "seed " << kSeed;
  const auto exact = first_qkv_bit_difference(a, gpu, cpu);
  ASSERT_TRUE(exact.has_value());
  EXPECT_NE(exact->find("(token 2, head k0, dim 40)"), std::string::npos) << *exact;
  EXPECT_EQ(first_byte_difference(gpu, cpu, "qkv", NanRule::kNanClass), std::nullopt);
  EXPECT_TRUE(first_byte_difference(gpu, cpu, "qkv").has_value());
}

TEST(CompareNanClass, TheSameDifferenceInVIsDataMovementAndReported) {
  const AttentionConfig a = config();
  HostTensor cpu = random_qkv(a);
  HostTensor gpu = random_qkv(a);
  at(a, cpu, 1, 3, 9) = 0xFFC1;  // V head 0 (heads Q0 Q1 K0 V0): a NaN with a payload
  at(a, gpu, 1, 3, 9) = 0x7FFF;
  const auto d = first_qkv_bit_difference(a, gpu, cpu, NanRule::kNanClass);
  ASSERT_TRUE(d.has_value()) << "seed " << kSeed;
  EXPECT_NE(d->find("(token 1, head v0, dim 9)"), std::string::npos) << *d;
}

TEST(CompareNanClass, NanAgainstANumberIsReportedUnderNanClass) {
  const AttentionConfig a = config();
  HostTensor cpu = random_qkv(a);
  HostTensor gpu = random_qkv(a);
  at(a, cpu, 0, 0, 0) = 0xFFC0;
  const auto d = first_qkv_bit_difference(a, gpu, cpu, NanRule::kNanClass);
  ASSERT_TRUE(d.has_value()) << "seed " << kSeed;
  EXPECT_NE(d->find("(token 0, head q0, dim 0)"), std::string::npos) << *d;
  HostTensor codes_cpu(DType::kFP8E4M3FN, {8}), codes_gpu(DType::kFP8E4M3FN, {8});
  codes_cpu.fill_pattern(0x35);
  codes_gpu.fill_pattern(0x35);
  reinterpret_cast<uint8_t*>(codes_cpu.data())[5] = 0xFF;
  reinterpret_cast<uint8_t*>(codes_gpu.data())[5] = 0x7F;
  EXPECT_EQ(first_byte_difference(codes_gpu, codes_cpu, "k_cache", NanRule::kNanClass),
            std::nullopt);
  reinterpret_cast<uint8_t*>(codes_gpu.data())[5] = 0x7E;
  const auto c = first_byte_difference(codes_gpu, codes_cpu, "k_cache", NanRule::kNanClass);
  ASSERT_TRUE(c.has_value());
  EXPECT_NE(c->find("element 5 of 8: 0x7e vs expected 0xff"), std::string::npos) << *c;
}

}  // namespace
}  // namespace rcsim::props
