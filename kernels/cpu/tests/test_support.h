// Shared harness of the CPU kernel tests: one seed (env RCSIM_SEED, printed with a repro line),
// random non-zero inputs through rcsim::Prng, sentinel-filled outputs, a layer's worth of host
// tensors (qkv, weights, cos/sin table, positions, slots, caches, scales) and comparisons that
// name the first bad (token, head, dim).
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <utility>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "core/attention_config.h"
#include "core/kernel_interfaces.h"
#include "core/prng.h"
#include "core/rope_table.h"
#include "core/tensor.h"
#include "kernels/cpu/nonfused_reference.h"
#include "test_support/compare.h"
#include "test_support/fixtures.h"
#include "test_support/random_fill.h"
#include "test_support/seed.h"

namespace rcsim::cpu::testing {

inline constexpr uint8_t kCacheSentinel = 0xA5;
inline constexpr uint8_t kScaleSentinel = 0x5A;

// The run's seed: RCSIM_SEED if set, else a fixed default. Printed once per binary.
inline uint64_t test_seed() {
  static const uint64_t seed = test_support::seed_from_env(20260327ull);
  return seed;
}
// One line a failure message carries so the case can be replayed.
inline std::string repro_line() { return test_support::repro_line(test_seed()); }

inline uint16_t act_bits(float v, DType t) { return float_to_activation(v, t); }

// Fills an activation tensor with non-zero values of magnitude in [lo, hi).
inline void fill_nonzero(HostTensor& t, Prng& rng, float lo, float hi) {
  test_support::fill_nonzero_activation(t, rng, lo, hi);
}

// cos/sin table [max_pos, rot] like aiter's get_rope: inv_freq[j] = 1/theta^(2j/rot) in fp32,
// angle = p * inv_freq[j] in fp32, cos/sin evaluated in double and rounded to the act dtype.
inline HostTensor make_cos_sin(int64_t max_pos, int64_t rot, DType act, double theta) {
  return build_cos_sin_table(max_pos, rot, act, theta, RopeTableMath::kFp32AngleFp64Trig);
}

// Everything one rope_cache call needs, owned on the host.
struct Layer {
  AttentionConfig cfg;
  int64_t tokens = 0;
  HostTensor qkv, q_weight, k_weight, cos_sin, positions, slots;
  HostTensor k_cache, v_cache, k_scale, v_scale;

