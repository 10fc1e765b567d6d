// The non-fused kernels on the GPU, each matching its CPU reference (kernels/cpu/kernels.h) bit for
// bit through kernels/common/qk_norm_rope_math.h:
//   rms_norm                    - per-head RMSNorm, one 32-lane group per row (same butterfly
//                                 reduction as the fused kernel), one rounding on store;
//   rotary                      - RoPE in place, fp32 math, one rounding on store;
//   reshape_and_cache           - "auto" copy or fp8(v * (1/scale)) with a per-tensor scale;
//   per_token_quant_cache       - fp8(v * (1/scale)), scale = amax/fp8_max per (token, KV head);
//   rope_reshape_cache          - branch B: RoPE q in place; the first q head of each GQA group
//                                 ropes its K head and caches K/V (per-tensor scale);
//   strided_copy                - MemoryBackend::copy, elements in row-major order.
// Each takes one params struct; units at or past max_units store nothing (device-side torn writes)
// in the unit order core/kernel_interfaces.h documents. These are the reference-mapping forms
// (AITER's 32 lanes per head); the launchers run the tiled forms (nonfused_tiled.hip) instead
// wherever those apply, unless the params ask for the reference mapping.
#include "kernels/hip/device_common.h"
#include "kernels/hip/gpu_runtime.h"
#include "kernels/hip/nonfused_tiled.h"

