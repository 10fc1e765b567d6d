// GPU backend: argument validation (mirroring the CPU reference's checks, for device views), the
// translation of interface args into the kernels' params structs, WorkLimit -> device unit limit,
// and the poisoned state that models a sticky device error. Plain C++: the vendor runtime is
// reached only through gpu_runtime.h and gpu_params.h.
#include "kernels/hip/gpu_backend.h"

#include <cmath>
#include <cstring>
#include <vector>

#include <fmt/format.h>

#include "core/check.h"
#include "core/errors.h"
#include "core/limits.h"
#include "core/mutants.h"
#include "kernels/hip/gpu_params.h"

namespace rcsim::gpu {

// ---- sticky state --------------------------------------------------------------------------
void BackendState::check_usable(std::string_view kernel) const {
  if (!poisoned_) return;
  throw KernelError(FailureClass::kStickyDevice, std::string(kernel),
                    "device context poisoned earlier: " + reason_, injected_);
}
void BackendState::poison(std::string reason, bool injected) {
  if (poisoned_) return;  // the first error names the cause
  poisoned_ = true;
  injected_ = injected;
  reason_ = std::move(reason);
}

namespace {

// Runs a launch; a sticky vendor error poisons the backend before it propagates.
template <typename F>
void guarded(BackendState& state, std::string_view kernel, F&& launch) {
  state.check_usable(kernel);
  try {
    launch();
    synchronize();
  } catch (const KernelError& e) {
    if (e.failure_class() == FailureClass::kStickyDevice) state.poison(e.what(), e.injected());
    throw;
  }
}

// ---- validation (InvalidInput before any write) ------------------------------------------------
void require_view(const TensorView& v, std::string_view name, DType dtype,
                  std::initializer_list<int64_t> shape) {
  RCSIM_REQUIRE(!v.is_null(), "{} is missing", name);
  RCSIM_REQUIRE(v.device == DeviceTag::kGpu, "{} is not a GPU view: {}", name, v.describe());
  RCSIM_REQUIRE(v.dtype == dtype, "{} has dtype {}, expected {}", name, dtype_name(v.dtype),
                dtype_name(dtype));
  RCSIM_REQUIRE(v.same_shape(shape), "{} has shape {}, expected [{}]", name, v.describe(),
                fmt::join(shape, ", "));
}
void require_contiguous(const TensorView& v, std::string_view name) {
  RCSIM_REQUIRE(v.is_contiguous(), "{} must be contiguous: {}", name, v.describe());
}
// [T, H, D] activation views: the kernels read whole heads as vectors, so the last dim is dense
// and every head starts on a vector boundary.
void require_heads_view(const TensorView& v, std::string_view name) {
  RCSIM_REQUIRE(v.stride(2) == 1 && v.stride(0) >= 0 && v.stride(1) >= 0,
                "{} needs unit stride over D: {}", name, v.describe());
  const int64_t vec = v.size(2) / 32;  // elements per lane
  RCSIM_REQUIRE(v.offset % vec == 0 && v.stride(0) % vec == 0 && v.stride(1) % vec == 0,
                "{} heads are not aligned to {}-element vectors: {}", name, vec, v.describe());
}
void require_head_dim(int64_t head_dim) {
  RCSIM_REQUIRE(limits::contains(limits::kHeadDimsSupported, head_dim),
                "unsupported head_dim {} (supported: 64, 128, 256)", head_dim);
}
void require_limit(const WorkLimit& limit) {
  RCSIM_REQUIRE(limit.max_units >= WorkLimit::kUnlimited, "WorkLimit.max_units {} is invalid",
                limit.max_units);
}
void require_rotary(int64_t rotary_dim, int64_t head_dim, bool is_neox) {
  RCSIM_REQUIRE(rotary_dim >= 2 && rotary_dim <= head_dim && rotary_dim % 2 == 0,
                "rotary_dim {} must be even and in [2, head_dim {}]", rotary_dim, head_dim);
  // The kernels find the NeoX partner a whole number of lanes away; GPT-J pairs sit in one lane.
  RCSIM_REQUIRE(!is_neox || (rotary_dim / 2) % (head_dim / 32) == 0,
                "NeoX rotary_dim {} is not a whole number of lanes for head_dim {}", rotary_dim,
                head_dim);
}
void require_cos_sin(const TensorView& cs, DType dtype, int64_t rotary_dim) {
  RCSIM_REQUIRE(!cs.is_null() && cs.rank == 2, "cos_sin_cache must be 2-D: {}", cs.describe());
  require_view(cs, "cos_sin_cache", dtype, {cs.size(0), rotary_dim});
  require_contiguous(cs, "cos_sin_cache");
  RCSIM_REQUIRE(cs.size(0) >= 1 && cs.size(0) <= limits::kMaxPositionMax,
                "cos_sin_cache has {} rows", cs.size(0));
}
std::vector<int64_t> read_i64(const TensorView& v) {
  std::vector<int64_t> host(static_cast<std::size_t>(v.size(0)));
  RCSIM_REQUIRE(v.stride(0) == 1, "i64 index views must be contiguous: {}", v.describe());
  if (!host.empty()) copy_to_host(host.data(), v.data(), v.size(0) * 8);
  return host;
}
void require_positions(const TensorView& positions, int64_t max_position) {
  const std::vector<int64_t> p = read_i64(positions);
  for (std::size_t t = 0; t < p.size(); ++t) {
    RCSIM_REQUIRE(p[t] >= 0 && p[t] < max_position, "position {} of token {} outside [0, {})",
                  p[t], t, max_position);
  }
}
void require_slots(const TensorView& slots, int64_t num_slots) {
  const std::vector<int64_t> s = read_i64(slots);
  for (std::size_t t = 0; t < s.size(); ++t) {
    RCSIM_REQUIRE(s[t] < num_slots, "slot {} of token {} is beyond the cache ({} slots)", s[t], t,
                  num_slots);
  }
}
void require_cache(const AttentionConfig& cfg, const KvCacheViews& cache, VCacheLayout v_layout,
                   bool need_token_scales) {
  const DType cdt = cfg.cache_storage_dtype();
  const int64_t nb = cfg.num_blocks, h = cfg.num_heads_kv, bs = cfg.block_size,
                d = cfg.head_dim, x = cfg.x();
  require_view(cache.k_cache, "k_cache", cdt, {nb, h, d / x, bs, x});
  require_contiguous(cache.k_cache, "k_cache");
  if (v_layout == VCacheLayout::kShuffle && cache.v_cache.rank == 5) {
    require_view(cache.v_cache, "v_cache", cdt, {nb, h, bs / x, d, x});
  } else {
    require_view(cache.v_cache, "v_cache", cdt, {nb, h, d, bs});
  }
  require_contiguous(cache.v_cache, "v_cache");
  if (need_token_scales) {
    require_view(cache.k_scale, "k_scale", DType::kFP32, {nb, h, bs});
    require_contiguous(cache.k_scale, "k_scale");
    require_view(cache.v_scale, "v_scale", DType::kFP32, {nb, h, bs});
    require_contiguous(cache.v_scale, "v_scale");
  }
}

ActType act_type(DType t) { return t == DType::kBF16 ? ActType::kBF16 : ActType::kFP16; }
CacheType cache_type(KvCacheDtype k) {
  switch (k) {
    case KvCacheDtype::kAuto: return CacheType::kActivation;
    case KvCacheDtype::kFp8E4M3FN: return CacheType::kFp8E4M3FN;
    case KvCacheDtype::kFp8E4M3FNUZ: return CacheType::kFp8E4M3FNUZ;
  }
  return CacheType::kActivation;
}
CacheParams cache_params(const AttentionConfig& cfg, const KvCacheViews& c, VCacheLayout layout) {
  CacheParams p;
  p.k_cache = c.k_cache.data();
  p.v_cache = c.v_cache.data();
  p.k_scale = c.k_scale.is_null() ? nullptr : c.k_scale.data_as<float>();
  p.v_scale = c.v_scale.is_null() ? nullptr : c.v_scale.data_as<float>();
  p.num_blocks = cfg.num_blocks;
  p.block_size = cfg.block_size;
  p.x = cfg.x();
  p.type = cache_type(cfg.kv_cache_dtype);
  p.v_shuffle = layout == VCacheLayout::kShuffle;
  return p;
}
HeadsView heads_view(const TensorView& v) {
  if (v.is_null()) return {};
  return {v.data(), v.stride(0), v.stride(1)};
}
int64_t units_to_run(const WorkLimit& limit, int64_t total) {
  return limit.unlimited() || limit.max_units > total ? total : limit.max_units;
}

}  // namespace

// ---- kernels ---------------------------------------------------------------------------------
class GpuFusedQkNormRopeCache final : public FusedQkNormRopeCacheKernel {
 public:
  explicit GpuFusedQkNormRopeCache(std::shared_ptr<BackendState> s) : state_(std::move(s)) {}
  KernelRun run(const FusedQkNormRopeCacheArgs& a) override {
    state_->check_usable(kName);
    const AttentionConfig& cfg = a.cfg;
    validate_attention_config(cfg);
    require_limit(a.limit);
    RCSIM_REQUIRE(!a.qkv.is_null() && a.qkv.rank == 2, "qkv must be 2-D: {}", a.qkv.describe());
    const int64_t tokens = a.qkv.size(0);
    RCSIM_REQUIRE(tokens <= limits::kTokensPerBatchMax, "{} tokens exceed the limit", tokens);
    require_view(a.qkv, "qkv", cfg.act_dtype, {tokens, cfg.qkv_width()});
    require_contiguous(a.qkv, "qkv");
    require_view(a.q_weight, "q_weight", cfg.act_dtype, {cfg.head_dim});
    require_contiguous(a.q_weight, "q_weight");
    require_view(a.k_weight, "k_weight", cfg.act_dtype, {cfg.head_dim});
    require_contiguous(a.k_weight, "k_weight");
    require_head_dim(cfg.head_dim);
    require_rotary(cfg.rotary_dim, cfg.head_dim, cfg.is_neox);
    require_cos_sin(a.cos_sin_cache, cfg.act_dtype, cfg.rotary_dim);
    RCSIM_REQUIRE(a.cos_sin_cache.size(0) == cfg.max_position,
                  "cos_sin_cache has {} rows, the config says max_position {}",
                  a.cos_sin_cache.size(0), cfg.max_position);
    require_view(a.positions, "positions", DType::kI64, {tokens});
    require_view(a.slot_mapping, "slot_mapping", DType::kI64, {tokens});
    require_cache(cfg, a.cache, VCacheLayout::kShuffle, is_fp8(cfg.kv_cache_dtype));
    if (!a.q_out.is_null()) {
      require_view(a.q_out, "q_out", cfg.act_dtype, {tokens, cfg.num_heads_q, cfg.head_dim});
      require_heads_view(a.q_out, "q_out");
    }
    if (!a.k_out.is_null()) {
      require_view(a.k_out, "k_out", cfg.act_dtype, {tokens, cfg.num_heads_kv, cfg.head_dim});
      require_heads_view(a.k_out, "k_out");
    }
    require_positions(a.positions, cfg.max_position);
    require_slots(a.slot_mapping, cfg.num_slots());

    FusedParams p;
    p.qkv = a.qkv.data();
    p.q_weight = a.q_weight.data();
    p.k_weight = a.k_weight.data();
    p.cos_sin = a.cos_sin_cache.data();
    p.positions = a.positions.data_as<int64_t>();
    p.slots = a.slot_mapping.data_as<int64_t>();
    p.q_out = heads_view(a.q_out);
    p.k_out = heads_view(a.k_out);
    p.cache = cache_params(cfg, a.cache, VCacheLayout::kShuffle);
    p.num_tokens = tokens;
    p.num_heads_q = cfg.num_heads_q;
    p.num_heads_kv = cfg.num_heads_kv;
    p.head_dim = cfg.head_dim;
    p.rotary_dim = cfg.rotary_dim;
    p.act = act_type(cfg.act_dtype);
    p.is_neox = cfg.is_neox;
    p.amax_floor = cfg.amax_floor;
    p.eps = cfg.eps;
    p.max_units = a.limit.max_units;
    const int64_t total = tokens * (cfg.num_heads_q + 2 * cfg.num_heads_kv);
    p.mapping = state_->mapping();
    // The device-only mutant (core/mutants.h): the CPU reference has no such bug to plant.
    p.planted_v_index_bug = mutant_active(Mutant::kGpuVShuffleIndex);
    guarded(*state_, kName, [&] { launch_fused_qk_norm_rope_cache(p, nullptr); });
    return {total, units_to_run(a.limit, total)};
  }

