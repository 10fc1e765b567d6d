// Inputs: random non-zero activations in +-[0.25, 2), RMSNorm weights positive near 1
// ([0.8, 1.2)), a real trig cos/sin table (theta 1e6) rounded to the activation dtype, distinct
// slots, caches sentinel-filled. Both runs start from bit-identical copies.
#include "fidelity/fidelity_diff.h"

#include <cmath>

#include <fmt/format.h>

#include "core/check.h"
#include "core/prng.h"
#include "core/tensor.h"
#include "fault_injection/sim/attention_read.h"
#include "kernels/common/numeric.h"
#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/nonfused_reference.h"

namespace rcsim::fidelity {
namespace {

constexpr uint8_t kSentinel = 0xA5;

struct Inputs {
  HostTensor qkv, positions, slots, cos_sin, q_weight, k_weight, k_cache, v_cache, k_scale,
      v_scale;
};

Inputs make_inputs(const AttentionConfig& c, int64_t tokens, uint64_t seed) {
  Prng rng = Prng::stream(seed, "fidelity-diff", static_cast<uint64_t>(c.head_dim));
  Inputs in;
  in.qkv = HostTensor(c.act_dtype, {tokens, c.qkv_width()});
  for (uint16_t& e : in.qkv.as<uint16_t>()) {
    e = float_to_activation(rng.nonzero_float(0.25f, 2.0f), c.act_dtype);
  }
  in.positions = HostTensor(DType::kI64, {tokens});
  for (int64_t& p : in.positions.as<int64_t>()) p = rng.range(0, c.max_position - 1);
  in.slots = HostTensor(DType::kI64, {tokens});
  RCSIM_REQUIRE(tokens <= c.num_slots(), "{} tokens need more than {} slots", tokens,
                c.num_slots());
  for (int64_t t = 0; t < tokens; ++t) in.slots.as<int64_t>()[static_cast<std::size_t>(t)] = t;
  in.cos_sin = HostTensor(c.act_dtype, {c.max_position, c.rotary_dim});
  const int64_t half = c.rotary_dim / 2;
  for (int64_t p = 0; p < c.max_position; ++p) {
    for (int64_t j = 0; j < half; ++j) {
      const double freq = std::pow(1e6, -2.0 * static_cast<double>(j) / static_cast<double>(c.rotary_dim));
      const double a = static_cast<double>(p) * freq;
      auto row = in.cos_sin.as<uint16_t>();
      row[static_cast<std::size_t>(p * c.rotary_dim + j)] =
          float_to_activation(static_cast<float>(std::cos(a)), c.act_dtype);
      row[static_cast<std::size_t>(p * c.rotary_dim + half + j)] =
          float_to_activation(static_cast<float>(std::sin(a)), c.act_dtype);
    }
  }
  in.q_weight = HostTensor(c.act_dtype, {c.head_dim});
  in.k_weight = HostTensor(c.act_dtype, {c.head_dim});
  for (uint16_t& e : in.q_weight.as<uint16_t>()) {
    e = float_to_activation(0.8f + 0.4f * rng.unit_float(), c.act_dtype);
  }
  for (uint16_t& e : in.k_weight.as<uint16_t>()) {
    e = float_to_activation(0.8f + 0.4f * rng.unit_float(), c.act_dtype);
  }
  const DType cd = c.cache_storage_dtype();
  in.k_cache = HostTensor(cd, {c.num_blocks, c.num_heads_kv, c.head_dim / c.x(), c.block_size, c.x()});
  in.v_cache = HostTensor(cd, {c.num_blocks, c.num_heads_kv, c.block_size / c.x(), c.head_dim, c.x()});
  in.k_cache.fill_pattern(kSentinel);
  in.v_cache.fill_pattern(kSentinel);
  if (is_fp8(c.kv_cache_dtype)) {
    in.k_scale = HostTensor(DType::kFP32, {c.num_blocks, c.num_heads_kv, c.block_size});
    in.v_scale = HostTensor(DType::kFP32, {c.num_blocks, c.num_heads_kv, c.block_size});
    in.k_scale.fill_pattern(kSentinel);
    in.v_scale.fill_pattern(kSentinel);
  }
  return in;
}

KvCacheViews cache_views(const Inputs& in) {
  return {in.k_cache.view(), in.v_cache.view(), in.k_scale.view(), in.v_scale.view()};
}

// q and k ([T, H, D] each) after the fused kernel of `mode`; throws InvalidInput if it rejects.
std::pair<HostTensor, HostTensor> run_fused(const AttentionConfig& c, Inputs in, Fidelity mode,
                                            Inputs* after) {
  cpu::CpuBackend backend(mode);
  FusedQkNormRopeCacheArgs a{c,          in.qkv.view(),    in.q_weight.view(), in.k_weight.view(),
                             in.cos_sin.view(), in.positions.view(), in.slots.view(),
                             cache_views(in), {}, {}, {}};
  backend.kernels().fused->run(a);
  const QkvViews v = split_qkv(in.qkv.view(), c.num_heads_q, c.num_heads_kv, c.head_dim);
  const int64_t t = in.qkv.shape()[0];
  HostTensor q(c.act_dtype, {t, c.num_heads_q, c.head_dim});
  HostTensor k(c.act_dtype, {t, c.num_heads_kv, c.head_dim});
  copy_view(v.q, q.view());
  copy_view(v.k, k.view());
  if (after) *after = in;
  return {q, k};
}

// q and k after branch C in the model's order (norms, then RoPE) with the kernels of `mode`.
std::pair<HostTensor, HostTensor> run_fallback(const AttentionConfig& c, Inputs in, Fidelity mode,
                                               Inputs* after) {
  cpu::CpuBackend backend(mode);
  const QkvViews v = split_qkv(in.qkv.view(), c.num_heads_q, c.num_heads_kv, c.head_dim);
  const int64_t t = in.qkv.shape()[0];
  HostTensor q(c.act_dtype, {t, c.num_heads_q, c.head_dim});
  HostTensor k(c.act_dtype, {t, c.num_heads_kv, c.head_dim});
  copy_view(v.q, q.view());
  copy_view(v.k, k.view());
  cpu::NonFusedArgs a;
  a.cfg = c;
  a.q = q.view();
  a.k = k.view();
  a.v = v.v;
  a.q_weight = in.q_weight.view();
  a.k_weight = in.k_weight.view();
  a.cos_sin_cache = in.cos_sin.view();
  a.positions = in.positions.view();
  a.slot_mapping = in.slots.view();
  a.cache = cache_views(in);
  a.v_layout = VCacheLayout::kShuffle;
  cpu::run_nonfused(backend.kernels(), FallbackOrder::kNormThenRope, a);
  if (after) *after = in;
  return {q, k};
}

// Attention output of the last token over every token's cache entry (slots 0..T-1 in order).
std::vector<float> attention_of(const AttentionConfig& c, const Inputs& after, const HostTensor& q) {
  const int64_t t = q.shape()[0];
  std::vector<int64_t> block_table;
  for (int64_t b = 0; b * c.block_size < t; ++b) block_table.push_back(b);
  TensorView q_row = q.view();  // [T, Hq, D] -> row t-1 as [Hq, D]
  q_row.offset += (t - 1) * c.num_heads_q * c.head_dim;
  q_row.rank = 2;
  q_row.shape = {c.num_heads_q, c.head_dim, 0, 0, 0, 0};
  q_row.strides = {c.head_dim, 1, 0, 0, 0, 0};
  std::vector<float> out(static_cast<std::size_t>(c.num_heads_q * c.head_dim));
  sim::paged_attention_read({c, VCacheLayout::kShuffle}, cache_views(after), block_table, t, q_row,
                            out);
  return out;
}

DiffStats compare_floats(const std::vector<float>& a, const std::vector<float>& b) {
  DiffStats s;
  double dot = 0.0, na = 0.0, nb = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    ++s.compared;
    if (numeric::float_bits(a[i]) != numeric::float_bits(b[i])) ++s.differing;
    if (!std::isfinite(a[i]) || !std::isfinite(b[i])) continue;
    s.max_abs = std::fmax(s.max_abs, std::fabs(static_cast<double>(a[i]) - b[i]));
    dot += static_cast<double>(a[i]) * b[i];
    na += static_cast<double>(a[i]) * a[i];
    nb += static_cast<double>(b[i]) * b[i];
  }
  s.cosine = (na > 0.0 && nb > 0.0) ? dot / std::sqrt(na * nb) : 1.0;
  return s;
}

void accumulate(const HostTensor& a, const HostTensor& b, DiffStats& s, double& dot, double& na,
                double& nb) {
  const auto x = a.as<uint16_t>();
  const auto y = b.as<uint16_t>();
  for (std::size_t i = 0; i < x.size(); ++i) {
    ++s.compared;
    if (x[i] == y[i]) {
      const double v = activation_to_float(x[i], a.dtype());
      if (std::isfinite(v)) {
        dot += v * v;
        na += v * v;
        nb += v * v;
      }
      continue;
    }
    ++s.differing;
    const double u = activation_to_float(x[i], a.dtype());
    const double w = activation_to_float(y[i], b.dtype());
    if (!std::isfinite(u) || !std::isfinite(w)) continue;
    s.max_abs = std::fmax(s.max_abs, std::fabs(u - w));
    dot += u * w;
    na += u * u;
    nb += w * w;
  }
}

DiffStats compare_qk(const std::pair<HostTensor, HostTensor>& a,
                     const std::pair<HostTensor, HostTensor>& b) {
  DiffStats s;
  double dot = 0.0, na = 0.0, nb = 0.0;
  accumulate(a.first, b.first, s, dot, na, nb);
  accumulate(a.second, b.second, s, dot, na, nb);
  s.cosine = (na > 0.0 && nb > 0.0) ? dot / std::sqrt(na * nb) : 1.0;
  return s;
}

AttentionConfig shape(int64_t hq, int64_t hkv, int64_t d, int64_t rot, KvCacheDtype kv) {
  AttentionConfig c;
  c.num_heads_q = hq;
  c.num_heads_kv = hkv;
  c.head_dim = d;
  c.rotary_dim = rot;
  c.is_neox = true;
  c.kv_cache_dtype = kv;
  c.block_size = 16;
  c.num_blocks = 8;
  c.max_position = 4096;
  return c;
}

}  // namespace

