// Shared test fixture for the dispatcher tests: one small layer's worth of host tensors, random
// and non-zero (rcsim::Prng), caches and scales sentinel-filled, and the RopeCacheInputs that
// point at them. Also the mock behaviours the tests compose: a fused kernel that scribbles over
// what it may write (a torn in-place write) and then throws.
#pragma once

#include <cstdint>
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "core/dispatch/rope_cache_dispatcher.h"
#include "core/prng.h"
#include "core/tensor.h"
#include "test_support/compare.h"
#include "test_support/fixtures.h"
#include "test_support/random_fill.h"
#include "test_support/seed.h"

namespace rcsim::testing {

// Every test prints its seed; the environment variable RCSIM_SEED replays one.
inline uint64_t test_seed() {
  static const uint64_t seed = test_support::seed_from_env(0x5EED0003ull);
  return seed;
}

inline constexpr uint8_t kCacheSentinel = 0xA5;
inline constexpr uint8_t kScaleSentinel = 0x7B;

// head_dim 128 keeps use_triton_attn false; 64 makes it true.
inline AttentionConfig small_config(int64_t head_dim = 128, KvCacheDtype kv = KvCacheDtype::kAuto) {
  return test_support::small_config(
      {.head_dim = head_dim, .kv = kv, .num_blocks = 3, .max_position = 64});
}

struct LayerTensors {
  AttentionConfig cfg;
  int64_t tokens = 5;
  HostTensor qkv, positions, slot_mapping, cos_sin, q_weight, k_weight;
  HostTensor k_cache, v_cache, k_scale, v_scale;

  LayerTensors(const AttentionConfig& c, uint64_t stream_index, int64_t num_tokens = 5)
      : cfg(c), tokens(num_tokens) {
    Prng rng = Prng::stream(test_seed(), "layer-tensors", stream_index);
    const int64_t d = c.head_dim;
    qkv = HostTensor(c.act_dtype, {tokens, c.qkv_width()});
    test_support::fill_nonzero_activation(qkv, rng, 0.25f, 2.0f);
    positions = HostTensor(DType::kI64, {tokens});
    for (int64_t& p : positions.as<int64_t>()) p = rng.range(0, c.max_position - 1);
    // Distinct slots, the last token padding (-1), as CUDA-graph filler.
    slot_mapping = HostTensor(DType::kI64, {tokens});
    std::vector<int64_t> slots;
    for (int64_t s = 0; s < c.num_slots(); ++s) slots.push_back(s);
    for (int64_t i = 0; i < tokens; ++i) {
      const auto j = static_cast<std::size_t>(i) +
                     rng.below(static_cast<uint64_t>(slots.size()) - static_cast<uint64_t>(i));
      std::swap(slots[static_cast<std::size_t>(i)], slots[j]);
      slot_mapping.as<int64_t>()[static_cast<std::size_t>(i)] =
          i == tokens - 1 ? -1 : slots[static_cast<std::size_t>(i)];
    }
    cos_sin = HostTensor(c.act_dtype, {c.max_position, c.rotary_dim});
    test_support::fill_nonzero_activation(cos_sin, rng, 0.1f, 1.0f);
    q_weight = HostTensor(c.act_dtype, {d});
    k_weight = HostTensor(c.act_dtype, {d});
    test_support::fill_nonzero_activation(q_weight, rng, 0.5f, 1.5f);
    test_support::fill_nonzero_activation(k_weight, rng, 0.5f, 1.5f);
    const DType cd = c.cache_storage_dtype();
    const int64_t x = c.x();
    k_cache = HostTensor(cd, {c.num_blocks, c.num_heads_kv, d / x, c.block_size, x});
    v_cache = HostTensor(cd, {c.num_blocks, c.num_heads_kv, d, c.block_size});
    k_cache.fill_pattern(kCacheSentinel);
    v_cache.fill_pattern(kCacheSentinel);
    if (is_fp8(c.kv_cache_dtype)) {
      k_scale = HostTensor(DType::kFP32, {c.num_blocks, c.num_heads_kv, c.block_size});
      v_scale = HostTensor(DType::kFP32, {c.num_blocks, c.num_heads_kv, c.block_size});
      k_scale.fill_pattern(kScaleSentinel);
      v_scale.fill_pattern(kScaleSentinel);
    }
  }

  RopeCacheInputs inputs(bool with_qkv = true) const {
    RopeCacheInputs in;
    if (with_qkv) {
      in.qkv = qkv.view();
    } else {
      // ATOM without the fusion flag: q/k/v still alias one buffer, qkv itself is not passed.
      const QkvViews v = split_qkv(qkv.view(), cfg.num_heads_q, cfg.num_heads_kv, cfg.head_dim);
      in.q = v.q;
      in.k = v.k;
      in.v = v.v;
    }
    in.positions = positions.view();
    in.slot_mapping = slot_mapping.view();
    in.cos_sin_cache = cos_sin.view();
    in.q_weight = q_weight.view();
    in.k_weight = k_weight.view();
    in.cache.k_cache = k_cache.view();
    in.cache.v_cache = v_cache.view();
    if (!k_scale.empty()) {
      in.cache.k_scale = k_scale.view();
      in.cache.v_scale = v_scale.view();
    }
    return in;
  }
};

using test_support::first_byte_difference;
using test_support::qkv_difference;

// Writes a recognisable pattern over rows [0, rows) of a [T, H, D] or [T, W] view (a torn write).
inline void scribble(const TensorView& v, uint16_t pattern) {
  const int64_t t = v.size(0);
  const int64_t inner = v.numel() / t;
  for (int64_t i = 0; i < t; ++i) {
    for (int64_t j = 0; j < inner; ++j) {
      int64_t off = i * v.stride(0);
      if (v.rank == 3) {
        off += (j / v.size(2)) * v.stride(1) + (j % v.size(2)) * v.stride(2);
      } else {
        off += j * v.stride(1);
      }
      v.data_as<uint16_t>()[off] = static_cast<uint16_t>(pattern + j);
    }
  }
}

}  // namespace rcsim::testing
