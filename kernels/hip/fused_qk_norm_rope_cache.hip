// Branch A on the GPU: fused_qk_norm_rope_cache_quant_shuffle (semantics.md 2.1; partial rotary as
// 2.2), reference-mapping form: AITER's own thread mapping, any supported configuration. The
// launcher below runs the tiled form (fused_qk_norm_rope_cache_tiled.hip) where it applies. Must match rcsim::cpu::CpuFusedQkNormRopeCache bit for bit: every operation goes through
// kernels/common/qk_norm_rope_math.h, built without FMA contraction and with IEEE sqrt/division.
//
// Mapping (as AITER): one 32-lane group per work unit g = token*(Hq+2Hkv) + head, heads Q, K, V;
// lane l owns dims [l*n, l*n+n), n = D/32. Q/K: load, RMS over the group (butterfly), normalise and
// round to the activation dtype, RoPE, round, store back (qkv or q_out/k_out). V: no norm, no
// RoPE, no write-back. K/V of tokens with slot >= 0 go to the paged cache: "auto" stores the bits,
// fp8 stores fp8(v / scale) with scale = amax/fp8_max per (token, KV head) (a true division).
// Units at or past max_units store nothing: device-side torn writes.
// Latency: every independent global load (the head, weights, position, slot, the cos/sin row) is
// issued before the reduction, so a small-T call pays about one memory round trip, not five.
#include "kernels/hip/device_common.h"
#include "kernels/hip/fused_tiled.h"
#include "kernels/hip/gpu_runtime.h"

namespace rcsim::gpu {
namespace {

template <int N>
__global__ void __launch_bounds__(dev::kBlockThreads)
    fused_qk_norm_rope_cache_kernel(FusedParams p) {
  const int64_t g = dev::group_index();
  const int64_t heads_total = p.num_heads_q + 2 * p.num_heads_kv;
  if (g >= p.num_tokens * heads_total) return;
  if (!dev::unit_allowed(g, p.max_units)) return;
  const int lane = dev::lane_index();
  const dev::Split32 th = dev::split_u32(g, heads_total);
  const int64_t token = th.quot;
  const int64_t head = th.rem;
  const bool is_q = head < p.num_heads_q;
  const bool is_v = head >= p.num_heads_q + p.num_heads_kv;
  const int head_dim = static_cast<int>(p.head_dim);

  uint16_t* qkv_head =
      static_cast<uint16_t*>(p.qkv) + token * heads_total * p.head_dim + head * p.head_dim;
  uint16_t bits[N];
  dev::load_bits<N>(qkv_head + lane * N, bits);
  const int64_t slot = is_q ? -1 : p.slots[token];

  if (!is_v) {
    const int64_t pos = p.positions[token];
    uint16_t wbits[N];
    dev::load_bits<N>(static_cast<const uint16_t*>(is_q ? p.q_weight : p.k_weight) + lane * N,
                      wbits);
    float c[N], s[N];
    const uint16_t* row = static_cast<const uint16_t*>(p.cos_sin) + pos * p.rotary_dim;
    dev::load_cos_sin<N>(row, lane, static_cast<int>(p.rotary_dim), p.is_neox, p.act, c, s);
    float vals[N];
#pragma unroll
    for (int i = 0; i < N; ++i) vals[i] = dev::act_to_float(bits[i], p.act);
    const float rcp = dev::head_rms_inverse<N>(vals, head_dim, p.eps);
#pragma unroll
    for (int i = 0; i < N; ++i) {
      const float normed = qk_math::rms_normalise(vals[i], rcp, dev::act_to_float(wbits[i], p.act));
      vals[i] = dev::act_to_float(dev::float_to_act(normed, p.act), p.act);  // round after norm
    }
    dev::rope_head<N>(vals, lane, static_cast<int>(p.rotary_dim), p.is_neox, c, s);
#pragma unroll
    for (int i = 0; i < N; ++i) bits[i] = dev::float_to_act(vals[i], p.act);  // round after RoPE
    uint16_t* dst = qkv_head;
    const HeadsView& out = is_q ? p.q_out : p.k_out;
    if (out.data != nullptr) {
      const int64_t h = is_q ? head : head - p.num_heads_q;
      dst = static_cast<uint16_t*>(out.data) + token * out.token_stride + h * out.head_stride;
    }
    dev::store_bits<N>(dst + lane * N, bits);
    if (is_q) return;
  }

  if (slot < 0) return;  // padding: normalised and rotated, never cached
  const int64_t h = is_v ? head - p.num_heads_q - p.num_heads_kv : head - p.num_heads_q;
  const dev::LaneCacheOffsets o =
      dev::cache_lane_offsets(p.cache, p.num_heads_kv, p.head_dim, slot, h, lane, N);
  uint8_t codes[N] = {};
  if (p.cache.type != CacheType::kActivation) {
    const numeric::Fp8Format fmt = dev::fp8_format_of(p.cache.type);
    float lane_amax = 0.0f;
    float vals[N];
#pragma unroll
    for (int i = 0; i < N; ++i) {
      vals[i] = dev::act_to_float(bits[i], p.act);
      lane_amax = qk_math::amax_step(lane_amax, vals[i]);
    }
    const float amax = dev::group_max(lane_amax);
    const float scale = qk_math::fp8_scale_from_amax(amax, numeric::fp8_max(fmt), p.amax_floor);
#pragma unroll
    for (int i = 0; i < N; ++i) codes[i] = qk_math::fp8_quantise_divide(vals[i], scale, fmt);
    if (lane == 0) (is_v ? p.cache.v_scale : p.cache.k_scale)[o.scale] = scale;
  }
  dev::store_cache_head<N>(p.cache, !is_v, o, bits, codes);
}

}  // namespace

void launch_fused_qk_norm_rope_cache(const FusedParams& p, void* stream) {
  const int64_t units = p.num_tokens * (p.num_heads_q + 2 * p.num_heads_kv);
  if (units == 0 || p.max_units == 0) return;
  if (p.mapping != KernelMapping::kReference && tiled_fused_supported(p)) {
    launch_fused_tiled(p, stream);
    check_last_error("fused_qk_norm_rope_cache_quant_shuffle (tiled) launch");
    return;
  }
  const int64_t blocks = (units + dev::kGroupsPerBlock - 1) / dev::kGroupsPerBlock;
  const dim3 grid(static_cast<unsigned>(blocks));
  const dim3 block(dev::kBlockThreads);
  auto* s = static_cast<hipStream_t>(stream);
  switch (p.head_dim) {
    case 64: fused_qk_norm_rope_cache_kernel<2><<<grid, block, 0, s>>>(p); break;
    case 128: fused_qk_norm_rope_cache_kernel<4><<<grid, block, 0, s>>>(p); break;
    case 256: fused_qk_norm_rope_cache_kernel<8><<<grid, block, 0, s>>>(p); break;
    default: break;  // gpu_backend.cc rejects other head dims before launching
  }
  check_last_error("fused_qk_norm_rope_cache_quant_shuffle launch");
}

}  // namespace rcsim::gpu