  KvCacheViews cache() const {
    KvCacheViews c;
    c.k_cache = k_cache.view();
    c.v_cache = v_cache.view();
    if (!k_scale.empty()) c.k_scale = k_scale.view();
    if (!v_scale.empty()) c.v_scale = v_scale.view();
    return c;
  }
  QkvViews qkv_views() const {
    return split_qkv(qkv.view(), cfg.num_heads_q, cfg.num_heads_kv, cfg.head_dim);
  }
  FusedQkNormRopeCacheArgs fused_args() const {
    FusedQkNormRopeCacheArgs a;
    a.cfg = cfg;
    a.qkv = qkv.view();
    a.q_weight = q_weight.view();
    a.k_weight = k_weight.view();
    a.cos_sin_cache = cos_sin.view();
    a.positions = positions.view();
    a.slot_mapping = slots.view();
    a.cache = cache();
    return a;
  }
  NonFusedArgs nonfused_args() const {
    const QkvViews v = qkv_views();
    NonFusedArgs a;
    a.cfg = cfg;
    a.q = v.q;
    a.k = v.k;
    a.v = v.v;
    a.q_weight = q_weight.view();
    a.k_weight = k_weight.view();
    a.cos_sin_cache = cos_sin.view();
    a.positions = positions.view();
    a.slot_mapping = slots.view();
    a.cache = cache();
    a.v_layout = VCacheLayout::kShuffle;
    return a;
  }
  void reset_caches() {
    k_cache.fill_pattern(kCacheSentinel);
    v_cache.fill_pattern(kCacheSentinel);
    if (!k_scale.empty()) k_scale.fill_pattern(kScaleSentinel);
    if (!v_scale.empty()) v_scale.fill_pattern(kScaleSentinel);
  }
};

enum class WeightSymmetry : uint8_t { kNone, kPairSymmetric };

struct LayerOptions {
  int64_t tokens = 8;
  int64_t padded_one_in = 4;  // each token is padding (-1) with probability 1/padded_one_in
  WeightSymmetry weights = WeightSymmetry::kNone;
  double theta = 1e6;
  bool plain_v = false;  // v_cache as [NB, H, D, BS] (for plain-layout kernels)
};

// A layer with random non-zero qkv in +-[0.05, 4), weights ~ 1 +- 0.25 (non-zero), a real
// cos/sin table, random positions, distinct random slots with some padding, sentinel caches.
inline Layer make_layer(const AttentionConfig& cfg, Prng& rng, const LayerOptions& opt = {}) {
  validate_attention_config(cfg);
  Layer l;
  l.cfg = cfg;
  l.tokens = opt.tokens;
  const int64_t T = opt.tokens, D = cfg.head_dim;
  l.qkv = HostTensor(cfg.act_dtype, {T, cfg.qkv_width()});
  fill_nonzero(l.qkv, rng, 0.05f, 4.0f);
  l.q_weight = HostTensor(cfg.act_dtype, {D});
  l.k_weight = HostTensor(cfg.act_dtype, {D});
  for (HostTensor* w : {&l.q_weight, &l.k_weight}) {
    auto b = w->as<uint16_t>();
    for (int64_t d = 0; d < D; ++d) {
      const float v = 1.0f + 0.25f * (2.0f * rng.unit_float() - 1.0f);
      b[static_cast<std::size_t>(d)] = act_bits(v, cfg.act_dtype);
    }
    if (opt.weights == WeightSymmetry::kPairSymmetric) {
      for (int64_t d = 0; d < cfg.rotary_dim; ++d) {
        const int64_t partner = cfg.is_neox ? (d < cfg.rotary_dim / 2 ? d + cfg.rotary_dim / 2 : -1)
                                            : (d % 2 == 0 ? d + 1 : -1);
        if (partner >= 0) b[static_cast<std::size_t>(partner)] = b[static_cast<std::size_t>(d)];
      }
    }
  }
  l.cos_sin = make_cos_sin(cfg.max_position, cfg.rotary_dim, cfg.act_dtype, opt.theta);
  l.positions = HostTensor(DType::kI64, {T});
  l.slots = HostTensor(DType::kI64, {T});
  // Distinct slots: a partial Fisher-Yates draw over all slots.
  std::vector<int64_t> all(static_cast<std::size_t>(cfg.num_slots()));
  for (std::size_t i = 0; i < all.size(); ++i) all[i] = static_cast<int64_t>(i);
  RCSIM_ASSERT(T <= cfg.num_slots(), "more tokens than slots");
  for (int64_t t = 0; t < T; ++t) {
    const auto i = static_cast<std::size_t>(t);
    const auto j = i + static_cast<std::size_t>(rng.below(all.size() - i));
    std::swap(all[i], all[j]);
    l.positions.as<int64_t>()[i] = rng.range(0, cfg.max_position - 1);
    const bool padded = opt.padded_one_in > 0 && rng.chance(1, static_cast<uint64_t>(opt.padded_one_in));
    l.slots.as<int64_t>()[i] = padded ? -1 : all[i];
  }
  const layout::PagedCacheShape s = cfg.cache_shape();
  const DType cdt = cfg.cache_storage_dtype();
  l.k_cache = HostTensor(cdt, {s.num_blocks, s.num_heads_kv, D / s.x, s.block_size, s.x});
  l.v_cache = opt.plain_v
                  ? HostTensor(cdt, {s.num_blocks, s.num_heads_kv, D, s.block_size})
                  : HostTensor(cdt, {s.num_blocks, s.num_heads_kv, s.block_size / s.x, D, s.x});
  if (is_fp8(cfg.kv_cache_dtype)) {
    l.k_scale = HostTensor(DType::kFP32, {s.num_blocks, s.num_heads_kv, s.block_size});
    l.v_scale = HostTensor(DType::kFP32, {s.num_blocks, s.num_heads_kv, s.block_size});
  }
  l.reset_caches();
  return l;
}

using test_support::first_head_mismatch;

// First differing byte of two tensors' storage, or nullopt.
inline std::optional<int64_t> first_byte_mismatch(const HostTensor& a, const HostTensor& b) {
  RCSIM_ASSERT(a.bytes() == b.bytes(), "size mismatch");
  const int64_t i = test_support::first_byte_difference(a, b);
  return i < 0 ? std::nullopt : std::optional<int64_t>(i);
}

}  // namespace rcsim::cpu::testing