 private:
  std::shared_ptr<BackendState> state_;
};

class GpuRmsNorm final : public RmsNormKernel {
 public:
  explicit GpuRmsNorm(std::shared_ptr<BackendState> s) : state_(std::move(s)) {}
  KernelRun run(const RmsNormArgs& a) override {
    state_->check_usable(kName);
    require_limit(a.limit);
    const TensorView& in = a.input;
    RCSIM_REQUIRE(!in.is_null() && in.rank == 3, "rms_norm input must be [T, H, D]: {}",
                  in.describe());
    const int64_t tokens = in.size(0), heads = in.size(1), dim = in.size(2);
    RCSIM_REQUIRE(is_activation_dtype(in.dtype), "rms_norm input dtype {} is not bf16/fp16",
                  dtype_name(in.dtype));
    RCSIM_REQUIRE(tokens <= limits::kTokensPerBatchMax && heads >= 1 &&
                      heads <= limits::kHeadsQMax,
                  "rms_norm input shape out of limits: {}", in.describe());
    require_head_dim(dim);
    require_view(in, "rms_norm input", in.dtype, {tokens, heads, dim});
    require_heads_view(in, "rms_norm input");
    require_view(a.output, "rms_norm output", in.dtype, {tokens, heads, dim});
    require_heads_view(a.output, "rms_norm output");
    require_view(a.weight, "rms_norm weight", in.dtype, {dim});
    require_contiguous(a.weight, "rms_norm weight");
    RCSIM_REQUIRE(std::isfinite(a.eps) && a.eps > 0.0f, "rms_norm eps {} must be positive", a.eps);
    RmsNormParams p;
    p.in = heads_view(in);
    p.out = heads_view(a.output);
    p.weight = a.weight.data();
    p.num_tokens = tokens;
    p.num_heads = heads;
    p.head_dim = dim;
    p.act = act_type(in.dtype);
    p.eps = a.eps;
    p.max_units = a.limit.max_units;
    p.mapping = state_->mapping();
    guarded(*state_, kName, [&] { launch_rms_norm(p, nullptr); });
    return {tokens * heads, units_to_run(a.limit, tokens * heads)};
  }

