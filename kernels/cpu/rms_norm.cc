// CPU reference of per-head RMSNorm (aiter rmsnorm2d_fwd applied to [T*H, D]).
//
// Work units: (token, head) rows in order, g = token * H + head, N = T*H.
// Reduction order: the fused kernel's 32-lane order (qk_math::head_sum_squares: lane-sequential
//   fp32 sums of squares, then the xor butterfly 16, 8, 4, 2, 1). aiter's standalone rmsnorm
//   reduces differently (64 threads, FMA); rcsim deliberately uses the fused order here so that
//   the model-order non-fused composition can be compared with the fused kernel bit for bit: the
//   difference between the two paths that matters (order of norm and RoPE) is then the only one.
// Rounding: y = (x * rcp) * w in fp32, rcp = 1/sqrtf(mean + eps), one rounding to the activation
//   dtype on store. The output may alias the input (each row is read completely first).
// Fidelity (core/fidelity.h): under aiter-gfx942* modes the bf16 store truncates
//   (rmsnorm_bf16_truncates), as AITER's module_rmsnorm_quant built for gfx942 does. The
//   reduction order stays the fused one in every mode (AITER's 64-thread block reduction is not
//   modelled; docs/fidelity.md).
#include <cmath>

#include "core/check.h"
#include "kernels/common/qk_norm_rope_math.h"
#include "kernels/cpu/aiter_fidelity.h"
#include "kernels/cpu/detail.h"
#include "kernels/cpu/kernels.h"

namespace rcsim::cpu {

KernelRun CpuRmsNorm::run(const RmsNormArgs& args) {
  using namespace detail;
  const TensorView& in = args.input;
  const kernel_args::RmsNormShape shape = kernel_args::check_rms_norm(host_rules(), args);
  const int64_t tokens = shape.tokens, heads = shape.heads, head_dim = shape.head_dim;

  const int64_t total = tokens * heads;
  const int64_t run_units = units_to_run(args.limit, total);
  HeadValues w{};
  for (int64_t d = 0; d < head_dim; ++d) {
    w[static_cast<std::size_t>(d)] = activation_to_float(
        load_bits16(args.weight, d * args.weight.strides[0]), args.weight.dtype);
  }
  const int dim = static_cast<int>(head_dim);
  const bool truncates = fidelity_switches(fidelity_).rmsnorm_bf16_truncates;
  for (int64_t g = 0; g < run_units; ++g) {
    const int64_t t = g / heads, h = g % heads;
    HeadBits bits{};
    HeadValues x{};
    load_head(in, t, h, head_dim, bits, x);
    const float rcp = qk_math::rms_inverse(qk_math::head_sum_squares(x.data(), dim), dim, args.eps);
    for (int64_t d = 0; d < head_dim; ++d) {
      const auto i = static_cast<std::size_t>(d);
      bits[i] = aiter::rmsnorm_store(qk_math::rms_normalise(x[i], rcp, w[i]), in.dtype, truncates);
    }
    store_head(args.output, t, h, head_dim, bits);
  }
  return {total, run_units};
}

}  // namespace rcsim::cpu
