// The tiled (bandwidth-bound) forms of the non-fused kernels (nonfused_tiled.hip), as the
// launchers in nonfused_kernels.hip see them. Each returns false, launching nothing, where the
// tiled form does not apply (head dim other than 64/128/256, unaligned buffers or views, NeoX
// rotary_dim % 16 != 0 or GPT-J rotary_dim % 8 != 0, pages not a whole number of 16-byte V
// chunks); the caller then runs the reference-mapping kernel, which writes the same bits.
// Host-compiler clean, like gpu_params.h.
#pragma once

#include "kernels/hip/gpu_params.h"

namespace rcsim::gpu {

bool launch_rms_norm_tiled(const RmsNormParams& p, void* stream);
bool launch_rotary_tiled(const RotaryParams& p, void* stream);
bool launch_reshape_and_cache_tiled(const ReshapeCacheParams& p, void* stream);
bool launch_per_token_quant_cache_tiled(const PerTokenQuantParams& p, void* stream);

}  // namespace rcsim::gpu