std::vector<NamedConfig> default_configs() {
  using K = KvCacheDtype;
  return {
      {"Qwen3-8B D=128 rot=128 kv=auto", shape(32, 8, 128, 128, K::kAuto), true},
      {"Qwen3-8B D=128 rot=128 kv=fp8_e4m3fnuz", shape(32, 8, 128, 128, K::kFp8E4M3FNUZ), true},
      {"Qwen3-8B D=128 rot=128 kv=fp8_e4m3fn", shape(32, 8, 128, 128, K::kFp8E4M3FN), true},
      {"Qwen3-MoE-TP8 D=128 rot=128 kv=auto", shape(8, 1, 128, 128, K::kAuto), true},
      {"partial D=128 rot=96 kv=auto", shape(4, 2, 128, 96, K::kAuto), false},
      {"partial D=64 rot=48 kv=auto", shape(4, 2, 64, 48, K::kAuto), false},
      {"partial D=128 rot=64 kv=auto", shape(4, 2, 128, 64, K::kAuto), false},
  };
}

DiffRow run_diff(const NamedConfig& nc, Fidelity mode, int64_t tokens, uint64_t seed) {
  const AttentionConfig& c = nc.cfg;
  validate_attention_config(c);
  DiffRow r;
  r.config = nc.name;
  r.mode = mode;
  if (auto why = fidelity_miscomputes(c, mode)) r.miscomputes = *why;
  const Inputs in = make_inputs(c, tokens, seed);
  Inputs math_after, mode_after, math_fb_after, mode_fb_after;
  const auto math_fused = run_fused(c, in, Fidelity::kMath, &math_after);
  const auto math_fallback = run_fallback(c, in, Fidelity::kMath, &math_fb_after);
  const auto mode_fallback = run_fallback(c, in, mode, &mode_fb_after);
  r.fallback_qk = compare_qk(math_fallback, mode_fallback);
  r.fallback_attention = compare_floats(attention_of(c, math_fb_after, math_fallback.first),
                                        attention_of(c, mode_fb_after, mode_fallback.first));
  try {
    const auto mode_fused = run_fused(c, in, mode, &mode_after);
    r.fused_qk = compare_qk(math_fused, mode_fused);
    r.fused_vs_fallback = compare_qk(mode_fused, mode_fallback);
    r.fused_attention = compare_floats(attention_of(c, math_after, math_fused.first),
                                       attention_of(c, mode_after, mode_fused.first));
    RCSIM_ASSERT(math_after.k_cache.bytes() == mode_after.k_cache.bytes(), "K cache sizes differ");
    for (int64_t i = 0; i < math_after.k_cache.bytes(); ++i) {
      r.k_cache_bytes_differing += math_after.k_cache.data()[i] != mode_after.k_cache.data()[i];
    }
  } catch (const InvalidInput&) {
    r.mode_rejects = true;
  }
  return r;
}

