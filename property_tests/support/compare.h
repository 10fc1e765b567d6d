// Comparisons the properties share: bit-exact for data movement (qkv restore, cache write-sets,
// untouched sentinel memory), dtype-derived tolerances for numerics. Every mismatch message names
// the first bad (token, head, dim) or cache (block, head, slot-in-block, dim), both values and
// their bits, so a shrunk counterexample is readable on its own.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "core/attention_config.h"
#include "core/nan_class.h"
#include "core/tensor.h"
#include "property_tests/generators/call_case.h"

namespace rcsim::props {

// |a - b| <= atol + rtol * |b|, per activation dtype. bf16: atol 1e-2 (vLLM's fused qk-norm-rope
// test) and rtol 1.6e-2 (vLLM's bf16 rotary tolerance; about two bf16 ulps, 2^-7 each, just above
// 1: the two orders round at different points); fp16: 2e-3 / 2e-3 (vLLM's fp16 tolerance).
struct Tolerance {
  double atol;
  double rtol;
  // For comparing two orders of the same computation: RoPE output near zero comes from terms as
  // large as the head's largest element M, so rounding at different points leaves an absolute
  // error proportional to M, not to the output. Adds head_max_roundoffs * u * M to atol, with u the
  // dtype's unit roundoff (bf16 2^-8, fp16 2^-11) and M = max |expected| over the (token, head).
  double head_max_roundoffs = 0.0;
  double unit_roundoff = 0.0;
};
Tolerance tolerance_for(DType act);
// The tolerance for "same math, different rounding order" (PR order vs the fused kernel).
Tolerance order_tolerance_for(DType act);

struct NumericStats {
  int64_t compared = 0;
  int64_t mismatches = 0;  // outside the tolerance (a NaN on one side only counts)
  double max_abs_error = 0.0;
  double cosine_similarity = 1.0;  // over all finite pairs
  std::string first_bad;           // "(token t, head h [q|k], dim d): a vs b"
};

// Q and K heads of two qkv tensors [T, (Hq+2Hkv)*D] of the same config, within `tol`.
NumericStats compare_qk_numeric(const AttentionConfig& cfg, const HostTensor& actual,
                                const HostTensor& expected, Tolerance tol);

// Bit-exact comparison of two qkv tensors over all heads (Q, K, V), NaN payloads included;
// returns the first difference as (token, head, dim). `qk_rule` applies to the Q and K heads
// only: NanRule::kNanClass where the two sides come from different backends (core/nan_class.h:
// a computed NaN's bits are the backend's); V is data movement and always bit-exact.
std::optional<std::string> first_qkv_bit_difference(const AttentionConfig& cfg,
                                                    const HostTensor& actual,
                                                    const HostTensor& expected,
                                                    NanRule qk_rule = NanRule::kBitExact);

// Element-exact comparison of two whole buffers of the same shape (caches, scales): the write-set
// AND everything outside it. Names the first differing element by its flat index. kNanClass only
// for computed buffers compared across backends (returned q/k, K cache, fp8 codes and scales).
std::optional<std::string> first_byte_difference(const HostTensor& actual,
                                                  const HostTensor& expected,
                                                  std::string_view what,
                                                  NanRule rule = NanRule::kBitExact);

// For fp8 caches written by two paths whose quantisers differ only in v/s versus v*(1/s): every
// code equal or one step apart with the same sign, bytes equal everywhere else (untouched).
std::optional<std::string> first_fp8_code_difference_beyond_one_step(const HostTensor& actual,
                                                                     const HostTensor& expected,
                                                                     std::string_view what);

// The value a cache element holds, dequantised (fp8 code x scale, or the activation value).
// Cache coordinates: block, kv head, token-in-block, dim.
float cache_k_value(const AttentionConfig& cfg, const HostTensor& k_cache, const HostTensor& k_scale,
                    int64_t block, int64_t head, int64_t tok, int64_t dim);
float cache_v_value(const AttentionConfig& cfg, const HostTensor& v_cache, const HostTensor& v_scale,
                    int64_t block, int64_t head, int64_t tok, int64_t dim);

// Activation element of qkv at (token, head in Q|K|V order, dim), as float.
float qkv_value(const AttentionConfig& cfg, const HostTensor& qkv, int64_t token, int64_t head,
                int64_t dim);

std::string bits_hex(uint32_t bits, int width_hex_digits);

}  // namespace rcsim::props
