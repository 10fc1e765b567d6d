// Goal: the simulator's GPU-vs-CPU comparison points treat computed outputs by NaN class and data
// movement bit for bit (core/nan_class.h): q, k and the K cache may carry the GPU's NaN (0x7FFF,
// as measured on an H200) where the CPU oracle has its own (0xFFC0) and still pass and digest
// alike, while the same NaN difference in the V region of qkv, the returned V or a bf16 V cache
// (copies) is reported with its first (token, head, dim) or cache coordinate, and a NaN against
// a number is reported everywhere.
// Method: random non-zero bf16 inputs from one seed; the "GPU" side is a copy of the "CPU" side
// with one element rewritten; data_problems, compare_cache and Digest::elements are run on both.
#include <cstdint>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "core/prng.h"
#include "fault_injection/sim/checkers/data_checker.h"
#include "fault_injection/sim/digest.h"
#include "kernels/common/cache_layout.h"

namespace rcsim::sim {
namespace {

constexpr uint64_t kSeed = 0x4E414E43ull;  // printed by every failure message below
constexpr uint16_t kCpuNan = 0xFFC0;       // x86's default NaN, rounded to bf16
constexpr uint16_t kGpuNan = 0x7FFF;       // NVIDIA's canonical NaN, rounded to bf16

AttentionConfig small_config(KvCacheDtype kv) {
  AttentionConfig a;
  a.num_heads_q = 2;
  a.num_heads_kv = 1;
  a.head_dim = 64;
  a.rotary_dim = 64;
  a.block_size = 16;
  a.num_blocks = 2;
  a.kv_cache_dtype = kv;
  return a;
}

void fill_random(HostTensor& t, Prng& rng) {
  auto* p = reinterpret_cast<uint8_t*>(t.data());
  for (int64_t i = 0; i < t.bytes(); ++i) {
    // Non-zero and never a NaN/inf exponent: bytes in [0x01, 0x3F] (bf16/fp8 finite).
    p[i] = static_cast<uint8_t>(1 + rng.next_u64() % 0x3F);
  }
}

// One call's data on the "CPU" side and an identical "GPU" side to perturb.
struct Sides {
  AttentionConfig attn;
  HostTensor qkv_original, qkv_cpu, qkv_gpu;
  HostTensor k_cache_cpu, v_cache_cpu, k_cache_gpu, v_cache_gpu;
  HostTensor k_scale, v_scale;

