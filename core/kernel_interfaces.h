// The kernels the rope_cache dispatcher calls, one abstract interface each, one params struct per
// kernel. The CPU reference (kernels/cpu), the GPU backend (kernels/hip), the GMock mocks
// (fakes/mocks) and the fault-injecting decorators (fakes/faults) all implement these.
//
// Work units and torn writes. Every kernel processes its work in a fixed order of units, the
// order the real GPU kernel's blocks/warps follow (each kernel's header states it). `limit`
// lets a caller stop the kernel after exactly `limit.max_units` units: units [0, k) are written
// completely, units [k, N) not at all. That is how a fault decorator models a kernel that died
// part-way: the real math runs, only less of it. Each run reports the unit count N and how many
// it completed, so decorators can pick k without knowing the kernel's internals.
//
// Failure: any kernel may throw KernelError (core/errors.h); input that violates a kernel's
// preconditions throws InvalidInput (core/check.h) before a single byte is written.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string_view>

#include "core/attention_config.h"
#include "core/tensor.h"

namespace rcsim {

struct WorkLimit {
  static constexpr int64_t kUnlimited = -1;
  int64_t max_units = kUnlimited;  // complete exactly min(max_units, N) units, then return
  bool unlimited() const { return max_units < 0; }
};

struct KernelRun {
  int64_t units_total = 0;      // N for this call
  int64_t units_completed = 0;  // == N unless limited
};

// The paged KV cache of one layer, as views. k_scale / v_scale are [NB, Hkv, BS] fp32 for the
// per-token fp8 paths, 0-d/1-element for per-tensor scales, and null for "auto".
struct KvCacheViews {
  TensorView k_cache;  // [NB, Hkv, D/x, BS, x], cache dtype
  TensorView v_cache;  // shuffle [NB, Hkv, BS/x, D, x] or plain [NB, Hkv, D, BS]
  TensorView k_scale;
  TensorView v_scale;
};

// ---- Branch A: aiter.fused_qk_norm_rope_cache_quant_shuffle (semantics.md 2.1) -------------
// Units: one per (token, head) over all Hq + 2*Hkv heads, index g = token * (Hq+2Hkv) + head,
// heads ordered Q, K, V. Q/K units normalise, round, rotate, round and write back into qkv (or
// into q_out/k_out when those are set: the out-of-place variant); K/V units of tokens with
// slot >= 0 also write the cache (and per-token scales when fp8). V is never written to qkv.
struct FusedQkNormRopeCacheArgs {
  AttentionConfig cfg;  // v layout is always shuffle for this kernel
  TensorView qkv;       // [T, (Hq+2Hkv)*D], act dtype, contiguous
  TensorView q_weight;  // [D], act dtype
  TensorView k_weight;  // [D], act dtype
  TensorView cos_sin_cache;  // [max_pos, rotary_dim], act dtype, cos half then sin half
  TensorView positions;      // [T] i64
  TensorView slot_mapping;   // [T] i64, -1 = padding
  KvCacheViews cache;
  TensorView q_out;  // optional [T, Hq, D]: write q here instead of into qkv
  TensorView k_out;  // optional [T, Hkv, D]
  WorkLimit limit;
};
class FusedQkNormRopeCacheKernel {
 public:
  static constexpr std::string_view kName = "fused_qk_norm_rope_cache_quant_shuffle";
  virtual ~FusedQkNormRopeCacheKernel() = default;
  virtual KernelRun run(const FusedQkNormRopeCacheArgs& args) = 0;
};

// ---- Branch B: aiter fused_qk_rope_reshape_and_cache (Triton; semantics.md 1.5) -------------
// RoPE on q and k in place (no norm), then K/V into the cache with a static per-tensor scale.
// Units: one per (token, q head), g = token * Hq + head; the first q head of each GQA group also
// ropes its K head and writes K/V of that head to the cache (slot >= 0 only).
struct RopeReshapeCacheArgs {
  AttentionConfig cfg;
  TensorView q;  // [T, Hq, D] (view into qkv)
  TensorView k;  // [T, Hkv, D]
  TensorView v;  // [T, Hkv, D]
  TensorView cos_sin_cache;
  TensorView positions;
  TensorView slot_mapping;
  KvCacheViews cache;
  VCacheLayout v_layout = VCacheLayout::kPlain;
  bool apply_scale = false;     // kv_cache_dtype is fp8
  float k_scale_static = 1.0f;  // ATOM's self.kv_scale
  float v_scale_static = 1.0f;
  WorkLimit limit;
};
class RopeReshapeCacheKernel {
 public:
  static constexpr std::string_view kName = "fused_qk_rope_reshape_and_cache";
  virtual ~RopeReshapeCacheKernel() = default;
  virtual KernelRun run(const RopeReshapeCacheArgs& args) = 0;
};

// ---- Rotary embedding in place (aiter rope_cached_positions_2c_fwd_inplace; 2.6) ------------
// fp32 math, one rounding on store. Partial rotary: dims >= rotary_dim pass through.
// Units: q (token, head) pairs first, g = token * Hq + head, then k pairs, N = T*(Hq+Hkv).
struct RotaryArgs {
  TensorView q;  // [T, Hq, D]
  TensorView k;  // [T, Hkv, D]; may be null
  TensorView positions;
  TensorView cos_sin_cache;  // [max_pos, rotary_dim]
  int64_t rotary_dim = 0;
  bool is_neox = true;
  WorkLimit limit;
};
class RotaryEmbeddingKernel {
 public:
  static constexpr std::string_view kName = "rotary_embedding";
  virtual ~RotaryEmbeddingKernel() = default;
  virtual KernelRun run(const RotaryArgs& args) = 0;
};

// ---- Per-head RMSNorm (aiter rmsnorm2d_fwd over [T*H, D]; 2.6) ------------------------------
// fp32 sum of squares in the fused kernel's 32-lane order (kernels/common/qk_norm_rope_math.h),
// y = (x * (1/sqrt(mean + eps))) * w, one rounding.
// Units: (token, head) rows in order, N = T*H. output may alias input.
struct RmsNormArgs {
  TensorView input;   // [T, H, D]
  TensorView output;  // [T, H, D]
  TensorView weight;  // [D]
  float eps = 1e-6f;
  WorkLimit limit;
};
class RmsNormKernel {
 public:
  static constexpr std::string_view kName = "rms_norm";
  virtual ~RmsNormKernel() = default;
  virtual KernelRun run(const RmsNormArgs& args) = 0;
};

// ---- reshape_and_cache ("auto" copy or fp8 with a per-tensor scale; 2.6) --------------------
// Units: tokens in order, N = T; a unit writes K and V of every head of that token (slot >= 0).
struct ReshapeAndCacheArgs {
  AttentionConfig cfg;  // kv_cache_dtype, block size, shape
  TensorView key;       // [T, Hkv, D]
  TensorView value;     // [T, Hkv, D]
  TensorView slot_mapping;
  KvCacheViews cache;
  VCacheLayout v_layout = VCacheLayout::kShuffle;
  float k_scale = 1.0f;  // per-tensor dequant scale (fp8 only)
  float v_scale = 1.0f;
  WorkLimit limit;
};
class ReshapeAndCacheKernel {
 public:
  static constexpr std::string_view kName = "reshape_and_cache";
  virtual ~ReshapeAndCacheKernel() = default;
  virtual KernelRun run(const ReshapeAndCacheArgs& args) = 0;
};

// ---- reshape_and_cache_with_pertoken_quant (dynamic per (token, head) fp8 scale; 2.6) -------
// scale = amax / fp8_max (amax floored at 1e-8 iff cfg.amax_floor), stored value fp8(x * (1/scale)),
// scales at [NB, Hkv, BS]. Units: (token, head) pairs, g = token * Hkv + head, N = T*Hkv.
struct PerTokenQuantCacheArgs {
  AttentionConfig cfg;  // kv_cache_dtype must be fp8
  TensorView key;
  TensorView value;
  TensorView slot_mapping;
  KvCacheViews cache;  // k_scale, v_scale required
  VCacheLayout v_layout = VCacheLayout::kShuffle;
  WorkLimit limit;
};
class PerTokenQuantCacheKernel {
 public:
  static constexpr std::string_view kName = "reshape_and_cache_with_pertoken_quant";
  virtual ~PerTokenQuantCacheKernel() = default;
  virtual KernelRun run(const PerTokenQuantCacheArgs& args) = 0;
};

// ---- Memory the dispatcher needs for its backup, scratch outputs and restore -----------------
// A buffer on the backend's device. The backup of qkv is one of these; so are the out-of-place
// scratch outputs. Fault decorators make allocate() fail (backup:oom) or copy() stop part-way.
class DeviceBuffer {
 public:
  virtual ~DeviceBuffer() = default;
  virtual TensorView view() const = 0;
};
class MemoryBackend {
 public:
  static constexpr std::string_view kName = "memory";
  virtual ~MemoryBackend() = default;
  virtual DeviceTag device() const = 0;
  virtual std::unique_ptr<DeviceBuffer> allocate(DType dtype, std::span<const int64_t> shape) = 0;
  // dst <- src, same dtype and shape, any strides. Units: elements of src in row-major order.
  virtual KernelRun copy(const TensorView& src, const TensorView& dst, WorkLimit limit = {}) = 0;
};

// Every kernel a dispatcher may call. Non-owning: the backend owns the implementations.
struct KernelSet {
  FusedQkNormRopeCacheKernel* fused = nullptr;  // null = module not built
  RopeReshapeCacheKernel* rope_reshape_cache = nullptr;
  RotaryEmbeddingKernel* rotary = nullptr;
  RmsNormKernel* rms_norm = nullptr;
  ReshapeAndCacheKernel* reshape_and_cache = nullptr;
  PerTokenQuantCacheKernel* per_token_quant_cache = nullptr;
  MemoryBackend* memory = nullptr;
};

}  // namespace rcsim