 private:
  std::shared_ptr<BackendState> state_;
};

class GpuRotaryEmbedding final : public RotaryEmbeddingKernel {
 public:
  explicit GpuRotaryEmbedding(std::shared_ptr<BackendState> s) : state_(std::move(s)) {}
  KernelRun run(const RotaryArgs& a) override {
    state_->check_usable(kName);
    require_limit(a.limit);
    const TensorView& q = a.q;
    RCSIM_REQUIRE(!q.is_null() && q.rank == 3, "rotary q must be [T, Hq, D]: {}", q.describe());
    const int64_t tokens = q.size(0), heads_q = q.size(1), dim = q.size(2);
    RCSIM_REQUIRE(is_activation_dtype(q.dtype), "rotary q dtype {} is not bf16/fp16",
                  dtype_name(q.dtype));
    RCSIM_REQUIRE(tokens <= limits::kTokensPerBatchMax && heads_q >= 1 &&
                      heads_q <= limits::kHeadsQMax,
                  "rotary q shape out of limits: {}", q.describe());
    require_head_dim(dim);
    require_view(q, "rotary q", q.dtype, {tokens, heads_q, dim});
    require_heads_view(q, "rotary q");
    int64_t heads_k = 0;
    if (!a.k.is_null()) {
      RCSIM_REQUIRE(a.k.rank == 3, "rotary k must be [T, Hkv, D]: {}", a.k.describe());
      heads_k = a.k.size(1);
      RCSIM_REQUIRE(heads_k >= 1 && heads_k <= limits::kHeadsKvMax, "rotary k has {} heads",
                    heads_k);
      require_view(a.k, "rotary k", q.dtype, {tokens, heads_k, dim});
      require_heads_view(a.k, "rotary k");
    }
    require_rotary(a.rotary_dim, dim, a.is_neox);
    require_cos_sin(a.cos_sin_cache, q.dtype, a.rotary_dim);
    require_view(a.positions, "positions", DType::kI64, {tokens});
    require_positions(a.positions, a.cos_sin_cache.size(0));
    RotaryParams p;
    p.q = heads_view(q);
    p.k = heads_view(a.k);
    p.cos_sin = a.cos_sin_cache.data();
    p.positions = a.positions.data_as<int64_t>();
    p.num_tokens = tokens;
    p.num_heads_q = heads_q;
    p.num_heads_kv = heads_k;
    p.head_dim = dim;
    p.rotary_dim = a.rotary_dim;
    p.act = act_type(q.dtype);
    p.is_neox = a.is_neox;
    p.max_units = a.limit.max_units;
    const int64_t total = tokens * (heads_q + heads_k);
    p.mapping = state_->mapping();
    guarded(*state_, kName, [&] { launch_rotary(p, nullptr); });
    return {total, units_to_run(a.limit, total)};
  }

