// CPU reference of aiter.fused_qk_norm_rope_cache_quant_shuffle (semantics.md 2.1; partial
// rotary and out-of-place q/k outputs as in 2.2).
//
// Work units: one per (token, head) over all Hq + 2*Hkv heads, g = token * (Hq+2Hkv) + head,
//   heads ordered Q, K, V - the real kernel's 32-lane groups, in launch order.
// Q and K units:
//   1. load D activation values (fp32);
//   2. sum of squares in the 32-lane order (qk_math::head_sum_squares), rcp = 1/sqrtf(sum/D+eps),
//      x = act((x * rcp) * w)            <- rounding 1 (weight = q_weight or k_weight)
//   3. RoPE from the bf16/fp16 cos/sin row of positions[token]: out = x*cos + p*sin (fp32),
//      x = act(out)                      <- rounding 2; dims >= rotary_dim pass through
//   4. store into qkv (or q_out / k_out when set). Padded tokens (slot < 0) are still processed.
// K and V units with slot >= 0 then write the cache (V units read raw V; V is never written to
// qkv): "auto" copies the activation bits; fp8 computes amax over the head's values (post-RoPE K,
// raw V), scale = amax / fp8_max (floored iff cfg.amax_floor), stores the scale at
// [block, head, token_in_block] and codes fp8(x / scale) - a true division, unlike the
// reshape_and_cache kernels' multiply by the reciprocal. K goes to the x-packed layout, V to the
// shuffle layout (always; a 4-D v_cache is only a label over shuffle memory).
//
// Mutants (core/mutants.h) apply here, at the step named: kEpsOutsideRoot (2), kRopeSignFlipped
// and kPairingSwapped (3), kVWrittenBack (V normalised and rotated like K and stored into qkv),
// kSlotOffByOne (cache slot + 1, wrapping at the end of the cache), kPaddedTokensCached (slot < 0
// written to slot 0), kFp8MaxOtherFormat (the other fp8 format's max), kScaleNotStored.
//
// Fidelity (core/fidelity.h): under an aiter-* mode, step 3's NeoX partner comes from the XOR lane
// (neox_partner_by_xor_lane), Mar26 rejects partial rotary, the fp8 amax starts from each lane's
// first element with the version's floor, and a NaN created by the division is +qNaN.
#include <cmath>

#include "core/check.h"
#include "core/mutants.h"
#include "kernels/common/qk_norm_rope_math.h"
#include "kernels/cpu/aiter_fidelity.h"
#include "kernels/cpu/detail.h"
#include "kernels/cpu/kernels.h"

