// GPU backend: argument validation (the shared checks of core/kernel_arg_checks.h under the GPU's
// rules), the translation of interface args into the kernels' params structs, WorkLimit -> device
// unit limit, and the poisoned state that models a sticky device error. Plain C++: the vendor
// runtime is reached only through gpu_runtime.h and gpu_params.h.
#include "kernels/hip/gpu_backend.h"

#include <cstring>
#include <vector>

#include <fmt/format.h>

#include "core/check.h"
#include "core/errors.h"
#include "core/kernel_arg_checks.h"
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

// ---- validation: the shared checks (core/kernel_arg_checks.h) under the GPU's rules -------------
// [T, H, D] activation views: the kernels read whole heads as vectors, so the last dim is dense
// and every head starts on a vector boundary.
void require_heads_view(const TensorView& v, std::string_view name) {
  RCSIM_REQUIRE(v.stride(2) == 1 && v.stride(0) >= 0 && v.stride(1) >= 0,
                "{} needs unit stride over D: {}", name, v.describe());
  const int64_t vec = v.size(2) / 32;  // elements per lane
  RCSIM_REQUIRE(v.offset % vec == 0 && v.stride(0) % vec == 0 && v.stride(1) % vec == 0,
                "{} heads are not aligned to {}-element vectors: {}", name, vec, v.describe());
}
std::vector<int64_t> read_i64(const TensorView& v) {
  std::vector<int64_t> host(static_cast<std::size_t>(v.size(0)));
  RCSIM_REQUIRE(v.stride(0) == 1, "i64 index views must be contiguous: {}", v.describe());
  if (!host.empty()) copy_to_host(host.data(), v.data(), v.size(0) * 8);
  return host;
}
const kernel_args::BackendRules& gpu_rules() {
  static const kernel_args::BackendRules rules{
      .device = DeviceTag::kGpu,
      .wrong_device = "is not a GPU view",
      .read_indices = &read_i64,
      .require_heads_layout = &require_heads_view,
      .dense_tables = true,
      .neox_in_whole_lanes = true,
  };
  return rules;
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

// The fused call's launch parameters (what GpuFusedQkNormRopeCache::run launches), checked first.
FusedParams fused_params_of(const FusedQkNormRopeCacheArgs& a, const BackendState& state) {
  const AttentionConfig& cfg = a.cfg;
  const int64_t tokens = kernel_args::check_fused(gpu_rules(), a);
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
  p.mapping = state.mapping();
  p.programmatic_launch = state.programmatic_launch();
  // The device-only mutant (core/mutants.h): the CPU reference has no such bug to plant.
  p.planted_v_index_bug = mutant_active(Mutant::kGpuVShuffleIndex);
  return p;
}

// ---- kernels ---------------------------------------------------------------------------------
class GpuFusedQkNormRopeCache final : public FusedQkNormRopeCacheKernel {
 public:
  explicit GpuFusedQkNormRopeCache(std::shared_ptr<BackendState> s) : state_(std::move(s)) {}
  KernelRun run(const FusedQkNormRopeCacheArgs& a) override {
    state_->check_usable(kName);
    const FusedParams p = fused_params_of(a, *state_);
    const AttentionConfig& cfg = a.cfg;
    const int64_t total = p.num_tokens * (cfg.num_heads_q + 2 * cfg.num_heads_kv);
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
    const TensorView& in = a.input;
    const kernel_args::RmsNormShape shape = kernel_args::check_rms_norm(gpu_rules(), a);
    const int64_t tokens = shape.tokens, heads = shape.heads, dim = shape.head_dim;
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
    p.programmatic_launch = state_->programmatic_launch();
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
    const TensorView& q = a.q;
    const kernel_args::RotaryShape shape = kernel_args::check_rotary(gpu_rules(), a);
    const int64_t tokens = shape.tokens, heads_q = shape.heads_q, heads_k = shape.heads_k,
                  dim = shape.head_dim;
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
    p.programmatic_launch = state_->programmatic_launch();
    guarded(*state_, kName, [&] { launch_rotary(p, nullptr); });
    return {total, units_to_run(a.limit, total)};
  }

 private:
  std::shared_ptr<BackendState> state_;
};

class GpuReshapeAndCache final : public ReshapeAndCacheKernel {
 public:
  explicit GpuReshapeAndCache(std::shared_ptr<BackendState> s) : state_(std::move(s)) {}
  KernelRun run(const ReshapeAndCacheArgs& a) override {
    state_->check_usable(kName);
    const AttentionConfig& cfg = a.cfg;
    const int64_t tokens = kernel_args::check_reshape_and_cache(gpu_rules(), a);
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
    p.programmatic_launch = state_->programmatic_launch();
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
    const AttentionConfig& cfg = a.cfg;
    const int64_t tokens = kernel_args::check_per_token_quant_cache(gpu_rules(), a);
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
    p.programmatic_launch = state_->programmatic_launch();
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
    const int64_t tokens = kernel_args::check_rope_reshape_cache(gpu_rules(), a);
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
  kernel_args::require_work_limit(limit);
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