 private:
  std::shared_ptr<BackendState> state_;
};

namespace {
int64_t require_key_value(const AttentionConfig& cfg, const TensorView& key,
                          const TensorView& value, const TensorView& slots,
                          const KvCacheViews& cache, VCacheLayout v_layout, bool token_scales) {
  validate_attention_config(cfg);
  RCSIM_REQUIRE(!key.is_null() && key.rank == 3, "key must be [T, Hkv, D]: {}", key.describe());
  const int64_t tokens = key.size(0);
  RCSIM_REQUIRE(tokens <= limits::kTokensPerBatchMax, "{} tokens exceed the limit", tokens);
  require_head_dim(cfg.head_dim);
  require_view(key, "key", cfg.act_dtype, {tokens, cfg.num_heads_kv, cfg.head_dim});
  require_heads_view(key, "key");
  require_view(value, "value", cfg.act_dtype, {tokens, cfg.num_heads_kv, cfg.head_dim});
  require_heads_view(value, "value");
  require_view(slots, "slot_mapping", DType::kI64, {tokens});
  require_cache(cfg, cache, v_layout, token_scales);
  require_slots(slots, cfg.num_slots());
  return tokens;
}
}  // namespace

class GpuReshapeAndCache final : public ReshapeAndCacheKernel {
 public:
  explicit GpuReshapeAndCache(std::shared_ptr<BackendState> s) : state_(std::move(s)) {}
  KernelRun run(const ReshapeAndCacheArgs& a) override {
    state_->check_usable(kName);
    require_limit(a.limit);
    const AttentionConfig& cfg = a.cfg;
    const int64_t tokens =
        require_key_value(cfg, a.key, a.value, a.slot_mapping, a.cache, a.v_layout, false);
    if (is_fp8(cfg.kv_cache_dtype)) {
      RCSIM_REQUIRE(std::isfinite(a.k_scale) && a.k_scale > 0.0f && std::isfinite(a.v_scale) &&
                        a.v_scale > 0.0f,
                    "fp8 reshape_and_cache needs finite positive scales, got k {} v {}",
                    a.k_scale, a.v_scale);
    }
    ReshapeCacheParams p;
    p.key = heads_view(a.key);
    p.value = heads_view(a.value);
    p.slots = a.slot_mapping.data_as<int64_t>();
    p.cache = cache_params(cfg, a.cache, a.v_layout);
    p.num_tokens = tokens;
    p.num_heads_kv = cfg.num_heads_kv;
    p.head_dim = cfg.head_dim;
    p.act = act_type(cfg.act_dtype);
    p.k_scale = a.k_scale;
    p.v_scale = a.v_scale;
    p.max_units = a.limit.max_units;
    p.mapping = state_->mapping();
    guarded(*state_, kName, [&] { launch_reshape_and_cache(p, nullptr); });
    return {tokens, units_to_run(a.limit, tokens)};
  }

