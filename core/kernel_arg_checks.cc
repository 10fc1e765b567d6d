// The shared kernel argument checks (see kernel_arg_checks.h).
#include "core/kernel_arg_checks.h"

#include <cmath>

#include <fmt/format.h>

#include "core/check.h"
#include "core/limits.h"

namespace rcsim::kernel_args {

// ---- single arguments ---------------------------------------------------------------------------
void require_view(const BackendRules& rules, const TensorView& v, std::string_view name,
                  DType dtype, std::initializer_list<int64_t> shape) {
  RCSIM_REQUIRE(!v.is_null(), "{} is missing", name);
  RCSIM_REQUIRE(v.device == rules.device, "{} {}: {}", name, rules.wrong_device, v.describe());
  RCSIM_REQUIRE(v.dtype == dtype, "{} has dtype {}, expected {}", name, dtype_name(v.dtype),
                dtype_name(dtype));
  RCSIM_REQUIRE(v.same_shape(shape), "{} has shape {}, expected {} dims [{}]", name, v.describe(),
                shape.size(), fmt::join(shape, ", "));
  for (int d = 0; d < v.rank; ++d) {
    RCSIM_REQUIRE(v.stride(d) >= 0, "{} has a negative stride: {}", name, v.describe());
  }
}

void require_contiguous(const TensorView& v, std::string_view name) {
  RCSIM_REQUIRE(v.is_contiguous(), "{} must be contiguous: {}", name, v.describe());
}

void require_heads(const BackendRules& rules, const TensorView& v, std::string_view name,
                   DType dtype, std::initializer_list<int64_t> shape) {
  require_view(rules, v, name, dtype, shape);
  if (rules.require_heads_layout != nullptr) rules.require_heads_layout(v, name);
}

void require_head_dim(int64_t head_dim) {
  RCSIM_REQUIRE(limits::contains(limits::kHeadDimsSupported, head_dim),
                "unsupported head_dim {} (supported: 64, 128, 256)", head_dim);
}

void require_work_limit(const WorkLimit& limit) {
  RCSIM_REQUIRE(limit.max_units >= WorkLimit::kUnlimited, "WorkLimit.max_units {} is invalid",
                limit.max_units);
}

void require_rotary_dim(int64_t rotary_dim, int64_t head_dim) {
  RCSIM_REQUIRE(rotary_dim >= 2 && rotary_dim <= head_dim && rotary_dim % 2 == 0,
                "rotary_dim {} must be even and in [2, head_dim {}]", rotary_dim, head_dim);
}

void require_neox_lanes(int64_t rotary_dim, int64_t head_dim) {
  // The NeoX partner lives in lane l ^ ((rot/2) / (D/32)): a whole number of lanes.
  RCSIM_REQUIRE((rotary_dim / 2) % (head_dim / 32) == 0,
                "NeoX rotary_dim {} is not a whole number of lanes for head_dim {}", rotary_dim,
                head_dim);
}

void require_positions(const BackendRules& rules, const TensorView& positions,
                       int64_t max_position) {
  const std::vector<int64_t> p = rules.read_indices(positions);
  for (std::size_t t = 0; t < p.size(); ++t) {
    RCSIM_REQUIRE(p[t] >= 0 && p[t] < max_position, "position {} of token {} outside [0, {})",
                  p[t], t, max_position);
  }
}

void require_slots(const BackendRules& rules, const TensorView& slots, int64_t num_slots) {
  const std::vector<int64_t> s = rules.read_indices(slots);
  for (std::size_t t = 0; t < s.size(); ++t) {
    RCSIM_REQUIRE(s[t] < num_slots, "slot {} of token {} is beyond the cache ({} slots)", s[t], t,
                  num_slots);
  }
}

void require_cache(const BackendRules& rules, const AttentionConfig& cfg,
                   const KvCacheViews& cache, VCacheLayout v_layout, bool need_token_scales) {
  const DType cdt = cfg.cache_storage_dtype();
  const int64_t nb = cfg.num_blocks, h = cfg.num_heads_kv, bs = cfg.block_size,
                d = cfg.head_dim, x = cfg.x();
  require_view(rules, cache.k_cache, "k_cache", cdt, {nb, h, d / x, bs, x});
  require_contiguous(cache.k_cache, "k_cache");
  if (v_layout == VCacheLayout::kShuffle && cache.v_cache.rank == 5) {
    require_view(rules, cache.v_cache, "v_cache", cdt, {nb, h, bs / x, d, x});
  } else {
    require_view(rules, cache.v_cache, "v_cache", cdt, {nb, h, d, bs});
  }
  require_contiguous(cache.v_cache, "v_cache");
  if (need_token_scales) {
    require_view(rules, cache.k_scale, "k_scale", DType::kFP32, {nb, h, bs});
    require_contiguous(cache.k_scale, "k_scale");
    require_view(rules, cache.v_scale, "v_scale", DType::kFP32, {nb, h, bs});
    require_contiguous(cache.v_scale, "v_scale");
  }
}

void require_cos_sin(const BackendRules& rules, const TensorView& cos_sin, std::string_view name,
                     DType dtype, int64_t rotary_dim) {
  RCSIM_REQUIRE(!cos_sin.is_null() && cos_sin.rank == 2, "{} must be 2-D [max_pos, {}]: {}", name,
                rotary_dim, cos_sin.describe());
  require_view(rules, cos_sin, name, dtype, {cos_sin.size(0), rotary_dim});
  if (rules.dense_tables) require_contiguous(cos_sin, name);
  RCSIM_REQUIRE(cos_sin.size(0) >= 1 && cos_sin.size(0) <= limits::kMaxPositionMax,
                "{} has {} rows, outside [1, {}]", name, cos_sin.size(0),
                limits::kMaxPositionMax);
}

namespace {

// A [D] weight vector.
void require_weight(const BackendRules& rules, const TensorView& w, std::string_view name,
                    DType dtype, int64_t head_dim) {
  require_view(rules, w, name, dtype, {head_dim});
  if (rules.dense_tables) require_contiguous(w, name);
}

// T of a call whose first argument `first` is [T, ...] of `rank`; checks T against the limit.
int64_t leading_tokens(const TensorView& first, int rank, std::string_view must_be) {
  RCSIM_REQUIRE(!first.is_null() && first.rank == rank, "{}: {}", must_be, first.describe());
  const int64_t tokens = first.size(0);
  RCSIM_REQUIRE(tokens <= limits::kTokensPerBatchMax, "{} tokens exceed the limit {}", tokens,
                limits::kTokensPerBatchMax);
  return tokens;
}

// key / value / slot_mapping / cache against cfg; returns T.
int64_t require_key_value(const BackendRules& rules, const AttentionConfig& cfg,
                          const TensorView& key, const TensorView& value,
                          const TensorView& slot_mapping, const KvCacheViews& cache,
                          VCacheLayout v_layout, bool token_scales) {
  validate_attention_config(cfg);
  const int64_t tokens = leading_tokens(key, 3, "key must be [T, Hkv, D]");
  require_heads(rules, key, "key", cfg.act_dtype, {tokens, cfg.num_heads_kv, cfg.head_dim});
  require_heads(rules, value, "value", cfg.act_dtype, {tokens, cfg.num_heads_kv, cfg.head_dim});
  require_view(rules, slot_mapping, "slot_mapping", DType::kI64, {tokens});
  require_cache(rules, cfg, cache, v_layout, token_scales);
  require_slots(rules, slot_mapping, cfg.num_slots());
  return tokens;
}

}  // namespace

// ---- whole calls --------------------------------------------------------------------------------
int64_t check_fused(const BackendRules& rules, const FusedQkNormRopeCacheArgs& a) {
  const AttentionConfig& cfg = a.cfg;
  validate_attention_config(cfg);
  require_work_limit(a.limit);
  const int64_t tokens = leading_tokens(a.qkv, 2, "qkv must be 2-D [T, (Hq+2Hkv)*D]");
  require_view(rules, a.qkv, "qkv", cfg.act_dtype, {tokens, cfg.qkv_width()});
  require_contiguous(a.qkv, "qkv");
  require_weight(rules, a.q_weight, "q_weight", cfg.act_dtype, cfg.head_dim);
  require_weight(rules, a.k_weight, "k_weight", cfg.act_dtype, cfg.head_dim);
  require_cos_sin(rules, a.cos_sin_cache, "cos_sin_cache", cfg.act_dtype, cfg.rotary_dim);
  RCSIM_REQUIRE(a.cos_sin_cache.size(0) == cfg.max_position,
                "cos_sin_cache has {} rows, the config says max_position {}",
                a.cos_sin_cache.size(0), cfg.max_position);
  if (cfg.is_neox) require_neox_lanes(cfg.rotary_dim, cfg.head_dim);
  require_view(rules, a.positions, "positions", DType::kI64, {tokens});
  require_view(rules, a.slot_mapping, "slot_mapping", DType::kI64, {tokens});
  require_cache(rules, cfg, a.cache, VCacheLayout::kShuffle, is_fp8(cfg.kv_cache_dtype));
  if (!a.q_out.is_null()) {
    require_heads(rules, a.q_out, "q_out", cfg.act_dtype,
                  {tokens, cfg.num_heads_q, cfg.head_dim});
  }
  if (!a.k_out.is_null()) {
    require_heads(rules, a.k_out, "k_out", cfg.act_dtype,
                  {tokens, cfg.num_heads_kv, cfg.head_dim});
  }
  require_positions(rules, a.positions, cfg.max_position);
  require_slots(rules, a.slot_mapping, cfg.num_slots());
  return tokens;
}

int64_t check_rope_reshape_cache(const BackendRules& rules, const RopeReshapeCacheArgs& a) {
  const AttentionConfig& cfg = a.cfg;
  validate_attention_config(cfg);
  require_work_limit(a.limit);
  const int64_t tokens = leading_tokens(a.q, 3, "q must be [T, Hq, D]");
  require_heads(rules, a.q, "q", cfg.act_dtype, {tokens, cfg.num_heads_q, cfg.head_dim});
  require_heads(rules, a.k, "k", cfg.act_dtype, {tokens, cfg.num_heads_kv, cfg.head_dim});
  require_heads(rules, a.v, "v", cfg.act_dtype, {tokens, cfg.num_heads_kv, cfg.head_dim});
  if (rules.neox_in_whole_lanes && cfg.is_neox) require_neox_lanes(cfg.rotary_dim, cfg.head_dim);
  require_cos_sin(rules, a.cos_sin_cache, "cos_sin_cache", cfg.act_dtype, cfg.rotary_dim);
  require_view(rules, a.positions, "positions", DType::kI64, {tokens});
  require_view(rules, a.slot_mapping, "slot_mapping", DType::kI64, {tokens});
  require_cache(rules, cfg, a.cache, a.v_layout, false);
  RCSIM_REQUIRE(a.apply_scale == is_fp8(cfg.kv_cache_dtype),
                "apply_scale {} does not match kv_cache_dtype {}", a.apply_scale,
                kv_cache_dtype_name(cfg.kv_cache_dtype));
  if (a.apply_scale) {
    RCSIM_REQUIRE(std::isfinite(a.k_scale_static) && a.k_scale_static > 0.0f &&
                      std::isfinite(a.v_scale_static) && a.v_scale_static > 0.0f,
                  "static scales must be finite and positive, got k {} v {}", a.k_scale_static,
                  a.v_scale_static);
  }
  require_positions(rules, a.positions, a.cos_sin_cache.size(0));
  require_slots(rules, a.slot_mapping, cfg.num_slots());
  return tokens;
}

int64_t check_reshape_and_cache(const BackendRules& rules, const ReshapeAndCacheArgs& a) {
  require_work_limit(a.limit);
  const AttentionConfig& cfg = a.cfg;
  const int64_t tokens = require_key_value(rules, cfg, a.key, a.value, a.slot_mapping, a.cache,
                                           a.v_layout, false);
  if (is_fp8(cfg.kv_cache_dtype)) {
    RCSIM_REQUIRE(std::isfinite(a.k_scale) && a.k_scale > 0.0f && std::isfinite(a.v_scale) &&
                      a.v_scale > 0.0f,
                  "fp8 reshape_and_cache needs finite positive scales, got k {} v {}", a.k_scale,
                  a.v_scale);
  }
  return tokens;
}

int64_t check_per_token_quant_cache(const BackendRules& rules, const PerTokenQuantCacheArgs& a) {
  require_work_limit(a.limit);
  const AttentionConfig& cfg = a.cfg;
  RCSIM_REQUIRE(is_fp8(cfg.kv_cache_dtype),
                "reshape_and_cache_with_pertoken_quant needs an fp8 cache, got {}",
                kv_cache_dtype_name(cfg.kv_cache_dtype));
  return require_key_value(rules, cfg, a.key, a.value, a.slot_mapping, a.cache, a.v_layout, true);
}

RmsNormShape check_rms_norm(const BackendRules& rules, const RmsNormArgs& a) {
  require_work_limit(a.limit);
  const TensorView& in = a.input;
  RCSIM_REQUIRE(!in.is_null() && in.rank == 3, "rms_norm input must be [T, H, D]: {}",
                in.describe());
  const RmsNormShape s{in.size(0), in.size(1), in.size(2)};
  RCSIM_REQUIRE(is_activation_dtype(in.dtype), "rms_norm input dtype {} is not bf16/fp16",
                dtype_name(in.dtype));
  RCSIM_REQUIRE(s.tokens <= limits::kTokensPerBatchMax && s.heads >= 1 &&
                    s.heads <= limits::kHeadsQMax,
                "rms_norm input shape out of limits: {}", in.describe());
  require_head_dim(s.head_dim);
  require_heads(rules, in, "rms_norm input", in.dtype, {s.tokens, s.heads, s.head_dim});
  require_heads(rules, a.output, "rms_norm output", in.dtype, {s.tokens, s.heads, s.head_dim});
  require_weight(rules, a.weight, "rms_norm weight", in.dtype, s.head_dim);
  RCSIM_REQUIRE(std::isfinite(a.eps) && a.eps > 0.0f, "rms_norm eps {} must be positive", a.eps);
  return s;
}

RotaryShape check_rotary(const BackendRules& rules, const RotaryArgs& a) {
  require_work_limit(a.limit);
  const TensorView& q = a.q;
  RCSIM_REQUIRE(!q.is_null() && q.rank == 3, "rotary q must be [T, Hq, D]: {}", q.describe());
  RotaryShape s{q.size(0), q.size(1), 0, q.size(2)};
  RCSIM_REQUIRE(is_activation_dtype(q.dtype), "rotary q dtype {} is not bf16/fp16",
                dtype_name(q.dtype));
  RCSIM_REQUIRE(s.tokens <= limits::kTokensPerBatchMax && s.heads_q >= 1 &&
                    s.heads_q <= limits::kHeadsQMax,
                "rotary q shape out of limits: {}", q.describe());
  require_head_dim(s.head_dim);
  require_heads(rules, q, "rotary q", q.dtype, {s.tokens, s.heads_q, s.head_dim});
  if (!a.k.is_null()) {
    RCSIM_REQUIRE(a.k.rank == 3, "rotary k must be [T, Hkv, D]: {}", a.k.describe());
    s.heads_k = a.k.size(1);
    RCSIM_REQUIRE(s.heads_k >= 1 && s.heads_k <= limits::kHeadsKvMax, "rotary k has {} heads",
                  s.heads_k);
    require_heads(rules, a.k, "rotary k", q.dtype, {s.tokens, s.heads_k, s.head_dim});
  }
  require_rotary_dim(a.rotary_dim, s.head_dim);
  if (rules.neox_in_whole_lanes && a.is_neox) require_neox_lanes(a.rotary_dim, s.head_dim);
  require_cos_sin(rules, a.cos_sin_cache, "cos_sin_cache", q.dtype, a.rotary_dim);
  require_view(rules, a.positions, "positions", DType::kI64, {s.tokens});
  require_positions(rules, a.positions, a.cos_sin_cache.size(0));
  return s;
}

}  // namespace rcsim::kernel_args
