// Test support for the fault-decorator tests: one small layer's tensors (random, non-zero inputs
// from rcsim::Prng; caches, scales and outputs sentinel-filled), the argument structs of every
// kernel pointing at them, and the tests' own model of which elements each work unit writes.
// That model is written independently of the decorators' footprints (checkers live apart from
// injectors) and is itself checked: a full run must change exactly the union of all units.
#pragma once

#include <array>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "core/kernel_interfaces.h"
#include "core/prng.h"
#include "core/tensor.h"
#include "kernels/common/cache_layout.h"
#include "test_support/fixtures.h"
#include "test_support/random_fill.h"
#include "test_support/seed.h"

namespace rcsim::fault_testing {

inline uint64_t test_seed() {
  static const uint64_t seed = test_support::seed_from_env(0xFA0175u);
  return seed;
}

inline constexpr uint8_t kCacheSentinel = 0xA5;
inline constexpr uint8_t kScaleSentinel = 0x7B;
inline constexpr uint8_t kOutSentinel = 0x5A;

enum class Which : uint8_t { kFused, kRopeCache, kRotary, kNorm, kCache, kPerToken };
inline std::string which_name(Which w) {
  static const char* names[] = {"fused", "rope_cache", "rotary", "rms_norm", "reshape_and_cache",
                                "per_token_quant_cache"};
  return names[static_cast<int>(w)];
}

// Output buffers, in this order everywhere.
enum Buf : int { kQkv, kKCache, kVCache, kKScale, kVScale, kNormOut, kBufCount };
inline const char* buf_name(int b) {
  static const char* names[] = {"qkv", "k_cache", "v_cache", "k_scale", "v_scale", "norm_out"};
  return names[b];
}

// An element of an output buffer.
struct Loc {
  int buf;
  int64_t elem;
};

inline AttentionConfig small_config(KvCacheDtype kv = KvCacheDtype::kAuto) {
  return test_support::small_config(
      {.head_dim = 64, .kv = kv, .num_blocks = 2, .max_position = 32});
}

struct Layer {
  AttentionConfig cfg;
  int64_t tokens;
  HostTensor qkv, q_weight, k_weight, cos_sin, positions, slots;
  std::array<HostTensor, kBufCount> out;  // out[kQkv] unused (qkv is the buffer)

  // v_cache_4d: the 4-D [NB, H, D, BS] label over shuffle memory that ATOM passes (the
  // dispatcher's prevalidation requires it); otherwise the 5-D shuffle view. Same bytes either way.
  Layer(const AttentionConfig& c, int64_t num_tokens, uint64_t stream, bool v_cache_4d = false)
      : cfg(c), tokens(num_tokens) {
    Prng rng = Prng::stream(test_seed(), "fault-layer", stream);
    const int64_t d = c.head_dim;
    qkv = HostTensor(c.act_dtype, {tokens, c.qkv_width()});
    test_support::fill_nonzero_activation(qkv, rng, 0.25f, 2.0f);
    q_weight = HostTensor(c.act_dtype, {d});
    k_weight = HostTensor(c.act_dtype, {d});
    test_support::fill_nonzero_activation(q_weight, rng, 0.5f, 1.5f);
    test_support::fill_nonzero_activation(k_weight, rng, 0.5f, 1.5f);
    cos_sin = HostTensor(c.act_dtype, {c.max_position, c.rotary_dim});
    test_support::fill_nonzero_activation(cos_sin, rng, 0.1f, 1.0f);
    positions = HostTensor(DType::kI64, {tokens});
    for (int64_t& p : positions.as<int64_t>()) p = rng.range(0, c.max_position - 1);
    // Distinct slots drawn without replacement; token 1 is padding (-1) mid-batch.
    slots = HostTensor(DType::kI64, {tokens});
    std::vector<int64_t> free_slots;
    for (int64_t s = 0; s < c.num_slots(); ++s) free_slots.push_back(s);
    for (int64_t t = 0; t < tokens; ++t) {
      const auto pick = static_cast<std::size_t>(rng.below(free_slots.size()));
      slots.as<int64_t>()[static_cast<std::size_t>(t)] = t == 1 ? -1 : free_slots[pick];
      free_slots.erase(free_slots.begin() + static_cast<std::ptrdiff_t>(pick));
    }
    const DType cd = c.cache_storage_dtype();
    const int64_t x = c.x();
    out[kKCache] = HostTensor(cd, {c.num_blocks, c.num_heads_kv, d / x, c.block_size, x});
    out[kVCache] = v_cache_4d ? HostTensor(cd, {c.num_blocks, c.num_heads_kv, d, c.block_size})
                              : HostTensor(cd, {c.num_blocks, c.num_heads_kv, c.block_size / x, d, x});
    out[kKCache].fill_pattern(kCacheSentinel);
    out[kVCache].fill_pattern(kCacheSentinel);
    if (is_fp8(c.kv_cache_dtype)) {
      out[kKScale] = HostTensor(DType::kFP32, {c.num_blocks, c.num_heads_kv, c.block_size});
      out[kVScale] = HostTensor(DType::kFP32, {c.num_blocks, c.num_heads_kv, c.block_size});
      out[kKScale].fill_pattern(kScaleSentinel);
      out[kVScale].fill_pattern(kScaleSentinel);
    }
    out[kNormOut] = HostTensor(c.act_dtype, {tokens, c.num_heads_q, d});
    out[kNormOut].fill_pattern(kOutSentinel);
  }

