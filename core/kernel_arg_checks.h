// The host-side argument checks of the kernel interfaces (core/kernel_interfaces.h), written once
// for every backend. Each check throws InvalidInput naming the argument, before the kernel writes
// anything; the texts are the CPU reference's. A backend passes its BackendRules: where its views
// live, how its index views reach the host for the value checks, and the layout rules its kernels
// add. What a kernel needs beyond these (the CPU reference's fidelity modes) stays with it.
// Host-only: the device kernels never see these checks, only the params the launchers fill.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string_view>
#include <vector>

#include "core/attention_config.h"
#include "core/kernel_interfaces.h"
#include "core/tensor.h"

namespace rcsim::kernel_args {

// What differs between backends; every other rule is shared.
struct BackendRules {
  DeviceTag device = DeviceTag::kHost;
  // Completes "{name} {wrong_device}: {view}" for a view that lives elsewhere.
  std::string_view wrong_device;
  // Copies an i64 [T] index view (positions, slot_mapping) to host memory for the value checks.
  std::vector<int64_t> (*read_indices)(const TensorView& v) = nullptr;
  // An extra layout rule for [T, H, D] activation views, or nullptr for none (the GPU kernels
  // read whole heads as vectors).
  void (*require_heads_layout)(const TensorView& v, std::string_view name) = nullptr;
  // Weights and cos/sin tables must be contiguous (the GPU kernels index them densely).
  bool dense_tables = false;
  // Non-fused RoPE needs the NeoX partner a whole number of lanes away, as the fused kernel
  // always does (the GPU kernels' lane mapping; the CPU reference rotates any pair).
  bool neox_in_whole_lanes = false;
};

// ---- single arguments ---------------------------------------------------------------------------
// Present, on the backend's device, of `dtype` and `shape`, no negative stride.
void require_view(const BackendRules& rules, const TensorView& v, std::string_view name,
                  DType dtype, std::initializer_list<int64_t> shape);
void require_contiguous(const TensorView& v, std::string_view name);
// A [T, H, D] activation view: require_view plus the backend's heads layout rule.
void require_heads(const BackendRules& rules, const TensorView& v, std::string_view name,
                   DType dtype, std::initializer_list<int64_t> shape);
void require_head_dim(int64_t head_dim);
void require_work_limit(const WorkLimit& limit);
// rotary_dim even, in [2, head_dim].
void require_rotary_dim(int64_t rotary_dim, int64_t head_dim);
// The NeoX partner dim (rot/2 away) is a whole number of 32-lane steps away.
void require_neox_lanes(int64_t rotary_dim, int64_t head_dim);
// Every position in [0, max_position); `positions` already checked as i64 [T].
void require_positions(const BackendRules& rules, const TensorView& positions,
                       int64_t max_position);
// Every slot < num_slots (negative = padding, allowed); `slots` already checked as i64 [T].
void require_slots(const BackendRules& rules, const TensorView& slots, int64_t num_slots);
// The paged caches of `cfg` (shape, dtype, contiguity); scales [NB, Hkv, BS] fp32 iff
// `need_token_scales`. A 5-D v_cache with layout shuffle is accepted as the shuffle view, a 4-D
// one as a label over shuffle memory, as the fused kernel does (semantics.md 1.1).
void require_cache(const BackendRules& rules, const AttentionConfig& cfg,
                   const KvCacheViews& cache, VCacheLayout v_layout, bool need_token_scales);
// A cos/sin table [max_pos, rotary_dim] of `dtype`, max_pos in [1, kMaxPositionMax].
void require_cos_sin(const BackendRules& rules, const TensorView& cos_sin, std::string_view name,
                     DType dtype, int64_t rotary_dim);

// ---- whole calls (each returns the token count it checked) --------------------------------------
int64_t check_fused(const BackendRules& rules, const FusedQkNormRopeCacheArgs& a);
int64_t check_rope_reshape_cache(const BackendRules& rules, const RopeReshapeCacheArgs& a);
int64_t check_reshape_and_cache(const BackendRules& rules, const ReshapeAndCacheArgs& a);
int64_t check_per_token_quant_cache(const BackendRules& rules, const PerTokenQuantCacheArgs& a);

struct RmsNormShape {
  int64_t tokens, heads, head_dim;
};
RmsNormShape check_rms_norm(const BackendRules& rules, const RmsNormArgs& a);

struct RotaryShape {
  int64_t tokens, heads_q, heads_k, head_dim;  // heads_k = 0 without k
};
RotaryShape check_rotary(const BackendRules& rules, const RotaryArgs& a);

}  // namespace rcsim::kernel_args