  explicit Sides(KvCacheDtype kv)
      : attn(small_config(kv)),
        qkv_original(DType::kBF16, {3, attn.qkv_width()}),
        qkv_cpu(DType::kBF16, {3, attn.qkv_width()}),
        qkv_gpu(DType::kBF16, {3, attn.qkv_width()}),
        k_cache_cpu(attn.cache_storage_dtype(), {attn.num_blocks, 1, 64 / attn.x(), 16, attn.x()}),
        v_cache_cpu(attn.cache_storage_dtype(), {attn.num_blocks, 1, 16 / attn.x(), 64, attn.x()}),
        k_cache_gpu(attn.cache_storage_dtype(), {attn.num_blocks, 1, 64 / attn.x(), 16, attn.x()}),
        v_cache_gpu(attn.cache_storage_dtype(), {attn.num_blocks, 1, 16 / attn.x(), 64, attn.x()}),
        k_scale(DType::kFP32, {attn.num_blocks, 1, 16}),
        v_scale(DType::kFP32, {attn.num_blocks, 1, 16}) {
    Prng rng(kSeed);
    for (HostTensor* t : {&qkv_original, &k_cache_cpu, &v_cache_cpu, &k_scale, &v_scale}) {
      fill_random(*t, rng);
    }
    // The CPU's computed q/k hold its NaN at (token 1, head 1, dim 5) of q and of k.
    copy_view(qkv_original.view(), qkv_cpu.view());
    const QkvViews c = split_qkv(qkv_cpu.view(), 2, 1, 64);
    c.q.data_as<uint16_t>()[c.q.element_offset({1, 1, 5})] = kCpuNan;
    c.k.data_as<uint16_t>()[c.k.element_offset({1, 0, 5})] = kCpuNan;
    copy_view(qkv_cpu.view(), qkv_gpu.view());
    copy_view(k_cache_cpu.view(), k_cache_gpu.view());
    copy_view(v_cache_cpu.view(), v_cache_gpu.view());
  }
  KvCacheViews cache(HostTensor& k, HostTensor& v) {
    KvCacheViews c;
    c.k_cache = k.view();
    c.v_cache = v.view();
    if (is_fp8(attn.kv_cache_dtype)) {
      c.k_scale = k_scale.view();
      c.v_scale = v_scale.view();
    }
    return c;
  }
  std::vector<std::string> problems() {
    CallData d;
    const QkvViews cpu = split_qkv(qkv_cpu.view(), 2, 1, 64);
    const QkvViews gpu = split_qkv(qkv_gpu.view(), 2, 1, 64);
    d.q_returned = gpu.q;
    d.k_returned = gpu.k;
    d.v_returned = gpu.v;
    d.q_expected = cpu.q;
    d.k_expected = cpu.k;
    d.qkv_original = qkv_original.view();
    d.qkv_after = qkv_gpu.view();
    d.cache_got = cache(k_cache_gpu, v_cache_gpu);
    d.cache_expected = cache(k_cache_cpu, v_cache_cpu);
    return data_problems(attn, d, VCacheLayout::kShuffle);
  }
  uint16_t& gpu_q(int64_t t, int64_t h, int64_t d) {
    const QkvViews g = split_qkv(qkv_gpu.view(), 2, 1, 64);
    return g.q.data_as<uint16_t>()[g.q.element_offset({t, h, d})];
  }
  uint16_t& gpu_k(int64_t t, int64_t h, int64_t d) {
    const QkvViews g = split_qkv(qkv_gpu.view(), 2, 1, 64);
    return g.k.data_as<uint16_t>()[g.k.element_offset({t, h, d})];
  }
  uint16_t& gpu_v(int64_t t, int64_t h, int64_t d) {
    const QkvViews g = split_qkv(qkv_gpu.view(), 2, 1, 64);
    return g.v.data_as<uint16_t>()[g.v.element_offset({t, h, d})];
  }
};

std::string joined(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& p : v) s += p + "\n";
  return s + "(seed " + std::to_string(kSeed) + ")";
}

TEST(NanClassChecks, ComputedQkAndKCacheNanBitsOfTheGpuPass) {
  Sides s(KvCacheDtype::kAuto);
  ASSERT_TRUE(s.problems().empty()) << joined(s.problems());  // identical sides
  s.gpu_q(1, 1, 5) = kGpuNan;
  s.gpu_k(1, 0, 5) = kGpuNan;
  const layout::PagedCacheShape shape = s.attn.cache_shape();
  s.k_cache_cpu.as<uint16_t>()[layout::k_xpacked_offset(shape, 1, 0, 3, 7)] = kCpuNan;
  s.k_cache_gpu.as<uint16_t>()[layout::k_xpacked_offset(shape, 1, 0, 3, 7)] = kGpuNan;
  EXPECT_TRUE(s.problems().empty()) << joined(s.problems());
}

TEST(NanClassChecks, NanAgainstANumberInQIsStillReportedWithItsCoordinates) {
  Sides s(KvCacheDtype::kAuto);
  s.gpu_q(1, 1, 5) = 0x3F80;  // 1.0 where the CPU has NaN
  const auto p = s.problems();
  ASSERT_EQ(p.size(), 1u) << joined(p);
  EXPECT_NE(p[0].find("q differs at (token 1, head 1, dim 5)"), std::string::npos) << p[0];
}

TEST(NanClassChecks, TheSameNanDifferenceInDataMovementIsReported) {
  Sides s(KvCacheDtype::kAuto);
  // V is copied, never computed: the original holds a NaN with a payload, the "GPU" another NaN.
  const QkvViews o = split_qkv(s.qkv_original.view(), 2, 1, 64);
  o.v.data_as<uint16_t>()[o.v.element_offset({2, 0, 9})] = 0xFFC1;
  s.gpu_v(2, 0, 9) = kGpuNan;
  const auto p = s.problems();
  ASSERT_EQ(p.size(), 2u) << joined(p);  // v returned and the V region of qkv
  EXPECT_NE(p[0].find("v (returned) differs at (token 2, head 0, dim 9): got 0x7fff expected "
                      "0xffc1"),
            std::string::npos)
      << p[0];
  EXPECT_NE(p[1].find("V region of qkv (must stay untouched) differs at (token 2, head 0, dim 9)"),
            std::string::npos)
      << p[1];
}

TEST(NanClassChecks, BfloatVCacheIsBitExactButFp8CodesAreComputed) {
  {
    Sides s(KvCacheDtype::kAuto);
    const layout::PagedCacheShape shape = s.attn.cache_shape();
    const int64_t o = layout::v_shuffle_offset(shape, 0, 0, 4, 11);
    s.v_cache_cpu.as<uint16_t>()[o] = kCpuNan;
    s.v_cache_gpu.as<uint16_t>()[o] = kGpuNan;
    const auto p = s.problems();
    ASSERT_EQ(p.size(), 1u) << joined(p);
    EXPECT_NE(p[0].find("v_cache differs at (block 0, kv head 0, token-in-block 4, dim 11)"),
              std::string::npos)
        << p[0];
  }
  {
    Sides s(KvCacheDtype::kFp8E4M3FN);
    const layout::PagedCacheShape shape = s.attn.cache_shape();
    const int64_t ko = layout::k_xpacked_offset(shape, 1, 0, 2, 3);
    const int64_t vo = layout::v_shuffle_offset(shape, 1, 0, 2, 3);
    reinterpret_cast<uint8_t*>(s.k_cache_cpu.data())[ko] = 0xFF;  // -NaN code of the CPU
    reinterpret_cast<uint8_t*>(s.k_cache_gpu.data())[ko] = 0x7F;  // +NaN code of the GPU
    reinterpret_cast<uint8_t*>(s.v_cache_cpu.data())[vo] = 0xFF;
    reinterpret_cast<uint8_t*>(s.v_cache_gpu.data())[vo] = 0x7F;
    EXPECT_TRUE(s.problems().empty()) << joined(s.problems());
    reinterpret_cast<uint8_t*>(s.v_cache_gpu.data())[vo] = 0x7E;  // 448, not NaN: reported
    const auto p = s.problems();
    ASSERT_EQ(p.size(), 1u) << joined(p);
    EXPECT_NE(p[0].find("v_cache differs at (block 1, kv head 0, token-in-block 2, dim 3)"),
              std::string::npos)
        << p[0];
  }
}

uint64_t digest_of(const TensorView& v, NanRule rule) {
  Digest d;
  d.elements(v, rule);
  return d.result();
}

TEST(NanClassChecks, DigestOfComputedOutputsIsTheSameForEitherBackendsNan) {
  Sides s(KvCacheDtype::kAuto);
  s.gpu_q(1, 1, 5) = kGpuNan;
  const QkvViews c = split_qkv(s.qkv_cpu.view(), 2, 1, 64);
  const QkvViews g = split_qkv(s.qkv_gpu.view(), 2, 1, 64);
  EXPECT_EQ(digest_of(c.q, NanRule::kNanClass), digest_of(g.q, NanRule::kNanClass));
  EXPECT_NE(digest_of(c.q, NanRule::kBitExact), digest_of(g.q, NanRule::kBitExact));
  // A NaN against a number changes the digest under either rule.
  s.gpu_q(1, 1, 5) = 0x3F80;
  EXPECT_NE(digest_of(c.q, NanRule::kNanClass), digest_of(g.q, NanRule::kNanClass));
  // Strided views hash their elements only: q of qkv equals q copied out.
  HostTensor q_copy(DType::kBF16, {3, 2, 64});
  copy_view(c.q, q_copy.view());
  EXPECT_EQ(digest_of(c.q, NanRule::kBitExact), digest_of(q_copy.view(), NanRule::kBitExact));
}

}  // namespace
}  // namespace rcsim::sim