  const HostTensor& buffer(int b) const { return b == kQkv ? qkv : out[static_cast<std::size_t>(b)]; }
  std::array<HostTensor, kBufCount> snapshot() const {
    std::array<HostTensor, kBufCount> s;
    for (int b = 0; b < kBufCount; ++b) s[static_cast<std::size_t>(b)] = buffer(b);
    return s;
  }
  QkvViews views() const { return split_qkv(qkv.view(), cfg.num_heads_q, cfg.num_heads_kv, cfg.head_dim); }
  KvCacheViews cache() const {
    KvCacheViews c;
    c.k_cache = out[kKCache].view();
    c.v_cache = out[kVCache].view();
    if (!out[kKScale].empty()) {
      c.k_scale = out[kKScale].view();
      c.v_scale = out[kVScale].view();
    }
    return c;
  }
  int64_t slot(int64_t t) const { return slots.as<int64_t>()[static_cast<std::size_t>(t)]; }

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
  RopeReshapeCacheArgs rope_cache_args() const {
    RopeReshapeCacheArgs a;
    a.cfg = cfg;
    const QkvViews v = views();
    a.q = v.q;
    a.k = v.k;
    a.v = v.v;
    a.cos_sin_cache = cos_sin.view();
    a.positions = positions.view();
    a.slot_mapping = slots.view();
    a.cache = cache();
    a.cache.k_scale = {};
    a.cache.v_scale = {};
    a.v_layout = VCacheLayout::kShuffle;
    return a;
  }
  RotaryArgs rotary_args() const {
    RotaryArgs a;
    const QkvViews v = views();
    a.q = v.q;
    a.k = v.k;
    a.positions = positions.view();
    a.cos_sin_cache = cos_sin.view();
    a.rotary_dim = cfg.rotary_dim;
    a.is_neox = cfg.is_neox;
    return a;
  }
  RmsNormArgs norm_args() const {
    RmsNormArgs a;
    a.input = views().q;
    a.output = out[kNormOut].view();
    a.weight = q_weight.view();
    a.eps = cfg.eps;
    return a;
  }
  ReshapeAndCacheArgs cache_args() const {
    ReshapeAndCacheArgs a;
    a.cfg = cfg;
    const QkvViews v = views();
    a.key = v.k;
    a.value = v.v;
    a.slot_mapping = slots.view();
    a.cache = cache();
    a.cache.k_scale = {};
    a.cache.v_scale = {};
    a.v_layout = VCacheLayout::kShuffle;
    return a;
  }
  PerTokenQuantCacheArgs per_token_args() const {
    PerTokenQuantCacheArgs a;
    a.cfg = cfg;
    const QkvViews v = views();
    a.key = v.k;
    a.value = v.v;
    a.slot_mapping = slots.view();
    a.cache = cache();
    a.v_layout = VCacheLayout::kShuffle;
    return a;
  }

  KernelRun run(Which w, const KernelSet& ks, WorkLimit limit = {}) const {
    switch (w) {
      case Which::kFused: { auto a = fused_args(); a.limit = limit; return ks.fused->run(a); }
      case Which::kRopeCache: { auto a = rope_cache_args(); a.limit = limit; return ks.rope_reshape_cache->run(a); }
      case Which::kRotary: { auto a = rotary_args(); a.limit = limit; return ks.rotary->run(a); }
      case Which::kNorm: { auto a = norm_args(); a.limit = limit; return ks.rms_norm->run(a); }
      case Which::kCache: { auto a = cache_args(); a.limit = limit; return ks.reshape_and_cache->run(a); }
      case Which::kPerToken: { auto a = per_token_args(); a.limit = limit; return ks.per_token_quant_cache->run(a); }
    }
    return {};
  }

