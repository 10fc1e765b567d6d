// CPU reference of in-place rotary embedding (aiter rope_cached_positions_2c_fwd_inplace, vLLM
// rotary_embedding; semantics.md 2.6, 3.2).
//
// Work units: q (token, head) pairs first, g = token * Hq + head, then k pairs,
//   g = T*Hq + token * Hkv + head; N = T*(Hq+Hkv) (T*Hq when k is null).
// Math: cos_sin_cache row p = [cos_0..cos_{rot/2-1} | sin_0..sin_{rot/2-1}], read as fp32.
//   NeoX pairs (i, i+rot/2), GPT-J pairs (2i, 2i+1); out = x*cos + p*sin with the signed
//   partner p (qk_math::rope_element): two fp32 products, one fp32 sum, one rounding to the
//   activation dtype on store. Dims >= rotary_dim are stored unchanged (bit for bit).
#include "core/check.h"
#include "kernels/common/qk_norm_rope_math.h"
#include "kernels/cpu/detail.h"
#include "kernels/cpu/kernels.h"

namespace rcsim::cpu {
namespace {

void rotate_head(const TensorView& v, int64_t t, int64_t h, int64_t head_dim, int64_t rotary_dim,
                 bool is_neox, const detail::HeadValues& cos_row,
                 const detail::HeadValues& sin_row) {
  detail::HeadBits bits{};
  detail::HeadValues x{};
  detail::load_head(v, t, h, head_dim, bits, x);
  for (int64_t d = 0; d < rotary_dim; ++d) {
    const float out = qk_math::rope_element(x.data(), static_cast<int>(d),
                                            static_cast<int>(rotary_dim), is_neox,
                                            cos_row.data(), sin_row.data());
    bits[static_cast<std::size_t>(d)] = float_to_activation(out, v.dtype);
  }
  detail::store_head(v, t, h, head_dim, bits);
}

}  // namespace

KernelRun CpuRotaryEmbedding::run(const RotaryArgs& args) {
  using namespace detail;
  const TensorView& q = args.q;
  const kernel_args::RotaryShape shape = kernel_args::check_rotary(host_rules(), args);
  const int64_t tokens = shape.tokens, heads_q = shape.heads_q, heads_k = shape.heads_k,
                head_dim = shape.head_dim;

  const int64_t total = tokens * (heads_q + heads_k);
  const int64_t run_units = units_to_run(args.limit, total);
  HeadValues cos_row{}, sin_row{};
  for (int64_t g = 0; g < run_units; ++g) {
    const bool is_q = g < tokens * heads_q;
    const int64_t local = is_q ? g : g - tokens * heads_q;
    const int64_t heads = is_q ? heads_q : heads_k;
    const int64_t t = local / heads, h = local % heads;
    load_cos_sin_row(args.cos_sin_cache, load_i64(args.positions, t), args.rotary_dim, cos_row,
                     sin_row);
    rotate_head(is_q ? q : args.k, t, h, head_dim, args.rotary_dim, args.is_neox, cos_row,
                sin_row);
  }
  return {total, run_units};
}

}  // namespace rcsim::cpu
