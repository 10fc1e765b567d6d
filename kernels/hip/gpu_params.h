// Launch parameters of every rcsim GPU kernel, one plain struct per kernel, and the launchers that
// take them. Host-compiler clean: no vendor names and no vendor types (a stream is an opaque
// pointer), so gpu_backend.cc and the benchmarks are ordinary C++ while the kernels are built by
// hipcc or nvcc. Every pointer here is a device pointer; every index and size is 64-bit.
//
// Torn writes: `max_units` makes a kernel write units [0, max_units) completely and nothing of the
// rest, in the unit order core/kernel_interfaces.h documents for that interface (-1 = all). It is
// a real device-side stop: the units past it run no store at all.
//
// Launchers throw rcsim::KernelError (core/errors.h) when the vendor runtime reports an error;
// they validate nothing else (gpu_backend.cc does, before any byte is written).
#pragma once

#include <cstdint>

namespace rcsim::gpu {

// Element type codes the kernels switch on (a subset of rcsim::DType, kept vendor-free here).
enum class ActType : int32_t { kBF16 = 0, kFP16 = 1 };
enum class CacheType : int32_t { kActivation = 0, kFp8E4M3FN = 1, kFp8E4M3FNUZ = 2 };

// A paged KV cache of one layer (semantics.md 2.3). Scales are [NB, Hkv, BS] fp32 (per token) or
// unused. v_shuffle selects [NB,H,BS/x,D,x] over plain [NB,H,D,BS].
struct CacheParams {
  void* k_cache = nullptr;
  void* v_cache = nullptr;
  float* k_scale = nullptr;
  float* v_scale = nullptr;
  int64_t num_blocks = 0;
  int64_t block_size = 0;
  int64_t x = 0;  // elements per 16 bytes of the cache element type
  CacheType type = CacheType::kActivation;
  bool v_shuffle = true;
};

// Strides (in elements) of a [T, H, D] activation view whose last dim is contiguous.
struct HeadsView {
  void* data = nullptr;
  int64_t token_stride = 0;
  int64_t head_stride = 0;
};

// Which thread mapping runs a kernel. Both write the same bits; kAuto takes the tiled
// (bandwidth-bound) one wherever it applies, kReference forces AITER's 32-lane mapping (tests
// compare the two; the benchmark reports both).
enum class KernelMapping : int32_t { kAuto = 0, kReference = 1 };

// Branch A: fused_qk_norm_rope_cache_quant_shuffle. Units g = token*(Hq+2Hkv) + head.
struct FusedParams {
  void* qkv = nullptr;  // [T, (Hq+2Hkv)*D], contiguous
  const void* q_weight = nullptr;
  const void* k_weight = nullptr;
  const void* cos_sin = nullptr;  // [max_pos, rotary_dim]
  const int64_t* positions = nullptr;
  const int64_t* slots = nullptr;
  HeadsView q_out;  // data null: write q back into qkv
  HeadsView k_out;
  CacheParams cache;
  int64_t num_tokens = 0;
  int64_t num_heads_q = 0;
  int64_t num_heads_kv = 0;
  int64_t head_dim = 0;
  int64_t rotary_dim = 0;
  ActType act = ActType::kBF16;
  bool is_neox = true;
  bool amax_floor = false;
  float eps = 1e-6f;
  int64_t max_units = -1;
  KernelMapping mapping = KernelMapping::kAuto;
  // The tiled kernel's launch may overlap the end of the stream's previous kernel (programmatic
  // dependent launch, gpu_platform.h; CUDA on sm_90+, a plain launch elsewhere): its blocks start
  // while that kernel finishes and wait for it before their first memory access, so the results
  // are the same bits. false: a plain launch, for gpu_bench's with/without rows.
  bool programmatic_launch = true;
  // Test-only: the tiled kernel stores V at a wrong shuffle index (dims d and d^1 swapped), a bug
  // that lives in device code alone. The GPU testbed's negative tests plant it to show that the
  // GPU campaign and property suites catch what the CPU ones cannot.
  bool planted_v_index_bug = false;
};
void launch_fused_qk_norm_rope_cache(const FusedParams& p, void* stream);

// Per-head RMSNorm over rows (token, head): units g = token*H + head. out may alias in.
struct RmsNormParams {
  HeadsView in;
  HeadsView out;
  const void* weight = nullptr;
  int64_t num_tokens = 0;
  int64_t num_heads = 0;
  int64_t head_dim = 0;
  ActType act = ActType::kBF16;
  float eps = 1e-6f;
  int64_t max_units = -1;
  KernelMapping mapping = KernelMapping::kAuto;
  bool programmatic_launch = true;  // the tiled kernel's launch (FusedParams says what it is)
};
void launch_rms_norm(const RmsNormParams& p, void* stream);

// RoPE in place on q then k: units g = token*Hq + head, then T*Hq + token*Hkv + head.
struct RotaryParams {
  HeadsView q;
  HeadsView k;  // data may be null
  const void* cos_sin = nullptr;
  const int64_t* positions = nullptr;
  int64_t num_tokens = 0;
  int64_t num_heads_q = 0;
  int64_t num_heads_kv = 0;
  int64_t head_dim = 0;
  int64_t rotary_dim = 0;
  ActType act = ActType::kBF16;
  bool is_neox = true;
  int64_t max_units = -1;
  KernelMapping mapping = KernelMapping::kAuto;
  bool programmatic_launch = true;  // the tiled kernel's launch (FusedParams says what it is)
};
void launch_rotary(const RotaryParams& p, void* stream);

// reshape_and_cache ("auto" copy, or fp8 times the reciprocal of a per-tensor scale): units = tokens.
struct ReshapeCacheParams {
  HeadsView key;
  HeadsView value;
  const int64_t* slots = nullptr;
  CacheParams cache;
  int64_t num_tokens = 0;
  int64_t num_heads_kv = 0;
  int64_t head_dim = 0;
  ActType act = ActType::kBF16;
  float k_scale = 1.0f;
  float v_scale = 1.0f;
  int64_t max_units = -1;
  KernelMapping mapping = KernelMapping::kAuto;
  bool programmatic_launch = true;  // the tiled kernel's launch (FusedParams says what it is)
};
void launch_reshape_and_cache(const ReshapeCacheParams& p, void* stream);

// reshape_and_cache_with_pertoken_quant: units g = token*Hkv + head.
struct PerTokenQuantParams {
  HeadsView key;
  HeadsView value;
  const int64_t* slots = nullptr;
  CacheParams cache;  // k_scale / v_scale required
  int64_t num_tokens = 0;
  int64_t num_heads_kv = 0;
  int64_t head_dim = 0;
  ActType act = ActType::kBF16;
  bool amax_floor = false;
  int64_t max_units = -1;
  KernelMapping mapping = KernelMapping::kAuto;
  bool programmatic_launch = true;  // the tiled kernel's launch (FusedParams says what it is)
};
void launch_per_token_quant_cache(const PerTokenQuantParams& p, void* stream);

// Branch B (fused_qk_rope_reshape_and_cache): units g = token*Hq + head.
struct RopeReshapeCacheParams {
  HeadsView q;
  HeadsView k;
  HeadsView v;
  const void* cos_sin = nullptr;
  const int64_t* positions = nullptr;
  const int64_t* slots = nullptr;
  CacheParams cache;
  int64_t num_tokens = 0;
  int64_t num_heads_q = 0;
  int64_t num_heads_kv = 0;
  int64_t head_dim = 0;
  int64_t rotary_dim = 0;
  ActType act = ActType::kBF16;
  bool is_neox = true;
  bool apply_scale = false;
  float k_scale = 1.0f;
  float v_scale = 1.0f;
  int64_t max_units = -1;
};
void launch_rope_reshape_cache(const RopeReshapeCacheParams& p, void* stream);

// dst <- src for strided views of rank <= 6 with one element size; units = elements of src in
// row-major order (MemoryBackend::copy).
inline constexpr int kCopyRankMax = 6;
struct StridedCopyParams {
  const void* src = nullptr;
  void* dst = nullptr;
  int32_t rank = 0;
  int32_t element_bytes = 0;
  int64_t shape[kCopyRankMax] = {};
  int64_t src_strides[kCopyRankMax] = {};
  int64_t dst_strides[kCopyRankMax] = {};
  int64_t max_units = -1;
};
void launch_strided_copy(const StridedCopyParams& p, void* stream);

}  // namespace rcsim::gpu
