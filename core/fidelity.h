// Fidelity modes: what the CPU reference kernels compute. `math` (the default) is the spec,
// semantics.md's formulas, and what the GPU kernels of kernels/hip must match bit for bit. Each
// `aiter-<target>[-<version>]` mode reproduces what AITER as shipped computes on that GPU target,
// where it departs from the math; every departure is one switch below, with the AITER (and CK)
// source it was read from. The GPU kernels have no aiter-* modes (they always compute `math`).
//
// AITER versions: "current" = AITER@HEAD e4048607a5 (2026-08-22); "mar26" = AITER@Mar26
// 81b32f3023 (2026-03-09), the version ATOM PR #279 ran against (semantics.md's version table).
// Targets: gfx942 (MI300: fp8 e4m3fnuz) and gfx950 (MI355: fp8 e4m3fn). The fp8 format is the
// case's kv_cache_dtype, not part of the mode.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "core/attention_config.h"

namespace rcsim {

enum class Fidelity : uint8_t {
  kMath = 0,           // the spec (semantics.md), today's behaviour
  kAiterGfx942,        // AITER@HEAD built for gfx942
  kAiterGfx950,        // AITER@HEAD built for gfx950
  kAiterGfx942Mar26,   // AITER@Mar26 built for gfx942
  kAiterGfx950Mar26,   // AITER@Mar26 built for gfx950
};

std::string_view fidelity_name(Fidelity f);
std::optional<Fidelity> fidelity_from_name(std::string_view name);
std::span<const Fidelity> all_fidelities();
// "math, aiter-gfx942, ..." for error messages and --help.
std::string fidelity_names_joined();

// The departures from the math that one mode switches on. All false for kMath.
struct FidelitySwitches {
  // Item 1. fused kernel, NeoX partial rotary: lane l takes its rotation partner from lane
  // l ^ delta, delta = (rotary_dim/2) / (head_dim/32), through __shfl_xor inside
  // `if (dim < rotary_dim)`; a source lane outside the rotary range is inactive and reads 0
  // (ds_bpermute). Correct only when delta is a power of two.
  // csrc/kernels/fused_qk_norm_rope_cache_quant.cu @e4048607 lines 301-321 (kernel), 3081-3087
  // (host check: only (rotary_dim/2) % (head_dim/32) == 0). Not in Mar26 (full rotary only).
  bool neox_partner_by_xor_lane = false;
  // Mar26 host check: cos_sin_cache.size(1) == head_dim, so partial rotary raises (invalid
  // input) instead of running. fused_qk_norm_rope_cache_quant.cu @81b32f30 (embed_dim =
  // head_dim / 2, line 174; partner lane ^ 16, line 209).
  bool partial_rotary_rejected = false;
  // Item 2. standalone rmsnorm (rmsnorm2d_fwd -> module_rmsnorm_quant, the fallback's q/k
  // norm) stores bf16 by truncation (round toward zero, NaN bits shifted) on gfx942. HEAD:
  // optCompilerConfig.json module_rmsnorm_quant -DOPUS_FP32_to_BF16_DEFAULT=2; opus.hpp
  // lines 1215-1226 (gfx950 with clang >= 20 uses the hardware RNE cast, others rm=2 = z >> 16);
  // store_vector_nbytes -> opus::cast<bf16_t>. Mar26: -DCK_TILE_FLOAT_TO_BFLOAT16_DEFAULT=2 and
  // ck_tile::type_convert<bf16_t> -> ck_tile float_to_bf16 (truncate unless __gfx950__).
  bool rmsnorm_bf16_truncates = false;
  // Item 4a. fused kernel fp8 amax starts from the lane's first element (warp_max =
  // elements[0]), so an all-NaN head has amax NaN (rcsim: 0). fused_qk_norm_rope_cache_quant.cu
  // @e4048607 line 370, @81b32f30 line 254.
  bool fused_amax_from_first_element = false;
  // The fused kernel's amax floor of this version (HEAD: fmaxf(amax, 1e-8),
  // kFp8KvQuantAbsmaxFloorF32, line 95/390/419; Mar26: none). Replaces config.amax_floor for the
  // fused kernel under aiter-* modes.
  std::optional<bool> fused_amax_floor;
  // Item 4b. reshape_and_cache_with_pertoken_quant stores the unfloored scale amax/fp8_max and
  // guards only its reciprocal: 1 / fmaxf(scale, 1e-12). csrc/kernels/cache_kernels.cu
  // @e4048607 lines 444-448 (guard), 463/469 (scale store). Mar26 (@81b32f30 line 413): 1 / scale, no floor, no guard.
  bool pertoken_scale_unfloored = false;
  bool pertoken_reciprocal_guard = false;
  // Item 4c. a NaN created by the device's arithmetic (0/0, 0*inf) is +qNaN 0x7FC00000; x86
  // creates -qNaN 0xFFC00000. Seen in fp8 codes: e4m3fn 0x7F instead of 0xFF.
  bool device_default_nan_positive = false;
};

FidelitySwitches fidelity_switches(Fidelity f);

// Item 1 as a predicate: whether the fused kernel of `f` computes `cfg` differently from the math
// (NeoX partial rotary with a lane distance that is not a power of two). Returns the reason.
std::optional<std::string> fidelity_miscomputes(const AttentionConfig& cfg, Fidelity f);

}  // namespace rcsim
