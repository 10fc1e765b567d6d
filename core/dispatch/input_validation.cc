// The dispatcher's input checks: resolve_and_validate (every input a branch may read, before
// anything is written) and the fused kernel's host-side preconditions (the prevalidate policy).
#include "core/dispatch/dispatch_internal.h"

#include <array>
#include <new>
#include <utility>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "core/check.h"
#include "core/limits.h"
#include "core/mutants.h"

namespace rcsim {
namespace dispatch_detail {
namespace {

bool same_view(const TensorView& a, const TensorView& b) {
  if (a.base != b.base || a.dtype != b.dtype || a.rank != b.rank || a.offset != b.offset) {
    return false;
  }
  for (int d = 0; d < a.rank; ++d) {
    if (a.size(d) != b.size(d) || a.stride(d) != b.stride(d)) return false;
  }
  return true;
}

}  // namespace

bool is_shape(const TensorView& t, std::initializer_list<int64_t> shape) {
  return !t.is_null() && t.same_shape(shape);
}

std::string describe_or_null(const TensorView& t) { return t.is_null() ? "null" : t.describe(); }

namespace {

// The KV cache views (and, for A and C on an fp8 cache, the per-token scales).
void validate_cache(const AttentionConfig& c, const KvCacheViews& cache, Branch planned) {
  const DType cache_dtype = c.cache_storage_dtype();
  const int64_t x = c.x();
  RCSIM_REQUIRE(
      is_shape(cache.k_cache, {c.num_blocks, c.num_heads_kv, c.head_dim / x, c.block_size, x}) &&
          cache.k_cache.dtype == cache_dtype,
      "k_cache must be {}[{}, {}, {}, {}, {}], got {}", dtype_name(cache_dtype), c.num_blocks,
      c.num_heads_kv, c.head_dim / x, c.block_size, x, describe_or_null(cache.k_cache));
  RCSIM_REQUIRE(
      (is_shape(cache.v_cache, {c.num_blocks, c.num_heads_kv, c.head_dim, c.block_size}) ||
       is_shape(cache.v_cache, {c.num_blocks, c.num_heads_kv, c.block_size / x, c.head_dim, x})) &&
          cache.v_cache.dtype == cache_dtype,
      "v_cache must be {}[{}, {}, {}, {}] or the 5-D shuffle view, got {}",
      dtype_name(cache_dtype), c.num_blocks, c.num_heads_kv, c.head_dim, c.block_size,
      describe_or_null(cache.v_cache));
  // Per-token fp8 scales are needed by A and by C (the fallback); B uses ATOM's static scale.
  if (is_fp8(c.kv_cache_dtype) && planned != Branch::kRopeCache) {
    for (const auto& [name, s] :
         {std::pair{"k_scale", cache.k_scale}, {"v_scale", cache.v_scale}}) {
      RCSIM_REQUIRE(is_shape(s, {c.num_blocks, c.num_heads_kv, c.block_size}) &&
                        s.dtype == DType::kFP32,
                    "{} must be fp32[{}, {}, {}] for an fp8 cache, got {}", name, c.num_blocks,
                    c.num_heads_kv, c.block_size, describe_or_null(s));
    }
  }
}

// Positions and slots, where they can be read: a position outside the cos/sin table or a slot
// beyond the cache would make a kernel read or write out of bounds.
void validate_index_values(const AttentionConfig& c, const RopeCacheInputs& in, int64_t t) {
  if (in.positions.device == DeviceTag::kHost) {
    for (int64_t i = 0; i < t; ++i) {
      const int64_t p = in.positions.data_as<int64_t>()[i * in.positions.stride(0)];
      RCSIM_REQUIRE(p >= 0 && p < c.max_position, "positions[{}] = {} outside [0, {})", i, p,
                    c.max_position);
    }
  }
  if (in.slot_mapping.device == DeviceTag::kHost) {
    for (int64_t i = 0; i < t; ++i) {
      const int64_t s = in.slot_mapping.data_as<int64_t>()[i * in.slot_mapping.stride(0)];
      RCSIM_REQUIRE(s < c.num_slots(), "slot_mapping[{}] = {} beyond the {} cache slots", i, s,
                    c.num_slots());
    }
  }
}

}  // namespace

// Derives q/k/v from qkv when the caller gave only qkv, and checks every input the chosen branch
// may read, before anything is written.
RopeCacheInputs resolve_and_validate(const LayerSpec& spec, const RopeCacheInputs& raw,
                                     Branch planned) {
  const AttentionConfig& c = spec.attn;
  RopeCacheInputs in = raw;
  RCSIM_REQUIRE(!in.positions.is_null() && in.positions.rank == 1 &&
                    in.positions.dtype == DType::kI64,
                "positions must be i64 [T], got {}", describe_or_null(in.positions));
  const int64_t t = in.positions.size(0);
  RCSIM_REQUIRE(t >= 1 && t <= limits::kTokensPerBatchMax, "token count {} outside [1, {}]", t,
                limits::kTokensPerBatchMax);
  if (!in.qkv.is_null()) {
    RCSIM_REQUIRE(is_shape(in.qkv, {t, c.qkv_width()}) && in.qkv.dtype == c.act_dtype &&
                      in.qkv.stride(1) == 1,
                  "qkv must be {}[{}, {}] with unit column stride, got {}",
                  dtype_name(c.act_dtype), t, c.qkv_width(), in.qkv.describe());
    const QkvViews split = split_qkv(in.qkv, c.num_heads_q, c.num_heads_kv, c.head_dim);
    if (in.q.is_null() && in.k.is_null() && in.v.is_null()) {
      in.q = split.q;
      in.k = split.k;
      in.v = split.v;
    }
    RCSIM_REQUIRE(same_view(in.q, split.q) && same_view(in.k, split.k) &&
                      same_view(in.v, split.v),
                  "q/k/v must be the split_qkv views of qkv (they alias it in ATOM)");
  }
  for (const auto& [name, view, heads] :
       {std::tuple{"q", in.q, c.num_heads_q}, {"k", in.k, c.num_heads_kv},
        {"v", in.v, c.num_heads_kv}}) {
    RCSIM_REQUIRE(is_shape(view, {t, heads, c.head_dim}) && view.dtype == c.act_dtype &&
                      view.stride(2) == 1,
                  "{} must be {}[{}, {}, {}] with unit dim stride, got {}", name,
                  dtype_name(c.act_dtype), t, heads, c.head_dim, describe_or_null(view));
  }
  RCSIM_REQUIRE(is_shape(in.slot_mapping, {t}) && in.slot_mapping.dtype == DType::kI64,
                "slot_mapping must be i64 [{}], got {}", t, describe_or_null(in.slot_mapping));
  if (spec.has_rotary) {
    RCSIM_REQUIRE(is_shape(in.cos_sin_cache, {c.max_position, c.rotary_dim}) &&
                      in.cos_sin_cache.dtype == c.act_dtype,
                  "cos_sin_cache must be {}[{}, {}], got {}", dtype_name(c.act_dtype),
                  c.max_position, c.rotary_dim, describe_or_null(in.cos_sin_cache));
  }
  if (spec.has_q_norm) {
    RCSIM_REQUIRE(is_shape(in.q_weight, {c.head_dim}) && in.q_weight.dtype == c.act_dtype,
                  "q_weight must be {}[{}], got {}", dtype_name(c.act_dtype), c.head_dim,
                  describe_or_null(in.q_weight));
  }
  if (spec.has_k_norm) {
    RCSIM_REQUIRE(is_shape(in.k_weight, {c.head_dim}) && in.k_weight.dtype == c.act_dtype,
                  "k_weight must be {}[{}], got {}", dtype_name(c.act_dtype), c.head_dim,
                  describe_or_null(in.k_weight));
  }
  validate_cache(c, in.cache, planned);
  validate_index_values(c, in, t);
  return in;
}


}  // namespace dispatch_detail

using dispatch_detail::describe_or_null;
using dispatch_detail::is_shape;

std::optional<std::string> fused_precondition_failure(const LayerSpec& spec,
                                                      const RopeCacheInputs& in) {
  const AttentionConfig& c = spec.attn;
  const int64_t d = c.head_dim;
  // Configuration first (the kernel's template dispatch), then each tensor.
  if (d % 32 != 0 || !limits::contains(limits::kHeadDimsSupported, d)) {
    return fmt::format("head_dim {} not in {{{}}}", d, fmt::join(limits::kHeadDimsSupported, ", "));
  }
  if (!limits::contains(limits::kHeadsKvSupported, c.num_heads_kv)) {
    return fmt::format("num_heads_kv {} not in {{{}}}", c.num_heads_kv,
                       fmt::join(limits::kHeadsKvSupported, ", "));
  }
  if (c.rotary_dim != d) {
    return fmt::format("rotary_dim {} != head_dim {} (the March 2026 kernel is full-rotary only)",
                       c.rotary_dim, d);
  }
  if (in.qkv.is_null()) return "qkv is absent";
  const int64_t t = in.qkv.rank == 2 ? in.qkv.size(0) : -1;
  if (in.qkv.rank != 2 || !in.qkv.is_contiguous() || in.qkv.size(1) != c.qkv_width()) {
    return fmt::format("qkv must be contiguous [T, {}], got {}", c.qkv_width(), in.qkv.describe());
  }
  if (!is_activation_dtype(in.qkv.dtype)) return "qkv dtype is not bf16/fp16";
  if (!is_shape(in.positions, {t}) || in.positions.dtype != DType::kI64 ||
      !in.positions.is_contiguous()) {
    return fmt::format("positions must be contiguous i64 [{}], got {}", t,
                       describe_or_null(in.positions));
  }
  if (!is_shape(in.slot_mapping, {t}) || in.slot_mapping.dtype != DType::kI64 ||
      !in.slot_mapping.is_contiguous()) {
    return fmt::format("slot_mapping must be contiguous i64 [{}], got {}", t,
                       describe_or_null(in.slot_mapping));
  }
  for (const auto& [name, w] : {std::pair{"q_weight", in.q_weight}, {"k_weight", in.k_weight}}) {
    if (!is_shape(w, {d}) || w.dtype != in.qkv.dtype || !w.is_contiguous()) {
      return fmt::format("{} must be contiguous {}[{}], got {}", name, dtype_name(in.qkv.dtype), d,
                         describe_or_null(w));
    }
  }
  const TensorView& cs = in.cos_sin_cache;
  if (cs.is_null() || cs.rank != 2 || cs.size(1) != d || cs.dtype != in.qkv.dtype ||
      !cs.is_contiguous()) {
    return fmt::format("cos_sin_cache must be contiguous {}[max_pos, {}], got {}",
                       dtype_name(in.qkv.dtype), d, describe_or_null(cs));
  }
  const DType cache_dtype = c.cache_storage_dtype();
  const int64_t x = c.x();
  const TensorView& kc = in.cache.k_cache;
  if (!is_shape(kc, {c.num_blocks, c.num_heads_kv, d / x, c.block_size, x}) ||
      kc.dtype != cache_dtype || !kc.is_contiguous()) {
    return fmt::format("k_cache must be contiguous {}[{}, {}, {}, {}, {}], got {}",
                       dtype_name(cache_dtype), c.num_blocks, c.num_heads_kv, d / x, c.block_size,
                       x, describe_or_null(kc));
  }
  // The March kernel takes page_size from v_cache.size(-1): only the 4-D label view is read right.
  const TensorView& vc = in.cache.v_cache;
  if (!is_shape(vc, {c.num_blocks, c.num_heads_kv, d, c.block_size}) || vc.dtype != cache_dtype ||
      !vc.is_contiguous()) {
    return fmt::format("v_cache must be the contiguous 4-D {}[{}, {}, {}, {}], got {}",
                       dtype_name(cache_dtype), c.num_blocks, c.num_heads_kv, d, c.block_size,
                       describe_or_null(vc));
  }
  if (c.block_size % x != 0) return fmt::format("block_size {} % x {} != 0", c.block_size, x);
  if (is_fp8(c.kv_cache_dtype)) {
    for (const auto& [name, s] :
         {std::pair{"k_scale", in.cache.k_scale}, {"v_scale", in.cache.v_scale}}) {
      if (!is_shape(s, {c.num_blocks, c.num_heads_kv, c.block_size}) || s.dtype != DType::kFP32) {
        return fmt::format("{} must be fp32[{}, {}, {}] for an fp8 cache, got {}", name,
                           c.num_blocks, c.num_heads_kv, c.block_size, describe_or_null(s));
      }
    }
  }
  return std::nullopt;
}

}  // namespace rcsim
