// The bandwidth-bound form of the fused kernel (fused_qk_norm_rope_cache_tiled.hip) as its
// launcher sees it. Host-compiler clean, like gpu_params.h.
#pragma once

#include "kernels/hip/gpu_params.h"

namespace rcsim::gpu {

// The tiled kernel covers head dims 64/128/256, NeoX rotary_dim % 16 == 0 and GPT-J
// rotary_dim % 8 == 0 (a thread's 8 dims are all rotated or all passed through), 16-byte aligned
// buffers and views, and pages of a whole number of 16-byte V chunks. Everything else runs the
// reference-mapping kernel, which computes the same bits.
bool tiled_fused_supported(const FusedParams& p);
void launch_fused_tiled(const FusedParams& p, void* stream);

}  // namespace rcsim::gpu
