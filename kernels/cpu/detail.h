// Internal helpers of the CPU reference kernels: the backend's rules for the shared argument checks
// (core/kernel_arg_checks.h: every check throws InvalidInput naming the argument, before any
// write) and scalar element access through views.
// Not part of the backend's public API.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>

#include "core/attention_config.h"
#include "core/check.h"
#include "core/kernel_arg_checks.h"
#include "core/kernel_interfaces.h"
#include "core/limits.h"
#include "core/tensor.h"
#include "kernels/common/cache_layout.h"

namespace rcsim::cpu::detail {

// One head's worth of fp32 values (D <= 256).
using HeadValues = std::array<float, limits::kHeadDimMax>;
using HeadBits = std::array<uint16_t, limits::kHeadDimMax>;

// ---- validation -----------------------------------------------------------------------------
// The CPU backend's rules for the shared argument checks (core/kernel_arg_checks.h): host views,
// index views read in place, any non-negative strides.
const kernel_args::BackendRules& host_rules();

// ---- element access -------------------------------------------------------------------------
inline int64_t units_to_run(const WorkLimit& limit, int64_t total) {
  return limit.unlimited() || limit.max_units > total ? total : limit.max_units;
}
inline int64_t offset3(const TensorView& v, int64_t i0, int64_t i1, int64_t i2) {
  return i0 * v.strides[0] + i1 * v.strides[1] + i2 * v.strides[2];
}
inline uint16_t load_bits16(const TensorView& v, int64_t elem) {
  uint16_t b;
  std::memcpy(&b, v.data() + elem * 2, sizeof b);
  return b;
}
inline void store_bits16(const TensorView& v, int64_t elem, uint16_t b) {
  std::memcpy(v.data() + elem * 2, &b, sizeof b);
}
inline int64_t load_i64(const TensorView& v, int64_t i) {
  int64_t x;
  std::memcpy(&x, v.data() + i * v.strides[0] * 8, sizeof x);
  return x;
}
inline float load_f32(const TensorView& v, int64_t elem) {
  float x;
  std::memcpy(&x, v.data() + elem * 4, sizeof x);
  return x;
}
inline void store_f32(const TensorView& v, int64_t elem, float x) {
  std::memcpy(v.data() + elem * 4, &x, sizeof x);
}
inline void store_u8(const TensorView& v, int64_t elem, uint8_t b) {
  std::memcpy(v.data() + elem, &b, sizeof b);
}

// Loads head (i0, i1) of a [T, H, D] activation view: bits and their fp32 values.
void load_head(const TensorView& v, int64_t token, int64_t head, int64_t head_dim, HeadBits& bits,
               HeadValues& values);
void store_head(const TensorView& v, int64_t token, int64_t head, int64_t head_dim,
                const HeadBits& bits);

// Reads the cos and sin halves of row `position` as fp32 (rotary_dim/2 each).
void load_cos_sin_row(const TensorView& cos_sin, int64_t position, int64_t rotary_dim,
                      HeadValues& cos_row, HeadValues& sin_row);

// Destination of one (slot, head) in the paged caches.
struct CacheSite {
  int64_t block;
  int64_t token_in_block;
  int64_t head;
};
inline CacheSite cache_site(const AttentionConfig& cfg, int64_t slot, int64_t head) {
  return {slot / cfg.block_size, slot % cfg.block_size, head};
}
// Element offset of dim d of `site` in the K cache (x-packed) and in the V cache of `v_layout`.
int64_t k_cache_offset(const AttentionConfig& cfg, const CacheSite& site, int64_t d);
int64_t v_cache_offset(const AttentionConfig& cfg, VCacheLayout v_layout, const CacheSite& site,
                       int64_t d);
int64_t scale_offset(const AttentionConfig& cfg, const CacheSite& site);

// Which of the two caches a head goes to.
enum class CacheSide : uint8_t { kKey, kValue };
using HeadCodes = std::array<uint8_t, limits::kHeadDimMax>;
// Stores one head, dims in order 0..D-1: activation bits ("auto") or fp8 codes.
void store_head_bits(const AttentionConfig& cfg, const KvCacheViews& cache, VCacheLayout v_layout,
                     CacheSide side, const CacheSite& site, const HeadBits& bits);
void store_head_codes(const AttentionConfig& cfg, const KvCacheViews& cache,
                      VCacheLayout v_layout, CacheSide side, const CacheSite& site,
                      const HeadCodes& codes);

}  // namespace rcsim::cpu::detail