std::string table_header() {
  return fmt::format("{:<40} {:<19} | {:<26} | {:<26} | {:<26} | {:>7} | {:<17} | {:<17}",
                     "config", "mode", "fused q/k vs math", "fallback q/k vs math",
                     "fused vs fallback (mode)", "K cache", "fused attn out", "fallback attn out");
}

namespace {
std::string cell(const DiffStats& s) {
  return fmt::format("{:>6}/{:<6} {:<5.2g} {:.6f}", s.differing, s.compared, s.max_abs, s.cosine);
}
std::string attention_cell(const DiffStats& s) {
  return fmt::format("{:<8.2g} {:.6f}", s.max_abs, s.cosine);
}
}  // namespace

std::string table_line(const DiffRow& r) {
  const std::string fused = r.mode_rejects ? fmt::format("{:<26}", "rejected (host check)")
                                           : cell(r.fused_qk);
  const std::string both = r.mode_rejects ? fmt::format("{:<26}", "-") : cell(r.fused_vs_fallback);
  const std::string attn = r.mode_rejects ? fmt::format("{:<17}", "-") : attention_cell(r.fused_attention);
  return fmt::format("{:<40} {:<19} | {} | {} | {} | {:>7} | {} | {}", r.config,
                     fidelity_name(r.mode), fused, cell(r.fallback_qk), both,
                     r.k_cache_bytes_differing, attn, attention_cell(r.fallback_attention));
}

}  // namespace rcsim::fidelity
