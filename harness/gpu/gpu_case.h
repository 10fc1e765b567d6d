// Differential harness shared by the GPU tests and `rcsim diff`: one random rope_cache case
// (qkv, norm weights, a real cos/sin table, positions, slots with -1 padding, sentinel-filled
// caches and scales) built on the host from one seed, mirrored on the device, and the comparison
// of two results (bit-exact byte compare naming the first bad element, plus the numeric metrics
// of issue 7: cosine similarity, max abs error, max ULP distance, mismatch count, ULP histogram).
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/attention_config.h"
#include "core/kernel_interfaces.h"
#include "core/tensor.h"
#include "kernels/hip/gpu_backend.h"

namespace rcsim::gpu {

// How a case maps tokens to cache slots. Scattered: distinct slots from a shuffled range (decode-
// like: no two tokens of a page are neighbours). Prefill: sequences of 1..3 pages' worth of tokens,
// each starting on a fresh page, its tokens in consecutive slots (what the tiled kernels turn into
// whole 16-byte V chunks), with the same -1 padding.
enum class SlotLayout : uint8_t { kScattered, kPrefill };

struct CaseShape {
  int64_t num_tokens = 16;
  int64_t num_heads_q = 32;
  int64_t num_heads_kv = 8;
  int64_t head_dim = 128;
  int64_t rotary_dim = 0;  // 0 = head_dim
  bool is_neox = true;
  KvCacheDtype kv = KvCacheDtype::kAuto;
  DType act = DType::kBF16;
  // Norm weights equal across each rotation pair (w[d] == w[partner(d)]): the case in which the
  // PR's rope-then-norm order agrees with the model's norm-then-rope order.
  bool pair_symmetric_weights = false;
  // q/k RMSNorm weights. Realistic (trained checkpoints are positive and near 1): N(1, 0.1) drawn
  // as 1 + 0.1 * (sum of 12 Prng::unit_float() - 6) (Irwin-Hall, exact on every platform; range
  // [0.4, 1.6], always positive). The stress form is the old +-U[0.25, 2) with a random sign,
  // which exaggerates the RoPE/norm order divergence (kept as a labelled row of rcsim diff).
  bool stress_random_sign_weights = false;
  int64_t num_blocks = 0;  // 0 = just enough for the tokens plus spare slots
  SlotLayout slot_layout = SlotLayout::kScattered;
  double rope_theta = 1.0e6;
  std::string describe() const;
};

inline constexpr uint8_t kCacheSentinelByte = 0xA5;

// A case on the host: inputs and sentinel-filled outputs.
struct HostCase {
  AttentionConfig cfg;
  HostTensor qkv, q_weight, k_weight, cos_sin, positions, slots;
  HostTensor k_cache, v_cache, k_scale, v_scale;  // scales empty for "auto"
  KvCacheViews cache_views(VCacheLayout layout) const;
  FusedQkNormRopeCacheArgs fused_args() const;
};
HostCase make_case(const CaseShape& shape, uint64_t seed);

// The same case on the device (a byte copy of every tensor).
struct DeviceCase {
  AttentionConfig cfg;
  std::unique_ptr<GpuBuffer> qkv, q_weight, k_weight, cos_sin, positions, slots;
  std::unique_ptr<GpuBuffer> k_cache, v_cache, k_scale, v_scale;
  KvCacheViews cache_views(VCacheLayout layout) const;
  FusedQkNormRopeCacheArgs fused_args() const;
  // Outputs back on the host, in HostCase form (inputs included, so qkv shows the write-back).
  HostCase download_all() const;
};
DeviceCase upload_case(const HostCase& host);

// The non-fused path (branch C) on any backend, in either order; q/k written in place into qkv.
// The harness's qkv-buffer form of cpu::run_nonfused (kernels/cpu/nonfused_reference.h), the one
// composition every caller runs: V cache in the shuffle layout.
void run_nonfused(const KernelSet& kernels, FallbackOrder order, const AttentionConfig& cfg,
                  const TensorView& qkv, const TensorView& q_weight, const TensorView& k_weight,
                  const TensorView& cos_sin, const TensorView& positions, const TensorView& slots,
                  const KvCacheViews& cache);

// Bit-exact comparison of two tensors; `where` decodes a flat element index for messages.
struct ByteDiff {
  int64_t mismatched_elements = 0;
  int64_t first_bad_element = -1;
  std::string first_bad;  // "(token 3, head 5, dim 17): got 0x3f80 want 0x3f81"
  bool equal() const { return mismatched_elements == 0; }
};
ByteDiff compare_bytes(const HostTensor& got, const HostTensor& want, const std::string& name,
                       const AttentionConfig& cfg);

// Numeric comparison of two activation tensors [T, width] of the same dtype, the q/k part of qkv
// only (V is never written). ULP distance counted in the activation format.
inline constexpr int kUlpHistogramBins = 8;  // 0, 1, 2, 3-4, 5-8, 9-16, 17-64, >64 (or NaN)
struct NumericDiff {
  double cosine_similarity = 0.0;
  double max_abs_error = 0.0;
  int64_t max_ulp = 0;
  int64_t mismatches = 0;  // elements whose bits differ
  int64_t elements = 0;
  int64_t first_bad_token = -1, first_bad_head = -1, first_bad_dim = -1;
  std::array<int64_t, kUlpHistogramBins> ulp_histogram{};
};
NumericDiff compare_qk(const HostTensor& got, const HostTensor& want, const AttentionConfig& cfg);
const char* ulp_bin_label(int bin);

}  // namespace rcsim::gpu