namespace rcsim::cpu {
namespace {

using namespace detail;

void validate(const FusedQkNormRopeCacheArgs& a, Fidelity fidelity) {
  const AttentionConfig& cfg = a.cfg;
  // The config first, so that a bad one is named before the fidelity rule reads it (check_fused
  // validates it again; cheap).
  validate_attention_config(cfg);
  if (fidelity_switches(fidelity).partial_rotary_rejected) {
    // AITER@Mar26's host check (fused_qk_norm_rope_cache_quant.cu @81b32f30): full rotary only.
    RCSIM_REQUIRE(cfg.rotary_dim == cfg.head_dim,
                  "{}: cos_sin_cache must have head_dim {} columns (rotary_dim {}): this AITER "
                  "version rotates the whole head only",
                  fidelity_name(fidelity), cfg.head_dim, cfg.rotary_dim);
  }
  kernel_args::check_fused(host_rules(), a);
}

float rms_rcp(const HeadValues& x, int dim, float eps) {
  const float sum_sq = qk_math::head_sum_squares(x.data(), dim);
  if (mutant_active(Mutant::kEpsOutsideRoot)) {
    return 1.0f / (sqrtf(sum_sq / static_cast<float>(dim)) + eps);
  }
  return qk_math::rms_inverse(sum_sq, dim, eps);
}

// Steps 2 and 3 on one head; returns the final activation bits (and their values in x).
void norm_rope_head(const AttentionConfig& cfg, const FidelitySwitches& fid, const HeadValues& w,
                    const HeadValues& cos_row, const HeadValues& sin_row, HeadBits& bits,
                    HeadValues& x) {
  const int dim = static_cast<int>(cfg.head_dim);
  const float rcp = rms_rcp(x, dim, cfg.eps);
  for (int d = 0; d < dim; ++d) {
    const auto i = static_cast<std::size_t>(d);
    bits[i] = float_to_activation(qk_math::rms_normalise(x[i], rcp, w[i]), cfg.act_dtype);
    x[i] = activation_to_float(bits[i], cfg.act_dtype);
  }
  const bool neox = mutant_active(Mutant::kPairingSwapped) ? !cfg.is_neox : cfg.is_neox;
  const bool sign_flipped = mutant_active(Mutant::kRopeSignFlipped);
  const int rot = static_cast<int>(cfg.rotary_dim);
  HeadValues out = x;
  const bool xor_partner = neox && fid.neox_partner_by_xor_lane;
  for (int d = 0; d < rot; ++d) {
    const auto i = static_cast<std::size_t>(d);
    if (xor_partner && !sign_flipped) {
      const int h = qk_math::rope_freq_index(d, rot, true);
      const float p = aiter::neox_xor_partner(x.data(), d, rot, dim);
      const float signed_p = qk_math::rope_partner_negated(d, rot, true) ? -p : p;
      out[i] = qk_math::rope_rotate(x[i], signed_p, cos_row[static_cast<std::size_t>(h)],
                                    sin_row[static_cast<std::size_t>(h)]);
      continue;
    }
    if (!sign_flipped) {
      out[i] = qk_math::rope_element(x.data(), d, rot, neox, cos_row.data(), sin_row.data());
      continue;
    }
    const int h = qk_math::rope_freq_index(d, rot, neox);
    const float p = x[static_cast<std::size_t>(qk_math::rope_partner_index(d, rot, neox))];
    const float signed_p = qk_math::rope_partner_negated(d, rot, neox) ? p : -p;
    out[i] = qk_math::rope_rotate(x[i], signed_p, cos_row[static_cast<std::size_t>(h)],
                                  sin_row[static_cast<std::size_t>(h)]);
  }
  for (int d = 0; d < rot; ++d) {
    const auto i = static_cast<std::size_t>(d);
    bits[i] = float_to_activation(out[i], cfg.act_dtype);
    x[i] = activation_to_float(bits[i], cfg.act_dtype);
  }
}

void write_cache_head(const FusedQkNormRopeCacheArgs& a, const FidelitySwitches& fid,
                      CacheSide side, int64_t slot, int64_t head, const HeadBits& bits,
                      const HeadValues& x) {
  const AttentionConfig& cfg = a.cfg;
  if (mutant_active(Mutant::kSlotOffByOne)) slot = (slot + 1) % cfg.num_slots();
  const CacheSite site = cache_site(cfg, slot, head);
  if (!is_fp8(cfg.kv_cache_dtype)) {
    store_head_bits(cfg, a.cache, VCacheLayout::kShuffle, side, site, bits);
    return;
  }
  const numeric::Fp8Format fmt = fp8_format(cfg.kv_cache_dtype);
  const numeric::Fp8Format max_fmt =
      mutant_active(Mutant::kFp8MaxOtherFormat)
          ? (fmt == numeric::Fp8Format::kE4M3FN ? numeric::Fp8Format::kE4M3FNUZ
                                                : numeric::Fp8Format::kE4M3FN)
          : fmt;
  float amax = 0.0f;
  if (fid.fused_amax_from_first_element) {
    // AITER: each lane starts from its first element (warp_max = elements[0]), folds the rest
    // with fmaxf(|a|, |b|), and the butterfly combines lanes with the same fmaxf(|a|, |b|).
    // fmaxf drops a NaN operand (qk_math::butterfly_max_step: signaling ones too, as on the GPU),
    // so only an all-NaN head ends NaN (the spec's 0-start gives 0).
    const int64_t n = cfg.head_dim / qk_math::kLanesPerHead;
    for (int64_t lane = 0; lane < qk_math::kLanesPerHead; ++lane) {
      float lane_max = x[static_cast<std::size_t>(lane * n)];
      for (int64_t i = 1; i < n; ++i) {
        lane_max = qk_math::butterfly_max_step(fabsf(lane_max),
                                               fabsf(x[static_cast<std::size_t>(lane * n + i)]));
      }
      amax = lane == 0 ? lane_max : qk_math::butterfly_max_step(fabsf(amax), fabsf(lane_max));
    }
  } else {
    for (int64_t d = 0; d < cfg.head_dim; ++d) {
      amax = qk_math::amax_step(amax, x[static_cast<std::size_t>(d)]);
    }
  }
  const float scale = qk_math::fp8_scale_from_amax(amax, numeric::fp8_max(max_fmt),
                                                   fid.fused_amax_floor.value_or(cfg.amax_floor));
  HeadCodes codes{};
  for (int64_t d = 0; d < cfg.head_dim; ++d) {
    const auto i = static_cast<std::size_t>(d);
    if (fid.device_default_nan_positive) {
      codes[i] = numeric::float_to_fp8_bits(aiter::device_result(x[i] / scale, x[i], scale), fmt);
    } else {
      codes[i] = qk_math::fp8_quantise_divide(x[i], scale, fmt);
    }
  }
  store_head_codes(cfg, a.cache, VCacheLayout::kShuffle, side, site, codes);
  if (!mutant_active(Mutant::kScaleNotStored)) {
    store_f32(side == CacheSide::kKey ? a.cache.k_scale : a.cache.v_scale,
              scale_offset(cfg, site), scale);
  }
}

void load_weight(const TensorView& w, DType dt, int64_t head_dim, HeadValues& out) {
  for (int64_t d = 0; d < head_dim; ++d) {
    out[static_cast<std::size_t>(d)] =
        activation_to_float(load_bits16(w, d * w.strides[0]), dt);
  }
}

}  // namespace

KernelRun CpuFusedQkNormRopeCache::run(const FusedQkNormRopeCacheArgs& a) {
  validate(a, fidelity_);
  const FidelitySwitches fid = fidelity_switches(fidelity_);
  const AttentionConfig& cfg = a.cfg;
  const int64_t tokens = a.qkv.size(0);
  const int64_t heads_q = cfg.num_heads_q, heads_kv = cfg.num_heads_kv;
  const int64_t heads = heads_q + 2 * heads_kv;
  const int64_t total = tokens * heads;
  const int64_t run_units = units_to_run(a.limit, total);
  // qkv as [T, Hq+2Hkv, D]: head h of token t starts at t*width + h*D.
  TensorView qkv3 = a.qkv;
  qkv3.rank = 3;
  qkv3.shape = {tokens, heads, cfg.head_dim, 0, 0, 0};
  qkv3.strides = {cfg.qkv_width(), cfg.head_dim, 1, 0, 0, 0};

  HeadValues qw{}, kw{}, cos_row{}, sin_row{};
  load_weight(a.q_weight, cfg.act_dtype, cfg.head_dim, qw);
  load_weight(a.k_weight, cfg.act_dtype, cfg.head_dim, kw);
  for (int64_t g = 0; g < run_units; ++g) {
    const int64_t t = g / heads, h = g % heads;
    int64_t slot = load_i64(a.slot_mapping, t);
    if (slot < 0 && mutant_active(Mutant::kPaddedTokensCached)) slot = 0;
    HeadBits bits{};
    HeadValues x{};
    load_head(qkv3, t, h, cfg.head_dim, bits, x);
    const bool is_v = h >= heads_q + heads_kv;
    if (!is_v || mutant_active(Mutant::kVWrittenBack)) {
      load_cos_sin_row(a.cos_sin_cache, load_i64(a.positions, t), cfg.rotary_dim, cos_row,
                       sin_row);
      HeadBits normed_bits = bits;
      HeadValues normed = x;
      norm_rope_head(cfg, fid, h < heads_q ? qw : kw, cos_row, sin_row, normed_bits, normed);
      if (h < heads_q) {
        // Q heads come first, so head h is also q_out's head h.
        store_head(a.q_out.is_null() ? qkv3 : a.q_out, t, h, cfg.head_dim, normed_bits);
        continue;
      }
      if (!is_v) {
        const bool own_k = a.k_out.is_null();
        store_head(own_k ? qkv3 : a.k_out, t, own_k ? h : h - heads_q, cfg.head_dim,
                   normed_bits);
        bits = normed_bits;
        x = normed;
      } else {
        store_head(qkv3, t, h, cfg.head_dim, normed_bits);  // the mutant's bug: V written back
      }
    }
    if (slot < 0) continue;  // padding: normalised and rotated, never cached
    const int64_t kv_head = is_v ? h - heads_q - heads_kv : h - heads_q;
    write_cache_head(a, fid, is_v ? CacheSide::kValue : CacheSide::kKey, slot, kv_head, bits, x);
  }
  return {total, run_units};
}

}  // namespace rcsim::cpu
