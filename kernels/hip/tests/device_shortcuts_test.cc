// Goal: the shortcuts the tiled kernels take on a device write the same bits as the long way.
//  * reciprocal_root_in_range (gpu_platform.h): one range test for sqrtf and the reciprocal of
//    the RMSNorm, checked exhaustively against 1.0f / sqrtf(x) on every float it is used for.
//  * tile::reciprocal, tile::prepare_divisor and tile::fp8_scale (tile_common.h): the fp8
//    scale's reciprocal and its division by the fp8 max without nvcc's range tests, checked
//    against 1.0f / x, qk_math::prepare_divisor and qk_math::fp8_scale_from_amax on every 32-bit
//    pattern.
//  * tile::page_slot's division by the page size (fast_divisor.h), a multiply and a shift: checked
//    against `/` and `%` for every dividend below 2^31 and every divisor up to 256, on every
//    platform (it is the same code on AMD and NVIDIA).
//  * tile::pack_computed and encode_fp8<C, false> (tile_common.h): no NaN test where every NaN
//    they can be given is the device's canonical one. Checked on inputs full of the values that
//    reach those paths - NaNs of both signs with payloads, infinities, values whose squares
//    overflow, all-zero heads (a zero scale) - against the reference mapping, which rounds and
//    encodes in software with every NaN test, byte for byte (fp8 V codes by NaN class: see the
//    test); and against the CPU reference by NaN class (core/nan_class.h: computed NaNs differ
//    in payload between x86 and a GPU).
//  * the per-token fp8 cache writer's encode without a NaN test (nonfused_tiled.hip): the same
//    special values through the non-fused path, against its reference mapping byte for byte.
// Seed: RCSIM_SEED, as gpu_backend_test.
#include <array>
#include <cstdint>
#include <cmath>
#include <cstdio>
#include <limits>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "core/nan_class.h"
#include "core/prng.h"
#include "kernels/common/numeric.h"
#include "kernels/hip/tests/gpu_test_fixture.h"
#include "kernels/hip/tests/device_sequence_check.h"

