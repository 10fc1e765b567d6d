// Goal: known answers at the edges the random tests never reach, for the paths whose math lives in
// kernels/common (so a planted change there cannot hide behind a differential test):
//   * NeoX and GPT-J rotation signs at a non-trivial angle, full and partial rotary, through the
//     fused kernel and the non-fused rotary kernel, with the cos/sin row read from the table's last
//     position;
//   * heads whose mean square is near eps (|x| = 2^-10: mean square 2^-20 ~ 0.95 eps) and exact-zero
//     heads (no NaN out of the norm);
//   * GQA with 2 KV heads and per-token fp8 scales: every scale checked at its own row-major
//     location of [NB, Hkv, BS] (and every other scale word still the sentinel), K and V codes at
//     fp8 max, amax below the 1e-8 scale floor (floor on: a finite scale; floor off: NaN codes).
// Method: inputs are chosen so the outputs follow by hand (derivations beside each constant): q/k
// heads of +-1 normalise to exactly +-1 (1/sqrt(1 + 1e-6) rounds to bf16 1.0), and a cos/sin row
// of (0.75, 0.5) turns +-1 pairs into the exact bf16 values 1.25, 0.25, -0.25, -1.25, so a sign,
// pairing or pass-through error shows as a different exact value. Offsets into the caches and the
// scales are written out here from the documented logical shapes, not taken from cache_layout.h.
#include <cstdint>
#include <cstring>
#include <vector>

#include <gtest/gtest.h>

#include "kernels/cpu/kernels.h"
#include "kernels/cpu/tests/test_support.h"