 private:
  std::shared_ptr<BackendState> state_;
};

class GpuPerTokenQuantCache final : public PerTokenQuantCacheKernel {
 public:
  explicit GpuPerTokenQuantCache(std::shared_ptr<BackendState> s) : state_(std::move(s)) {}
  KernelRun run(const PerTokenQuantCacheArgs& a) override {
    state_->check_usable(kName);
    require_limit(a.limit);
    const AttentionConfig& cfg = a.cfg;
    RCSIM_REQUIRE(is_fp8(cfg.kv_cache_dtype),
                  "reshape_and_cache_with_pertoken_quant needs an fp8 cache, got {}",
                  kv_cache_dtype_name(cfg.kv_cache_dtype));
    const int64_t tokens =
        require_key_value(cfg, a.key, a.value, a.slot_mapping, a.cache, a.v_layout, true);
    PerTokenQuantParams p;
    p.key = heads_view(a.key);
    p.value = heads_view(a.value);
    p.slots = a.slot_mapping.data_as<int64_t>();
    p.cache = cache_params(cfg, a.cache, a.v_layout);
    p.num_tokens = tokens;
    p.num_heads_kv = cfg.num_heads_kv;
    p.head_dim = cfg.head_dim;
    p.act = act_type(cfg.act_dtype);
    p.amax_floor = cfg.amax_floor;
    p.max_units = a.limit.max_units;
    const int64_t total = tokens * cfg.num_heads_kv;
    p.mapping = state_->mapping();
    guarded(*state_, kName, [&] { launch_per_token_quant_cache(p, nullptr); });
    return {total, units_to_run(a.limit, total)};
  }