namespace rcsim::gpu {
namespace {

// Reports a sweep and checks it covered `expected` values with no disagreement.
void expect_sweep_agrees(const char* what, const SweepCounts& c, int64_t expected) {
  std::printf("%s: %lld values, %lld disagree\n", what, static_cast<long long>(c.values),
              static_cast<long long>(c.disagreements));
  EXPECT_EQ(c.values, expected) << what << ": the sweep missed values";
  EXPECT_EQ(c.disagreements, 0) << what << ": first input bits 0x" << std::hex << c.first_bad_bits
                                << std::dec << "\n"
                                << repro();
}

constexpr int64_t kEveryBitPattern = int64_t{1} << 32;

TEST_F(GpuTest, ReciprocalRootMatchesTheDivisionOnEveryFloatOfItsRange) {
  if (!device_has_reciprocal_sequences()) {
    GTEST_SKIP() << "this platform's kernels divide (no hand-written 1/sqrt sequence to prove)";
  }
  // Every float of [2^-101, FLT_MAX], counted from the range's ends (gpu_platform.h's claim).
  const int64_t floats_in_range = int64_t{numeric::float_bits(std::numeric_limits<float>::max())} -
                                  numeric::float_bits(std::ldexp(1.0f, -101)) + 1;
  expect_sweep_agrees("reciprocal root", check_reciprocal_root_on_device(), floats_in_range);
}

TEST_F(GpuTest, FastDivisorMatchesTheDivisionOnEverySlot) {
  expect_sweep_agrees("fast divisor", check_fast_divisor_on_device(),
                      int64_t{kFastDivisorSweepMax} << 31);
}

TEST_F(GpuTest, ReciprocalMatchesTheDivisionOnEveryFloat) {
  if (!device_has_reciprocal_sequences()) {
    GTEST_SKIP() << "this platform's kernels divide (no hand-written 1/x sequence to prove)";
  }
  expect_sweep_agrees("reciprocal", check_reciprocal_on_device(), kEveryBitPattern);
  expect_sweep_agrees("prepared divisor", check_prepared_divisor_on_device(), kEveryBitPattern);
}

TEST_F(GpuTest, Fp8ScaleMatchesTheReferenceOnEveryFloatAmax) {
  if (!device_has_reciprocal_sequences()) {
    GTEST_SKIP() << "this platform's kernels divide (no hand-written quotient to prove)";
  }
  // Two cache types times two floors.
  expect_sweep_agrees("fp8 scale", check_fp8_scale_on_device(), 4 * kEveryBitPattern);
}

// bf16 / fp16 bit patterns that take the rare paths: +NaN with a payload, -NaN (signalling),
// +-infinity, and the largest finite value (bf16: its square overflows fp32).
constexpr std::array<uint16_t, 5> kBf16Specials = {0x7FC1, 0xFF81, 0x7F80, 0xFF80, 0x7F7F};
constexpr std::array<uint16_t, 5> kFp16Specials = {0x7E01, 0xFC01, 0x7C00, 0xFC00, 0x7BFF};

// Plants specials at random (token, column) of qkv (Q, K and V columns alike), the two NaNs with
// payloads at fixed dims of token 2's first V head (so a V cache that copies must keep them),
// and zeroes one K head and one V head of token 1 (amax 0: a zero scale with the floor off).
void plant_specials(HostCase& host, uint64_t seed) {
  const AttentionConfig& cfg = host.cfg;
  auto bits = host.qkv.as<uint16_t>();
  const auto& specials = cfg.act_dtype == DType::kBF16 ? kBf16Specials : kFp16Specials;
  const int64_t width = cfg.qkv_width(), tokens = static_cast<int64_t>(bits.size()) / width;
  SplitMix64 stream(seed);
  for (int i = 0; i < 48; ++i) {
    const int64_t token = static_cast<int64_t>(stream.next() % static_cast<uint64_t>(tokens));
    const int64_t col = static_cast<int64_t>(stream.next() % static_cast<uint64_t>(width));
    bits[static_cast<std::size_t>(token * width + col)] = specials[stream.next() % specials.size()];
  }
  const int64_t D = cfg.head_dim;
  const int64_t first_v = (cfg.num_heads_q + cfg.num_heads_kv) * D;
  bits[static_cast<std::size_t>(2 * width + first_v + 3)] = specials[0];
  bits[static_cast<std::size_t>(2 * width + first_v + 5)] = specials[1];
  for (int64_t head : {cfg.num_heads_q, cfg.num_heads_q + cfg.num_heads_kv + 1}) {
    for (int64_t d = 0; d < D; ++d) bits[static_cast<std::size_t>(width + head * D + d)] = 0;
  }
}

// NaNs the kernel wrote into the q and k columns of qkv (a planted NaN spreads over its head).
int64_t computed_nan_count(const HostCase& c) {
  const AttentionConfig& cfg = c.cfg;
  const auto bits = c.qkv.as<uint16_t>();
  const int64_t width = cfg.qkv_width(), qk_cols = (cfg.num_heads_q + cfg.num_heads_kv) * cfg.head_dim;
  int64_t n = 0;
  for (std::size_t i = 0; i < bits.size(); ++i) {
    if (static_cast<int64_t>(i) % width < qk_cols && is_nan_bits(cfg.act_dtype, bits[i])) ++n;
  }
  return n;
}

void canonicalise(HostTensor& t) {
  if (!t.empty()) canonicalise_nans(t.dtype(), {t.data(), static_cast<std::size_t>(t.bytes())});
}

// Every output that holds computed values (whose NaN payloads differ between x86 and a GPU). A V
// cache of the activation dtype holds copies, not computed values: its NaN payloads stay and are
// compared byte for byte.
void canonicalise_computed_outputs(HostCase& c) {
  for (HostTensor* t : {&c.qkv, &c.k_cache, &c.k_scale, &c.v_scale}) canonicalise(*t);
  if (c.cfg.kv_cache_dtype != KvCacheDtype::kAuto) canonicalise(c.v_cache);
}

// The outputs of one run on each thread mapping, from two uploads of the same case.
struct MappingOutputs {
  HostCase tiled;
  HostCase reference;
};
// Runs run(device_case) with the tiled mapping (kAuto), then on a second upload with the reference
// mapping forced; kAuto is set again after.
template <typename Run>
MappingOutputs run_tiled_and_reference(GpuBackend& gpu, const HostCase& host, Run run) {
  DeviceCase tiled = upload_case(host);
  DeviceCase reference = upload_case(host);
  gpu.set_kernel_mapping(KernelMapping::kAuto);
  run(tiled);
  gpu.set_kernel_mapping(KernelMapping::kReference);
  run(reference);
  gpu.set_kernel_mapping(KernelMapping::kAuto);
  return {tiled.download_all(), reference.download_all()};
}

TEST_F(GpuTest, FusedWithNanAndInfInputsMatchesTheReferenceMapping) {
  int n = 0;
  for (DType act : {DType::kBF16, DType::kFP16}) {
    for (KvCacheDtype kv : {KvCacheDtype::kAuto, KvCacheDtype::kFp8E4M3FN,
                            KvCacheDtype::kFp8E4M3FNUZ}) {
      CaseShape s;
      s.num_tokens = 48;
      s.act = act;
      s.kv = kv;
      s.slot_layout = n % 2 == 0 ? SlotLayout::kPrefill : SlotLayout::kScattered;
      HostCase host = make_case(s, mix_seed(test_seed(), 9500 + n));
      plant_specials(host, mix_seed(test_seed(), 9600 + n));
      ++n;
      MappingOutputs out = run_tiled_and_reference(
          *gpu_, host, [&](DeviceCase& d) { gpu_->kernels().fused->run(d.fused_args()); });
      HostCase& got = out.tiled;
      HostCase& want = out.reference;
      const std::string what = "specials " + s.describe();
      EXPECT_GE(computed_nan_count(got), s.head_dim) << what << ": no NaN head in q and k to test";
      // An fp8 V code of a NaN read from qkv keeps that NaN's sign in the tiled kernels (their
      // division by the scale copies the dividend's sign: kernels/common/exact_quotient.h) and
      // not in the reference mapping's true division (the canonical +NaN): both within the NaN
      // class contract, and not a path the shortcuts touch. So V codes compare by class.
      if (s.kv != KvCacheDtype::kAuto) {
        canonicalise(got.v_cache);
        canonicalise(want.v_cache);
      }
      expect_same_outputs(got, want, what + ", tiled vs reference mapping");

      cpu_.kernels().fused->run(host.fused_args());
      canonicalise_computed_outputs(host);
      canonicalise_computed_outputs(got);
      expect_same_outputs(got, host, what + ", tiled vs CPU by NaN class (V copies byte for byte)");
      if (HasFailure()) return;
    }
  }
}

// The non-fused fp8 cache writer (per-token scales) encodes v * (1/scale) with no NaN test where
// every NaN a product returns is the canonical +NaN (nonfused_tiled.hip, cache_elements). The
// reference mapping's writer multiplies too and encodes in software with every NaN test, so the
// two must agree byte for byte, the V codes of NaNs read from qkv (either sign) included; the CPU
// (whose multiply keeps a NaN operand's sign) by NaN class. 2049 tokens take the 4-V-head
// instance (NonFusedCompositionMatchesCpuInBothOrders says why; not in the quick set that the
// sanitizers run), 48 the 2-head one.
TEST_F(GpuTest, PerTokenCacheWriterWithNanAndInfInputsMatchesTheReferenceMapping) {
  std::vector<int64_t> sizes = {48};
  if (!quick()) sizes.push_back(2049);
  int n = 0;
  for (DType act : {DType::kBF16, DType::kFP16}) {
    for (KvCacheDtype kv : {KvCacheDtype::kFp8E4M3FN, KvCacheDtype::kFp8E4M3FNUZ}) {
      for (int64_t tokens : sizes) {
        CaseShape s;
        s.num_tokens = tokens;
        s.act = act;
        s.kv = kv;
        s.slot_layout = n % 2 == 0 ? SlotLayout::kPrefill : SlotLayout::kScattered;
        HostCase host = make_case(s, mix_seed(test_seed(), 9700 + n));
        plant_specials(host, mix_seed(test_seed(), 9800 + n));
        ++n;
        const auto run_gpu = [&](DeviceCase& d) {
          run_nonfused(gpu_->kernels(), FallbackOrder::kRopeThenNorm, d.cfg, d.qkv->view(),
                       d.q_weight->view(), d.k_weight->view(), d.cos_sin->view(),
                       d.positions->view(), d.slots->view(), d.cache_views(VCacheLayout::kShuffle));
        };
        MappingOutputs out = run_tiled_and_reference(*gpu_, host, run_gpu);
        HostCase& got = out.tiled;
        const std::string what = "non-fused specials " + s.describe();
        expect_same_outputs(got, out.reference, what + ", tiled vs reference mapping");

        run_nonfused(cpu_.kernels(), FallbackOrder::kRopeThenNorm, host.cfg, host.qkv.view(),
                     host.q_weight.view(), host.k_weight.view(), host.cos_sin.view(),
                     host.positions.view(), host.slots.view(), host.cache_views(VCacheLayout::kShuffle));
        canonicalise_computed_outputs(host);
        canonicalise_computed_outputs(got);
        expect_same_outputs(got, host, what + ", tiled vs CPU by NaN class");
        if (HasFailure()) return;
      }
    }
  }
}

}  // namespace
}  // namespace rcsim::gpu
