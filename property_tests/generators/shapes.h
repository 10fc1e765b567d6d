// The shape and configuration tables the property generators draw from. Every number here is
// either a model's real configuration (semantics.md section 4), a point of an upstream test grid
// (AITER op test 2.5, vLLM 3.4) or a boundary (T = 1, a page edge, Hkv = 1 / 32, GQA ratio 1).
// Tables are ordered small to large on purpose: RapidCheck's element generators shrink towards
// the first entry, so a counterexample shrinks towards the smallest shape that still fails.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

#include "core/limits.h"

namespace rcsim::props {

struct HeadShape {
  std::string_view family;  // printed and tagged: which model / grid point this is
  int64_t num_heads_q;
  int64_t num_heads_kv;
};

// Per-rank head counts. TP splits follow ATOM: Hq/tp, Hkv = max(1, Hkv_total/tp).
inline constexpr std::array<HeadShape, 13> kHeadShapes = {{
    {"boundary-1/1", 1, 1},           // the smallest legal shape, GQA ratio 1, Hkv = 1
    {"boundary-2/1", 2, 1},           // smallest real GQA group
    {"aiter-4/1", 4, 1},              // AITER grid (4, 1)
    {"qwen3-235b-tp8", 8, 1},         // 64/4 over 8 ranks: replicated KV head
    {"qwen3-8b-tp4", 8, 2},           // 32/8 over 4 ranks
    {"qwen3-0.6b-tp2", 8, 4},         // 16/8 over 2 ranks
    {"boundary-gqa1-8/8", 8, 8},      // GQA ratio 1 (MHA)
    {"qwen3-0.6b", 16, 8},            // Qwen3-0.6B
    {"qwen3-8b", 32, 8},              // Qwen3-8B
    {"aiter-32/4", 32, 4},            // AITER grid (32, 4)
    {"boundary-hkv32", 32, 32},       // the fused kernel's Hkv ceiling, GQA ratio 1
    {"qwen3-32b/aiter-64/8", 64, 8},  // Qwen3-32B and AITER grid (64, 8)
    {"qwen3-235b", 64, 4},            // Qwen3-235B-A22B, unsplit
}};

// Head dims the fused kernel supports (limits::kHeadDimsSupported), small first.
inline constexpr std::array<int64_t, 3> kHeadDims = {64, 128, 256};
// vLLM's rotary ratios as (numerator, denominator) of the head dim: 1, 1/2, 1/4.
inline constexpr std::array<int64_t, 3> kRotaryDivisors = {1, 2, 4};
// AITER op-test token counts; the CI budget caps them (prop_harness.h: tokens_max).
inline constexpr std::array<int64_t, 6> kAiterGridTokens = {3, 127, 513, 778, 1024, 1257};
inline constexpr std::array<int64_t, 3> kBlockSizes = limits::kBlockSizesSupported;
// Rows of the cos/sin table: the AITER op test's 10000 is the usual; Qwen3's 40960 is rare (the
// table costs time to build). Small tables make position boundaries likely.
inline constexpr std::array<int64_t, 4> kMaxPositions = {64, 4096, 10000, 40960};
inline constexpr double kRopeTheta = 1.0e6;  // Qwen3 rope_theta

}  // namespace rcsim::props