 private:
  std::shared_ptr<BackendState> state_;
};

class GpuRopeReshapeCache final : public RopeReshapeCacheKernel {
 public:
  explicit GpuRopeReshapeCache(std::shared_ptr<BackendState> s) : state_(std::move(s)) {}
  KernelRun run(const RopeReshapeCacheArgs& a) override {
    state_->check_usable(kName);
    const AttentionConfig& cfg = a.cfg;
    validate_attention_config(cfg);
    require_limit(a.limit);
    RCSIM_REQUIRE(!a.q.is_null() && a.q.rank == 3, "q must be [T, Hq, D]: {}", a.q.describe());
    const int64_t tokens = a.q.size(0);
    RCSIM_REQUIRE(tokens <= limits::kTokensPerBatchMax, "{} tokens exceed the limit", tokens);
    require_head_dim(cfg.head_dim);
    require_view(a.q, "q", cfg.act_dtype, {tokens, cfg.num_heads_q, cfg.head_dim});
    require_heads_view(a.q, "q");
    require_view(a.k, "k", cfg.act_dtype, {tokens, cfg.num_heads_kv, cfg.head_dim});
    require_heads_view(a.k, "k");
    require_view(a.v, "v", cfg.act_dtype, {tokens, cfg.num_heads_kv, cfg.head_dim});
    require_heads_view(a.v, "v");
    require_rotary(cfg.rotary_dim, cfg.head_dim, cfg.is_neox);
    require_cos_sin(a.cos_sin_cache, cfg.act_dtype, cfg.rotary_dim);
    require_view(a.positions, "positions", DType::kI64, {tokens});
    require_view(a.slot_mapping, "slot_mapping", DType::kI64, {tokens});
    require_cache(cfg, a.cache, a.v_layout, false);
    RCSIM_REQUIRE(a.apply_scale == is_fp8(cfg.kv_cache_dtype),
                  "apply_scale {} does not match kv_cache_dtype {}", a.apply_scale,
                  kv_cache_dtype_name(cfg.kv_cache_dtype));
    if (a.apply_scale) {
      RCSIM_REQUIRE(std::isfinite(a.k_scale_static) && a.k_scale_static > 0.0f &&
                        std::isfinite(a.v_scale_static) && a.v_scale_static > 0.0f,
                    "static scales must be finite and positive, got k {} v {}", a.k_scale_static,
                    a.v_scale_static);
    }
    require_positions(a.positions, a.cos_sin_cache.size(0));
    require_slots(a.slot_mapping, cfg.num_slots());
    RopeReshapeCacheParams p;
    p.q = heads_view(a.q);
    p.k = heads_view(a.k);
    p.v = heads_view(a.v);
    p.cos_sin = a.cos_sin_cache.data();
    p.positions = a.positions.data_as<int64_t>();
    p.slots = a.slot_mapping.data_as<int64_t>();
    p.cache = cache_params(cfg, a.cache, a.v_layout);
    p.num_tokens = tokens;
    p.num_heads_q = cfg.num_heads_q;
    p.num_heads_kv = cfg.num_heads_kv;
    p.head_dim = cfg.head_dim;
    p.rotary_dim = cfg.rotary_dim;
    p.act = act_type(cfg.act_dtype);
    p.is_neox = cfg.is_neox;
    p.apply_scale = a.apply_scale;
    p.k_scale = a.k_scale_static;
    p.v_scale = a.v_scale_static;
    p.max_units = a.limit.max_units;
    const int64_t total = tokens * cfg.num_heads_q;
    guarded(*state_, kName, [&] { launch_rope_reshape_cache(p, nullptr); });
    return {total, units_to_run(a.limit, total)};
  }