  // ---- The tests' model of unit footprints ---------------------------------------------------
  void head_slice(std::vector<Loc>& out_locs, int64_t t, int64_t head, int64_t dims) const {
    for (int64_t d = 0; d < dims; ++d) out_locs.push_back({kQkv, t * cfg.qkv_width() + head * cfg.head_dim + d});
  }
  void k_slot(std::vector<Loc>& o, int64_t slot, int64_t h, bool scale) const {
    const layout::PagedCacheShape s = cfg.cache_shape();
    const int64_t b = slot / s.block_size, tok = slot % s.block_size;
    for (int64_t d = 0; d < s.head_dim; ++d) o.push_back({kKCache, layout::k_xpacked_offset(s, b, h, tok, d)});
    if (scale) o.push_back({kKScale, layout::scale_offset(s, b, h, tok)});
  }
  void v_slot(std::vector<Loc>& o, int64_t slot, int64_t h, bool scale) const {
    const layout::PagedCacheShape s = cfg.cache_shape();
    const int64_t b = slot / s.block_size, tok = slot % s.block_size;
    for (int64_t d = 0; d < s.head_dim; ++d) o.push_back({kVCache, layout::v_shuffle_offset(s, b, h, tok, d)});
    if (scale) o.push_back({kVScale, layout::scale_offset(s, b, h, tok)});
  }

  // Elements unit g of kernel w writes when it runs (`payload` = false), or may be hit by a
  // garbage/nan payload (`payload` = true: adds the fused kernel's V head slices of qkv).
  std::vector<Loc> unit_locs(Which w, int64_t g, bool payload) const {
    std::vector<Loc> o;
    const int64_t hq = cfg.num_heads_q, hkv = cfg.num_heads_kv;
    const bool fp8 = is_fp8(cfg.kv_cache_dtype);
    switch (w) {
      case Which::kFused: {
        const int64_t t = g / (hq + 2 * hkv), h = g % (hq + 2 * hkv);
        if (h < hq + hkv || payload) head_slice(o, t, h, cfg.head_dim);
        if (h >= hq && slot(t) >= 0) {
          if (h < hq + hkv) k_slot(o, slot(t), h - hq, fp8);
          else v_slot(o, slot(t), h - hq - hkv, fp8);
        }
        break;
      }
      case Which::kRopeCache: {
        const int64_t t = g / hq, h = g % hq, group = hq / hkv;
        head_slice(o, t, h, cfg.head_dim);
        if (h % group == 0) {
          head_slice(o, t, hq + h / group, cfg.head_dim);
          if (slot(t) >= 0) {
            k_slot(o, slot(t), h / group, false);
            v_slot(o, slot(t), h / group, false);
          }
        }
        break;
      }
      case Which::kRotary: {
        if (g < tokens * hq) head_slice(o, g / hq, g % hq, cfg.rotary_dim);
        else head_slice(o, (g - tokens * hq) / hkv, hq + (g - tokens * hq) % hkv, cfg.rotary_dim);
        break;
      }
      case Which::kNorm: {
        for (int64_t d = 0; d < cfg.head_dim; ++d) o.push_back({kNormOut, g * cfg.head_dim + d});
        break;
      }
      case Which::kCache: {
        if (slot(g) >= 0) {
          for (int64_t h = 0; h < hkv; ++h) {
            k_slot(o, slot(g), h, false);
            v_slot(o, slot(g), h, false);
          }
        }
        break;
      }
      case Which::kPerToken: {
        if (slot(g / hkv) >= 0) {
          k_slot(o, slot(g / hkv), g % hkv, true);
          v_slot(o, slot(g / hkv), g % hkv, true);
        }
        break;
      }
    }
    return o;
  }
};

using Snapshot = std::array<HostTensor, kBufCount>;

inline int64_t elem_bytes(const HostTensor& t) { return dtype_size_bytes(t.dtype()); }
inline bool elem_equal(const HostTensor& a, const HostTensor& b, int64_t e) {
  const int64_t n = elem_bytes(a);
  return std::memcmp(a.data() + e * n, b.data() + e * n, static_cast<std::size_t>(n)) == 0;
}
inline void copy_elem(const HostTensor& from, HostTensor& to, int64_t e) {
  const int64_t n = elem_bytes(from);
  std::memcpy(to.data() + e * n, from.data() + e * n, static_cast<std::size_t>(n));
}

// "" if a and b are byte-identical in every buffer, else the first differing (buffer, element).
inline std::string first_difference(const Snapshot& expected, const Snapshot& actual) {
  for (int b = 0; b < kBufCount; ++b) {
    const HostTensor& e = expected[static_cast<std::size_t>(b)];
    const HostTensor& a = actual[static_cast<std::size_t>(b)];
    for (int64_t i = 0; i < e.numel(); ++i) {
      if (!elem_equal(e, a, i)) return fmt::format("{} element {}", buf_name(b), i);
    }
  }
  return "";
}

// before + the bytes `full` has at the footprints of units [0, k).
inline Snapshot expected_after_units(const Layer& layer, Which w, const Snapshot& before,
                                     const Snapshot& full, int64_t k) {
  Snapshot expected = before;
  for (int64_t g = 0; g < k; ++g) {
    for (const Loc& l : layer.unit_locs(w, g, false)) {
      copy_elem(full[static_cast<std::size_t>(l.buf)], expected[static_cast<std::size_t>(l.buf)], l.elem);
    }
  }
  return expected;
}

}  // namespace rcsim::fault_testing
