#include "fault_injection/sim/checkers/attention_checker.h"

#include <cmath>
#include <cstring>
#include <span>
#include <vector>

#include <fmt/format.h>

#include "core/mutants.h"
#include "core/nan_class.h"
#include "fault_injection/sim/attention_read.h"
#include "fault_injection/sim/digest.h"

namespace rcsim::sim {

namespace {

TensorView row_view(const TensorView& heads, int64_t token) {
  // [T, H, D] -> [H, D] of one token.
  TensorView v = heads;
  v.rank = 2;
  v.shape = {heads.size(1), heads.size(2), 0, 0, 0, 0};
  v.strides = {heads.stride(1), heads.stride(2), 0, 0, 0, 0};
  v.offset = heads.offset + token * heads.stride(0);
  return v;
}

}  // namespace

void check_attention(const CheckContext& ctx, const Step& step, std::span<const Request> requests,
                     const AttentionInputs& in, Digest& digest_out) {
  const AttentionConfig& attn = ctx.attn;
  RunResult& result = ctx.result;
  const int64_t n = attn.num_heads_q * attn.head_dim;
  std::vector<float> out_sut(static_cast<std::size_t>(n)), out_exp(out_sut.size()),
      out_shadow(out_sut.size());
  const CacheReadSpec spec{attn, in.written_v_layout};
  const CacheReadSpec shadow_spec{attn, VCacheLayout::kShuffle};
  // Model order: q/k equal the fused path's bit for bit (CPU reference contract), so with an
  // "auto" cache the read must be identical; an fp8 cache may differ by the quantisation
  // arithmetic (divide vs multiply by the reciprocal), up to about one fp8 step. The PR order
  // (even with symmetric weights, which only make it equal up to rounding) is measured only.
  const bool enforce_vs_shadow = fallback_order_of(ctx.cfg.policy) == FallbackOrder::kNormThenRope;
  const float tol = is_fp8(attn.kv_cache_dtype) ? 0.125f : 0.0f;
  for (const auto& [ri, row] : step.last_row_of_request) {
    const Request& r = requests[static_cast<std::size_t>(ri)];
    const int64_t ctx_tokens = step.rows[static_cast<std::size_t>(row)].position + 1;
    {
      ScopedMutant mutant(ctx.cfg.mutant);  // the reader is part of the system under test
      paged_attention_read(spec, in.cache_sut, r.block_table, ctx_tokens, row_view(in.q_sut, row),
                           out_sut);
    }
    paged_attention_read(spec, in.cache_expected, r.block_table, ctx_tokens,
                         row_view(in.q_expected, row), out_exp);
    paged_attention_read(shadow_spec, in.cache_shadow, r.block_table, ctx_tokens,
                         row_view(in.q_shadow, row), out_shadow);
    // The reads are computed: a NaN's bits follow the q / K bits the backend produced (a GPU's
    // canonical NaN, the CPU's default NaN), so both are compared and hashed with one NaN
    // pattern (core/nan_class.h); NaN-ness itself still has to match.
    canonicalise_nans(DType::kFP32, std::as_writable_bytes(std::span<float>(out_sut)));
    canonicalise_nans(DType::kFP32, std::as_writable_bytes(std::span<float>(out_exp)));
    digest_out.bytes(out_sut.data(), out_sut.size() * sizeof(float));
    if (std::memcmp(out_sut.data(), out_exp.data(), out_sut.size() * sizeof(float)) != 0) {
      int64_t i = 0;
      while (i < n && std::memcmp(&out_sut[static_cast<std::size_t>(i)],
                                  &out_exp[static_cast<std::size_t>(i)], sizeof(float)) == 0) {
        ++i;
      }
      fail(RunVerdict::kCorrectness,
           fmt::format("step {} layer {}: attention read of request {} (context {}) differs from "
                       "the expected cache's at (head {}, dim {}): {} vs {}",
                       ctx.step, ctx.layer, r.id, ctx_tokens, i / attn.head_dim, i % attn.head_dim,
                       out_sut[static_cast<std::size_t>(std::min(i, n - 1))],
                       out_exp[static_cast<std::size_t>(std::min(i, n - 1))]));
    }
    // Against the fault-free, all-fused shadow: measured always, enforced for model order.
    double max_diff = 0.0;
    int64_t first_bad = -1;
    for (int64_t i = 0; i < n; ++i) {
      const float a = out_exp[static_cast<std::size_t>(i)];
      const float b = out_shadow[static_cast<std::size_t>(i)];
      const double diff = std::fabs(static_cast<double>(a) - static_cast<double>(b));
      max_diff = std::max(max_diff, diff);
      if (first_bad < 0 && !(diff <= tol + tol * std::fabs(b))) first_bad = i;
    }
    ++result.attention_reads;
    if (max_diff > 0.0) ++result.attention_reads_differing;
    result.attention_max_abs_diff = std::max(result.attention_max_abs_diff, max_diff);
    if (enforce_vs_shadow && first_bad >= 0 && in.written_v_layout == VCacheLayout::kShuffle) {
      fail(RunVerdict::kCorrectness,
           fmt::format("step {} layer {}: attention of request {} after a model-order "
                       "fallback differs from the fault-free shadow beyond tolerance {} at "
                       "(head {}, dim {}): {} vs {}",
                       ctx.step, ctx.layer, r.id, tol, first_bad / attn.head_dim,
                       first_bad % attn.head_dim, out_exp[static_cast<std::size_t>(first_bad)],
                       out_shadow[static_cast<std::size_t>(first_bad)]));
    }
    result.checks_passed += 2;
  }
}

}  // namespace rcsim::sim