 private:
  std::shared_ptr<BackendState> state_;
};

// ---- memory ------------------------------------------------------------------------------------
GpuBuffer::GpuBuffer(DType dtype, std::span<const int64_t> shape) {
  int64_t n = 1;
  for (int64_t s : shape) {
    RCSIM_REQUIRE(s >= 0, "negative dimension {}", s);
    n *= s;
  }
  bytes_ = n * dtype_size_bytes(dtype);
  data_ = device_alloc(bytes_);
  view_ = TensorView::contiguous(static_cast<std::byte*>(data_), dtype, shape, DeviceTag::kGpu);
}
GpuBuffer::~GpuBuffer() { device_free(data_); }

std::unique_ptr<DeviceBuffer> GpuMemoryBackend::allocate(DType dtype,
                                                         std::span<const int64_t> shape) {
  state_->check_usable(kName);
  return std::make_unique<GpuBuffer>(dtype, shape);
}

KernelRun GpuMemoryBackend::copy(const TensorView& src, const TensorView& dst, WorkLimit limit) {
  state_->check_usable(kName);
  require_limit(limit);
  RCSIM_REQUIRE(!src.is_null() && !dst.is_null(), "copy: null view (src {}, dst {})",
                src.describe(), dst.describe());
  RCSIM_REQUIRE(src.device == DeviceTag::kGpu && dst.device == DeviceTag::kGpu,
                "copy: GPU views only (src {}, dst {})", src.describe(), dst.describe());
  RCSIM_REQUIRE(src.dtype == dst.dtype && src.rank == dst.rank && src.rank <= kCopyRankMax,
                "copy: dtype/rank mismatch (src {}, dst {})", src.describe(), dst.describe());
  for (int d = 0; d < src.rank; ++d) {
    RCSIM_REQUIRE(src.size(d) == dst.size(d), "copy: shape mismatch (src {}, dst {})",
                  src.describe(), dst.describe());
  }
  const int64_t n = src.numel();
  StridedCopyParams p;
  p.src = src.data();
  p.dst = dst.data();
  p.rank = src.rank;
  p.element_bytes = static_cast<int32_t>(dtype_size_bytes(src.dtype));
  for (int d = 0; d < src.rank; ++d) {
    const auto i = static_cast<std::size_t>(d);
    p.shape[i] = src.size(d);
    p.src_strides[i] = src.stride(d);
    p.dst_strides[i] = dst.stride(d);
  }
  p.max_units = limit.max_units;
  const int64_t run = units_to_run(limit, n);
  if (limit.unlimited() && src.is_contiguous() && dst.is_contiguous()) {
    guarded(*state_, kName, [&] {
      copy_device_to_device(dst.data(), src.data(), n * p.element_bytes, nullptr);
    });
  } else {
    guarded(*state_, kName, [&] { launch_strided_copy(p, nullptr); });
  }
  return {n, run};
}

// ---- backend -----------------------------------------------------------------------------------
GpuBackend::GpuBackend() : info_(query_device()), state_(std::make_shared<BackendState>()) {
  if (info_.device_count == 0) {
    throw KernelError(FailureClass::kUnavailable, "gpu_backend",
                      fmt::format("no {} device found", info_.platform), false);
  }
  fused_ = std::make_unique<GpuFusedQkNormRopeCache>(state_);
  rope_reshape_cache_ = std::make_unique<GpuRopeReshapeCache>(state_);
  rotary_ = std::make_unique<GpuRotaryEmbedding>(state_);
  rms_norm_ = std::make_unique<GpuRmsNorm>(state_);
  reshape_and_cache_ = std::make_unique<GpuReshapeAndCache>(state_);
  per_token_quant_cache_ = std::make_unique<GpuPerTokenQuantCache>(state_);
  memory_ = std::make_unique<GpuMemoryBackend>(state_);
}
GpuBackend::~GpuBackend() = default;

KernelSet GpuBackend::kernels() {
  return {fused_.get(),    rope_reshape_cache_.get(),    rotary_.get(), rms_norm_.get(),
          reshape_and_cache_.get(), per_token_quant_cache_.get(), memory_.get()};
}

// ---- helpers -----------------------------------------------------------------------------------
std::unique_ptr<GpuBuffer> upload(const HostTensor& host) {
  auto buf = std::make_unique<GpuBuffer>(host.dtype(), host.shape());
  if (host.bytes() > 0) copy_to_device(buf->view().data(), host.data(), host.bytes());
  return buf;
}
void upload_into(const HostTensor& host, const TensorView& device_view) {
  RCSIM_REQUIRE(device_view.device == DeviceTag::kGpu && device_view.is_contiguous() &&
                    device_view.numel() == host.numel() && device_view.dtype == host.dtype(),
                "upload_into: {} does not match the host tensor", device_view.describe());
  if (host.bytes() > 0) copy_to_device(device_view.data(), host.data(), host.bytes());
}
HostTensor download(const TensorView& device_view) {
  RCSIM_REQUIRE(device_view.device == DeviceTag::kGpu && device_view.is_contiguous(),
                "download: contiguous GPU views only: {}", device_view.describe());
  std::vector<int64_t> shape(device_view.shape.begin(),
                             device_view.shape.begin() + device_view.rank);
  HostTensor host(device_view.dtype, shape);
  if (host.bytes() > 0) copy_to_host(host.data(), device_view.data(), host.bytes());
  return host;
}

}  // namespace rcsim::gpu