namespace rcsim::gpu {
namespace {

int64_t blocks_for_units(int64_t units) {
  return (units + dev::kGroupsPerBlock - 1) / dev::kGroupsPerBlock;
}

template <int N>
__device__ __forceinline__ void load_head_values(const HeadsView& v, int64_t token, int64_t head,
                                                 int lane, ActType act, uint16_t (&bits)[N],
                                                 float (&vals)[N]) {
  const uint16_t* src =
      static_cast<const uint16_t*>(v.data) + token * v.token_stride + head * v.head_stride;
  dev::load_bits<N>(src + lane * N, bits);
#pragma unroll
  for (int i = 0; i < N; ++i) vals[i] = dev::act_to_float(bits[i], act);
}
template <int N>
__device__ __forceinline__ void store_head_values(const HeadsView& v, int64_t token, int64_t head,
                                                  int lane, ActType act, const float (&vals)[N]) {
  uint16_t bits[N];
#pragma unroll
  for (int i = 0; i < N; ++i) bits[i] = dev::float_to_act(vals[i], act);
  uint16_t* dst = static_cast<uint16_t*>(v.data) + token * v.token_stride + head * v.head_stride;
  dev::store_bits<N>(dst + lane * N, bits);
}

// ---- rms_norm: units g = token*H + head ------------------------------------------------------
template <int N>
__global__ void __launch_bounds__(dev::kBlockThreads) rms_norm_kernel(RmsNormParams p) {
  const int64_t g = dev::group_index();
  if (g >= p.num_tokens * p.num_heads || !dev::unit_allowed(g, p.max_units)) return;
  const int lane = dev::lane_index();
  const dev::Split32 th = dev::split_u32(g, p.num_heads);
  const int64_t token = th.quot;
  const int64_t head = th.rem;
  uint16_t bits[N];
  float vals[N];
  load_head_values<N>(p.in, token, head, lane, p.act, bits, vals);
  uint16_t wbits[N];
  dev::load_bits<N>(static_cast<const uint16_t*>(p.weight) + lane * N, wbits);
  const float rcp = dev::head_rms_inverse<N>(vals, static_cast<int>(p.head_dim), p.eps);
#pragma unroll
  for (int i = 0; i < N; ++i) {
    vals[i] = qk_math::rms_normalise(vals[i], rcp, dev::act_to_float(wbits[i], p.act));
  }
  store_head_values<N>(p.out, token, head, lane, p.act, vals);
}

// ---- rotary: q units then k units --------------------------------------------------------------
template <int N>
__global__ void __launch_bounds__(dev::kBlockThreads) rotary_kernel(RotaryParams p) {
  const int64_t g = dev::group_index();
  const int64_t q_units = p.num_tokens * p.num_heads_q;
  const int64_t k_units = p.k.data != nullptr ? p.num_tokens * p.num_heads_kv : 0;
  if (g >= q_units + k_units || !dev::unit_allowed(g, p.max_units)) return;
  const int lane = dev::lane_index();
  const bool is_q = g < q_units;
  const int64_t local = is_q ? g : g - q_units;
  const int64_t heads = is_q ? p.num_heads_q : p.num_heads_kv;
  const dev::Split32 th = dev::split_u32(local, heads);
  const int64_t token = th.quot;
  const int64_t head = th.rem;
  const HeadsView& view = is_q ? p.q : p.k;
  uint16_t bits[N];
  float vals[N];
  load_head_values<N>(view, token, head, lane, p.act, bits, vals);
  const uint16_t* row = static_cast<const uint16_t*>(p.cos_sin) + p.positions[token] * p.rotary_dim;
  float c[N], sn[N];
  dev::load_cos_sin<N>(row, lane, static_cast<int>(p.rotary_dim), p.is_neox, p.act, c, sn);
  dev::rope_head<N>(vals, lane, static_cast<int>(p.rotary_dim), p.is_neox, c, sn);
  store_head_values<N>(view, token, head, lane, p.act, vals);
}

// Quantises (or copies) one head into one cache side. scale_rcp multiplies (per-tensor/per-token
// reshape_and_cache convention); fp8 only.
template <int N>
__device__ __forceinline__ void cache_head_multiply(const CacheParams& c, bool is_key,
                                                    const dev::LaneCacheOffsets& o,
                                                    const uint16_t (&bits)[N],
                                                    const float (&vals)[N], float scale_rcp) {
  uint8_t codes[N] = {};
  if (c.type != CacheType::kActivation) {
    const numeric::Fp8Format fmt = dev::fp8_format_of(c.type);
#pragma unroll
    for (int i = 0; i < N; ++i) codes[i] = qk_math::fp8_quantise_multiply(vals[i], scale_rcp, fmt);
  }
  dev::store_cache_head<N>(c, is_key, o, bits, codes);
}

// ---- reshape_and_cache: units = tokens (one group per (token, head); the limit is by token) ----
template <int N>
__global__ void __launch_bounds__(dev::kBlockThreads) reshape_and_cache_kernel(ReshapeCacheParams p) {
  const int64_t g = dev::group_index();
  if (g >= p.num_tokens * p.num_heads_kv) return;
  const dev::Split32 th = dev::split_u32(g, p.num_heads_kv);
  const int64_t token = th.quot;
  const int64_t head = th.rem;
  if (!dev::unit_allowed(token, p.max_units)) return;
  const int64_t slot = p.slots[token];
  if (slot < 0) return;
  const int lane = dev::lane_index();
  const dev::LaneCacheOffsets o =
      dev::cache_lane_offsets(p.cache, p.num_heads_kv, p.head_dim, slot, head, lane, N);
  uint16_t bits[N], vbits[N];
  float vals[N], vvals[N];
  load_head_values<N>(p.key, token, head, lane, p.act, bits, vals);
  load_head_values<N>(p.value, token, head, lane, p.act, vbits, vvals);
  cache_head_multiply<N>(p.cache, true, o, bits, vals, qk_math::scale_reciprocal(p.k_scale));
  cache_head_multiply<N>(p.cache, false, o, vbits, vvals, qk_math::scale_reciprocal(p.v_scale));
}

// ---- per-token quant: units g = token*Hkv + head ---------------------------------------------
template <int N>
__device__ __forceinline__ void per_token_side(const PerTokenQuantParams& p, bool is_key,
                                               const dev::LaneCacheOffsets& o, int64_t token,
                                               int64_t head, int lane) {
  uint16_t bits[N];
  float vals[N];
  load_head_values<N>(is_key ? p.key : p.value, token, head, lane, p.act, bits, vals);
  const numeric::Fp8Format fmt = dev::fp8_format_of(p.cache.type);
  float lane_amax = 0.0f;
#pragma unroll
  for (int i = 0; i < N; ++i) lane_amax = qk_math::amax_step(lane_amax, vals[i]);
  const float scale =
      qk_math::fp8_scale_from_amax(dev::group_max(lane_amax), numeric::fp8_max(fmt), p.amax_floor);
  cache_head_multiply<N>(p.cache, is_key, o, bits, vals, qk_math::scale_reciprocal(scale));
  if (lane == 0) (is_key ? p.cache.k_scale : p.cache.v_scale)[o.scale] = scale;
}
template <int N>
__global__ void __launch_bounds__(dev::kBlockThreads) per_token_quant_kernel(PerTokenQuantParams p) {
  const int64_t g = dev::group_index();
  if (g >= p.num_tokens * p.num_heads_kv || !dev::unit_allowed(g, p.max_units)) return;
  const dev::Split32 th = dev::split_u32(g, p.num_heads_kv);
  const int64_t token = th.quot;
  const int64_t head = th.rem;
  const int64_t slot = p.slots[token];
  if (slot < 0) return;
  const int lane = dev::lane_index();
  const dev::LaneCacheOffsets o =
      dev::cache_lane_offsets(p.cache, p.num_heads_kv, p.head_dim, slot, head, lane, N);
  per_token_side<N>(p, true, o, token, head, lane);
  per_token_side<N>(p, false, o, token, head, lane);
}

// ---- branch B: units g = token*Hq + head -----------------------------------------------------
template <int N>
__global__ void __launch_bounds__(dev::kBlockThreads) rope_reshape_cache_kernel(RopeReshapeCacheParams p) {
  const int64_t g = dev::group_index();
  if (g >= p.num_tokens * p.num_heads_q || !dev::unit_allowed(g, p.max_units)) return;
  const int lane = dev::lane_index();
  const dev::Split32 th = dev::split_u32(g, p.num_heads_q);
  const int64_t token = th.quot;
  const int64_t hq = th.rem;
  const uint16_t* row = static_cast<const uint16_t*>(p.cos_sin) + p.positions[token] * p.rotary_dim;
  const int rot = static_cast<int>(p.rotary_dim);
  float c[N], sn[N];
  dev::load_cos_sin<N>(row, lane, rot, p.is_neox, p.act, c, sn);
  uint16_t bits[N];
  float vals[N];
  load_head_values<N>(p.q, token, hq, lane, p.act, bits, vals);
  dev::rope_head<N>(vals, lane, rot, p.is_neox, c, sn);
  store_head_values<N>(p.q, token, hq, lane, p.act, vals);

  const int64_t group_size = p.num_heads_q / p.num_heads_kv;
  if (hq % group_size != 0) return;
  const int64_t slot = p.slots[token];
  if (slot < 0) return;
  const int64_t hk = hq / group_size;
  load_head_values<N>(p.k, token, hk, lane, p.act, bits, vals);
  dev::rope_head<N>(vals, lane, rot, p.is_neox, c, sn);
  store_head_values<N>(p.k, token, hk, lane, p.act, vals);
#pragma unroll
  for (int i = 0; i < N; ++i) {
    bits[i] = dev::float_to_act(vals[i], p.act);
    vals[i] = dev::act_to_float(bits[i], p.act);  // the cache gets the rounded roped K
  }
  const dev::LaneCacheOffsets o =
      dev::cache_lane_offsets(p.cache, p.num_heads_kv, p.head_dim, slot, hk, lane, N);
  cache_head_multiply<N>(p.cache, true, o, bits, vals,
                         qk_math::scale_reciprocal(p.apply_scale ? p.k_scale : 1.0f));
  load_head_values<N>(p.v, token, hk, lane, p.act, bits, vals);
  cache_head_multiply<N>(p.cache, false, o, bits, vals,
                         qk_math::scale_reciprocal(p.apply_scale ? p.v_scale : 1.0f));
}

// ---- strided copy: units = elements of src in row-major order ---------------------------------
__global__ void strided_copy_kernel(StridedCopyParams p, int64_t count) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < count;
       e += stride) {
    int64_t rem = e;
    int64_t so = 0;
    int64_t dof = 0;
    for (int d = p.rank - 1; d >= 0; --d) {
      const int64_t i = rem % p.shape[d];
      rem /= p.shape[d];
      so += i * p.src_strides[d];
      dof += i * p.dst_strides[d];
    }
    const auto* src = static_cast<const uint8_t*>(p.src) + so * p.element_bytes;
    auto* dst = static_cast<uint8_t*>(p.dst) + dof * p.element_bytes;
    for (int b = 0; b < p.element_bytes; ++b) dst[b] = src[b];
  }
}

}  // namespace