namespace rcsim::cpu {
namespace {

constexpr int64_t kD = 64, kHq = 2, kHkv = 2, kBS = 16, kNB = 2, kMaxPos = 8, kT = 4;
constexpr int64_t kWidth = (kHq + 2 * kHkv) * kD;
constexpr int64_t kLastPos = kMaxPos - 1;
// bf16 bit patterns of the exact values used below.
constexpr uint16_t kOne = 0x3F80, kMinusOne = 0xBF80, kZero = 0x0000;
constexpr uint16_t k1p25 = 0x3FA0, k0p25 = 0x3E80, kM0p25 = 0xBE80, kM1p25 = 0xBFA0;
constexpr uint16_t k0p75 = 0x3F40, k0p5 = 0x3F00;
// 2^-10 and its normalised value: mean square 2^-20 = 9.5367e-7, rcp = 1/sqrtf(9.5367e-7 + 1e-6)
// = 715.4, 2^-10 * 715.4 = 0.69864 -> bf16 0.69921875 (0x3F33). With eps outside the root the
// result would be 2^-10 / (2^-10 + 1e-6) = 0.99898 -> bf16 1.0: this head sees eps's placement.
constexpr uint16_t kTiny = 0x3A80, kTinyNormed = 0x3F33;
// 2^-30 (bf16 0x3080): below the 1e-8 amax floor.
constexpr uint16_t kBelowFloor = 0x3080;

constexpr int64_t kSlots[kT] = {17, 2, 31, -1};  // token 3 is padding
constexpr int64_t kPositions[kT] = {kLastPos, 0, kLastPos, kLastPos};

uint16_t head_elem(const testing::Layer& l, int64_t t, int64_t head, int64_t d) {
  return l.qkv.as<uint16_t>()[static_cast<std::size_t>(t * kWidth + head * kD + d)];
}
void set_head(testing::Layer& l, int64_t t, int64_t head, uint16_t (*f)(int64_t d)) {
  for (int64_t d = 0; d < kD; ++d) {
    l.qkv.as<uint16_t>()[static_cast<std::size_t>(t * kWidth + head * kD + d)] = f(d);
  }
}

// +1 then -1 over the rotated dims (NeoX: halves; GPT-J: pairs of equal sign), (-1)^d beyond.
uint16_t sign_pattern_full(int64_t d) { return d < kD / 2 ? kOne : kMinusOne; }
uint16_t sign_pattern_rot16(int64_t d) {
  if (d < 8) return kOne;
  if (d < 16) return kMinusOne;
  return d % 2 == 0 ? kOne : kMinusOne;
}
uint16_t tiny_pattern(int64_t d) { return d % 2 == 0 ? kTiny : static_cast<uint16_t>(kTiny | 0x8000); }
uint16_t zero_pattern(int64_t) { return kZero; }
uint16_t below_floor_pattern(int64_t d) {
  return d % 3 == 0 ? static_cast<uint16_t>(kBelowFloor | 0x8000) : kBelowFloor;
}
// V heads with a known amax: 3.0 (0x4040) in dim 5, others in {1.5, -0.75, -3 at dim 9}.
uint16_t v_amax3_pattern(int64_t d) {
  if (d == 5) return 0x4040;
  if (d == 9) return 0xC040;
  return d % 2 == 0 ? 0x3FC0 : 0xBF40;
}
// V heads of amax 0.5: -0.5 at dim 0 (the largest magnitude is negative), 0.25 elsewhere.
uint16_t v_amax_half_pattern(int64_t d) { return d == 0 ? 0xBF00 : 0x3E80; }

struct EdgeLayer {
  testing::Layer l;
  int64_t rot;
  bool neox;
};

// Token 0 (last table row, slot 17 = block 1 / offset 1): Q0, K0 sign pattern; Q1 tiny; K1 zero;
//   V0 amax 3, V1 amax 0.5.
// Token 1 (position 0 = identity row, slot 2 = block 0 / offset 2): Q0, K0 tiny; Q1 zero; K1 sign
//   pattern; V0 below the amax floor; V1 zero.
// Token 2 (last row, slot 31 = block 1 / offset 15): Q/K sign pattern; V0 amax 0.5, V1 amax 3.
// Token 3: padding (slot -1), sign pattern: normalised and rotated, never cached.
EdgeLayer make_edge_layer(KvCacheDtype kv, int64_t rot, bool neox, bool amax_floor) {
  AttentionConfig c;
  c.num_heads_q = kHq;
  c.num_heads_kv = kHkv;
  c.head_dim = kD;
  c.rotary_dim = rot;
  c.is_neox = neox;
  c.eps = 1e-6f;
  c.act_dtype = DType::kBF16;
  c.kv_cache_dtype = kv;
  c.block_size = kBS;
  c.num_blocks = kNB;
  c.max_position = kMaxPos;
  c.amax_floor = amax_floor;
  Prng rng(testing::test_seed());
  testing::LayerOptions opt;
  opt.tokens = kT;
  EdgeLayer e{testing::make_layer(c, rng, opt), rot, neox};
  testing::Layer& l = e.l;
  using Pattern = uint16_t (*)(int64_t);
  const Pattern p = rot == kD ? sign_pattern_full : sign_pattern_rot16;
  const Pattern tiny = tiny_pattern, zero = zero_pattern, below = below_floor_pattern;
  const Pattern v3 = v_amax3_pattern, vh = v_amax_half_pattern;
  // Heads per token, in qkv order: Q0 Q1 K0 K1 V0 V1.
  const Pattern heads[kT][kHq + 2 * kHkv] = {{p, tiny, p, zero, v3, vh},
                                             {tiny, zero, tiny, p, below, zero},
                                             {p, p, p, p, vh, v3},
                                             {p, p, p, p, v3, v3}};
  for (int64_t t = 0; t < kT; ++t) {
    for (int64_t h = 0; h < kHq + 2 * kHkv; ++h) set_head(l, t, h, heads[t][h]);
  }
  for (int64_t d = 0; d < kD; ++d) {
    l.q_weight.as<uint16_t>()[static_cast<std::size_t>(d)] = kOne;
    l.k_weight.as<uint16_t>()[static_cast<std::size_t>(d)] = kOne;
  }
  // Row 0: the identity (cos 1, sin 0). The last row: cos 0.75, sin 0.5 at every frequency. Other
  // rows: cos 0.5, sin 0.75, so reading a wrong row changes the result.
  auto cs = l.cos_sin.as<uint16_t>();
  for (int64_t pos = 0; pos < kMaxPos; ++pos) {
    for (int64_t j = 0; j < rot / 2; ++j) {
      const bool identity = pos == 0, last = pos == kLastPos;
      cs[static_cast<std::size_t>(pos * rot + j)] = identity ? kOne : last ? k0p75 : k0p5;
      cs[static_cast<std::size_t>(pos * rot + rot / 2 + j)] =
          identity ? kZero : last ? k0p5 : k0p75;
    }
  }
  for (int64_t t = 0; t < kT; ++t) {
    l.positions.as<int64_t>()[static_cast<std::size_t>(t)] = kPositions[t];
    l.slots.as<int64_t>()[static_cast<std::size_t>(t)] = kSlots[t];
  }
  l.reset_caches();
  return e;
}

// The rotated sign pattern at the (0.75, 0.5) row, derived by hand: NeoX pairs (d, d+rot/2) hold
// (+1, -1): first member 1*0.75 - (-1)*0.5 = 1.25, second -1*0.75 + 1*0.5 = -0.25. GPT-J pairs
// (2i, 2i+1) hold (+1, +1) then (-1, -1): even 0.75 - 0.5 = 0.25, odd 0.75 + 0.5 = 1.25, and the
// negated pair -0.25, -1.25. Dims >= rot keep the normalised +-1.
uint16_t rotated_sign_pattern(int64_t d, int64_t rot, bool neox) {
  if (d >= rot) return d % 2 == 0 ? kOne : kMinusOne;
  const bool first_group = d < rot / 2;
  if (neox) return first_group ? k1p25 : kM0p25;
  if (first_group) return d % 2 == 0 ? k0p25 : k1p25;
  return d % 2 == 0 ? kM0p25 : kM1p25;
}

// Row-major offsets of the documented logical shapes (semantics.md 2.3), written out here.
int64_t k_offset(int64_t b, int64_t h, int64_t off, int64_t d, int64_t x) {
  const int64_t shape_dx = kD / x;  // [NB, Hkv, D/x, BS, x]
  return (((b * kHkv + h) * shape_dx + d / x) * kBS + off) * x + d % x;
}
int64_t v_shuffle_offset_here(int64_t b, int64_t h, int64_t off, int64_t d, int64_t x) {
  const int64_t tiles = kBS / x;  // [NB, Hkv, BS/x, D, x]
  return (((b * kHkv + h) * tiles + off / x) * kD + d) * x + off % x;
}
int64_t scale_index(int64_t b, int64_t h, int64_t off) { return (b * kHkv + h) * kBS + off; }

class EdgeKnownAnswer : public ::testing::TestWithParam<std::tuple<int64_t, bool>> {};

TEST_P(EdgeKnownAnswer, FusedSignsTinyAndZeroHeadsAtTheLastTableRow) {
  const auto [rot, neox] = GetParam();
  EdgeLayer e = make_edge_layer(KvCacheDtype::kAuto, rot, neox, /*amax_floor=*/true);
  CpuFusedQkNormRopeCache fused;
  fused.run(e.l.fused_args());
  const int64_t k0 = kHq, k1 = kHq + 1;
  for (int64_t d = 0; d < kD; ++d) {
    SCOPED_TRACE(::testing::Message() << "rot " << rot << (neox ? " neox" : " gptj") << ", dim "
                                      << d << "; " << testing::repro_line());
    const uint16_t rotated = rotated_sign_pattern(d, rot, neox);
    EXPECT_EQ(head_elem(e.l, 0, 0, d), rotated) << "token 0 Q head 0";
    EXPECT_EQ(head_elem(e.l, 0, k0, d), rotated) << "token 0 K head 0";
    EXPECT_EQ(head_elem(e.l, 3, 1, d), rotated) << "token 3 (padding) Q head 1";
    // Tiny heads at the identity row: only the norm acts. Signs alternate with d.
    const uint16_t tiny = d % 2 == 0 ? kTinyNormed : static_cast<uint16_t>(kTinyNormed | 0x8000);
    EXPECT_EQ(head_elem(e.l, 1, 0, d), tiny) << "token 1 Q head 0 (mean square ~ eps)";
    EXPECT_EQ(head_elem(e.l, 1, k0, d), tiny) << "token 1 K head 0 (mean square ~ eps)";
    EXPECT_EQ(head_elem(e.l, 1, 1, d), kZero) << "token 1 Q head 1 (zero head)";
    EXPECT_EQ(head_elem(e.l, 0, k1, d), kZero) << "token 0 K head 1 (zero head)";
  }
}

TEST_P(EdgeKnownAnswer, RotaryKernelSignsAtTheLastTableRow) {
  const auto [rot, neox] = GetParam();
  EdgeLayer e = make_edge_layer(KvCacheDtype::kAuto, rot, neox, true);
  // The non-fused rotary kernel on already-normalised +-1 values (no norm): same answers.
  RotaryArgs r;
  const QkvViews v = e.l.qkv_views();
  r.q = v.q;
  r.k = v.k;
  r.positions = e.l.positions.view();
  r.cos_sin_cache = e.l.cos_sin.view();
  r.rotary_dim = rot;
  r.is_neox = neox;
  CpuRotaryEmbedding rotary;
  rotary.run(r);
  for (int64_t d = 0; d < kD; ++d) {
    SCOPED_TRACE(::testing::Message() << "rot " << rot << (neox ? " neox" : " gptj") << ", dim "
                                      << d << "; " << testing::repro_line());
    EXPECT_EQ(head_elem(e.l, 0, 0, d), rotated_sign_pattern(d, rot, neox)) << "token 0 Q head 0";
    EXPECT_EQ(head_elem(e.l, 2, kHq + 1, d), rotated_sign_pattern(d, rot, neox))
        << "token 2 K head 1";
  }
}

INSTANTIATE_TEST_SUITE_P(SignsAndRotary, EdgeKnownAnswer,
                         ::testing::Values(std::make_tuple(kD, true), std::make_tuple(kD, false),
                                           std::make_tuple(int64_t{16}, true),
                                           std::make_tuple(int64_t{16}, false)),
                         [](const ::testing::TestParamInfo<std::tuple<int64_t, bool>>& param) {
                           return "rot" + std::to_string(std::get<0>(param.param)) +
                                  (std::get<1>(param.param) ? "_neox" : "_gptj");
                         });

// Per-token scales of 2 KV heads, each checked at its own location; codes at fp8 max.
struct ExpectedScale {
  int64_t token, head;
  float value;
};

void expect_scales_exactly(const HostTensor& scales, const std::vector<ExpectedScale>& want,
                           const char* side) {
  std::vector<bool> listed(static_cast<std::size_t>(scales.numel()), false);
  const auto* words = reinterpret_cast<const uint32_t*>(scales.data());
  for (const ExpectedScale& w : want) {
    const int64_t slot = kSlots[w.token];
    const int64_t at = scale_index(slot / kBS, w.head, slot % kBS);
    float got = 0;
    std::memcpy(&got, &words[at], sizeof got);
    EXPECT_EQ(got, w.value) << side << " scale of token " << w.token << " head " << w.head
                            << " at [block " << slot / kBS << ", head " << w.head << ", offset "
                            << slot % kBS << "] = word " << at << "; " << testing::repro_line();
    listed[static_cast<std::size_t>(at)] = true;
  }
  const uint32_t sentinel = 0x01010101u * testing::kScaleSentinel;
  for (int64_t i = 0; i < scales.numel(); ++i) {
    if (!listed[static_cast<std::size_t>(i)]) {
      EXPECT_EQ(words[i], sentinel) << side << " scale word " << i << " must keep its sentinel";
    }
  }
}

TEST(EdgeKnownAnswerFp8, GqaPerTokenScalesAtTheirRowMajorLocations) {
  EdgeLayer e = make_edge_layer(KvCacheDtype::kFp8E4M3FN, kD, true, /*amax_floor=*/true);
  CpuFusedQkNormRopeCache fused;
  fused.run(e.l.fused_args());
  const float floor_scale = 1e-8f / 448.0f;
  // K: token 0 head 0 and token 2 both heads are the rotated sign pattern (amax 1.25); token 0
  // head 1 is zero (amax 0 -> floor); token 1 head 0 is the tiny head (amax 0.69921875), head 1
  // the unrotated sign pattern (amax 1).
  expect_scales_exactly(e.l.k_scale, {{0, 0, 1.25f / 448.0f}, {0, 1, floor_scale},
                                      {1, 0, 0.69921875f / 448.0f}, {1, 1, 1.0f / 448.0f},
                                      {2, 0, 1.25f / 448.0f}, {2, 1, 1.25f / 448.0f}},
                        "k");
  // V (raw): amax 3 and 0.5 by construction; token 1 head 0 below the floor, head 1 zero.
  expect_scales_exactly(e.l.v_scale, {{0, 0, 3.0f / 448.0f}, {0, 1, 0.5f / 448.0f},
                                      {1, 0, floor_scale}, {1, 1, floor_scale},
                                      {2, 0, 0.5f / 448.0f}, {2, 1, 3.0f / 448.0f}},
                        "v");
  // Codes, x = 16 for fp8. K token 0 head 0 (block 1, offset 1): 1.25/scale = 448 -> 0x7E (max);
  // -0.25/scale = -89.6 -> -88 = 0xEB. V token 0 head 0: 3 -> 448 (0x7E), 1.5 -> 224 (0x76),
  // -0.75 -> -112 (0xEE), -3 -> 0xFE. V token 1 head 0 (block 0, offset 2), below the floor:
  // 2^-30 / (1e-8/448) = 41.7 -> 40 (0x62), negated 0xE2. Zero heads code 0.
  const auto* kc = reinterpret_cast<const uint8_t*>(e.l.k_cache.data());
  const auto* vc = reinterpret_cast<const uint8_t*>(e.l.v_cache.data());
  for (int64_t d = 0; d < kD; ++d) {
    SCOPED_TRACE(::testing::Message() << "dim " << d << "; " << testing::repro_line());
    EXPECT_EQ(kc[k_offset(1, 0, 1, d, 16)], d < kD / 2 ? 0x7E : 0xEB) << "K token 0 head 0";
    EXPECT_EQ(kc[k_offset(1, 1, 1, d, 16)], 0x00) << "K token 0 head 1 (zero head)";
    const uint8_t v_amax3 = d == 5 ? 0x7E : d == 9 ? 0xFE : d % 2 == 0 ? 0x76 : 0xEE;
    EXPECT_EQ(vc[v_shuffle_offset_here(1, 0, 1, d, 16)], v_amax3) << "V token 0 head 0";
    EXPECT_EQ(vc[v_shuffle_offset_here(0, 0, 2, d, 16)], d % 3 == 0 ? 0xE2 : 0x62)
        << "V token 1 head 0 (amax below the floor)";
    EXPECT_EQ(vc[v_shuffle_offset_here(0, 1, 2, d, 16)], 0x00) << "V token 1 head 1 (zero head)";
  }
}

TEST(EdgeKnownAnswerFp8, ZeroHeadWithoutTheFloorGivesNanCodes) {
  // March 2026 aiter (no floor): amax 0 -> scale 0 -> 0/0 = NaN; e4m3fn's NaN codes are 0x7F/0xFF.
  EdgeLayer e = make_edge_layer(KvCacheDtype::kFp8E4M3FN, kD, true, /*amax_floor=*/false);
  CpuFusedQkNormRopeCache fused;
  fused.run(e.l.fused_args());
  const auto* vc = reinterpret_cast<const uint8_t*>(e.l.v_cache.data());
  const auto* kc = reinterpret_cast<const uint8_t*>(e.l.k_cache.data());
  for (int64_t d = 0; d < kD; ++d) {
    EXPECT_EQ(vc[v_shuffle_offset_here(0, 1, 2, d, 16)] & 0x7F, 0x7F)
        << "V token 1 head 1 (zero head), dim " << d << "; " << testing::repro_line();
    EXPECT_EQ(kc[k_offset(1, 1, 1, d, 16)] & 0x7F, 0x7F)
        << "K token 0 head 1 (zero head), dim " << d << "; " << testing::repro_line();
    // Below the missing floor the scale is 2^-30/448 and the head's amax maps to 448 again.
    const uint8_t below = vc[v_shuffle_offset_here(0, 0, 2, d, 16)];
    EXPECT_EQ(below, d % 3 == 0 ? 0xFE : 0x7E)
        << "V token 1 head 0 without the floor, dim " << d << "; " << testing::repro_line();
  }
  float scale = 0;
  std::memcpy(&scale, e.l.v_scale.data() + 4 * scale_index(0, 0, 2), sizeof scale);
  EXPECT_EQ(scale, 0x1p-30f / 448.0f) << "V token 1 head 0: 2^-30 / 448";
}

}  // namespace
}  // namespace rcsim::cpu