#define RCSIM_LAUNCH_HEAD_DIM(kernel, params, units, stream, name)                       \
  do {                                                                                  \
    if ((units) <= 0) return;                                                           \
    const dim3 grid_(static_cast<unsigned>(blocks_for_units(units)));                   \
    const dim3 block_(dev::kBlockThreads);                                              \
    auto* s_ = static_cast<hipStream_t>(stream);                                        \
    switch ((params).head_dim) {                                                        \
      case 64: kernel<2><<<grid_, block_, 0, s_>>>(params); break;                      \
      case 128: kernel<4><<<grid_, block_, 0, s_>>>(params); break;                     \
      case 256: kernel<8><<<grid_, block_, 0, s_>>>(params); break;                     \
      default: break; /* gpu_backend.cc rejects other head dims before launching */     \
    }                                                                                   \
    check_last_error(name);                                                             \
  } while (0)

void launch_rms_norm(const RmsNormParams& p, void* stream) {
  if (p.max_units == 0) return;
  if (p.num_tokens > 0 && p.mapping != KernelMapping::kReference && launch_rms_norm_tiled(p, stream)) {
    check_last_error("rms_norm (tiled) launch");
    return;
  }
  RCSIM_LAUNCH_HEAD_DIM(rms_norm_kernel, p, p.num_tokens * p.num_heads, stream, "rms_norm launch");
}
void launch_rotary(const RotaryParams& p, void* stream) {
  if (p.max_units == 0) return;
  if (p.num_tokens > 0 && p.mapping != KernelMapping::kReference && launch_rotary_tiled(p, stream)) {
    check_last_error("rotary_embedding (tiled) launch");
    return;
  }
  const int64_t units =
      p.num_tokens * (p.num_heads_q + (p.k.data != nullptr ? p.num_heads_kv : 0));
  RCSIM_LAUNCH_HEAD_DIM(rotary_kernel, p, units, stream, "rotary_embedding launch");
}
void launch_reshape_and_cache(const ReshapeCacheParams& p, void* stream) {
  if (p.max_units == 0) return;
  if (p.num_tokens > 0 && p.mapping != KernelMapping::kReference && launch_reshape_and_cache_tiled(p, stream)) {
    check_last_error("reshape_and_cache (tiled) launch");
    return;
  }
  RCSIM_LAUNCH_HEAD_DIM(reshape_and_cache_kernel, p, p.num_tokens * p.num_heads_kv, stream,
                        "reshape_and_cache launch");
}
void launch_per_token_quant_cache(const PerTokenQuantParams& p, void* stream) {
  if (p.max_units == 0) return;
  if (p.num_tokens > 0 && p.mapping != KernelMapping::kReference && launch_per_token_quant_cache_tiled(p, stream)) {
    check_last_error("reshape_and_cache_with_pertoken_quant (tiled) launch");
    return;
  }
  RCSIM_LAUNCH_HEAD_DIM(per_token_quant_kernel, p, p.num_tokens * p.num_heads_kv, stream,
                        "reshape_and_cache_with_pertoken_quant launch");
}
void launch_rope_reshape_cache(const RopeReshapeCacheParams& p, void* stream) {
  if (p.max_units == 0) return;
  RCSIM_LAUNCH_HEAD_DIM(rope_reshape_cache_kernel, p, p.num_tokens * p.num_heads_q, stream,
                        "fused_qk_rope_reshape_and_cache launch");
}
#undef RCSIM_LAUNCH_HEAD_DIM

void launch_strided_copy(const StridedCopyParams& p, void* stream) {
  int64_t n = 1;
  for (int d = 0; d < p.rank; ++d) n *= p.shape[d];
  const int64_t count = p.max_units < 0 || p.max_units > n ? n : p.max_units;
  if (count == 0) return;
  constexpr int64_t kThreads = 256;
  constexpr int64_t kBlocksMax = 65536;  // grid-stride loop covers the rest
  const int64_t blocks_needed = (count + kThreads - 1) / kThreads;
  const int64_t blocks = blocks_needed < kBlocksMax ? blocks_needed : kBlocksMax;
  strided_copy_kernel<<<dim3(static_cast<unsigned>(blocks)), dim3(kThreads), 0,
                        static_cast<hipStream_t>(stream)>>>(p, count);
  check_last_error("strided_copy launch");
}

}  // namespace rcsim::gpu
