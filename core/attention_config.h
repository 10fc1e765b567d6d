// The shape and numeric configuration of one attention layer, as ATOM passes it to rope_cache
// and AITER's kernels see it (semantics.md 1.1, 1.4).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <optional>

#include "core/dtype.h"
#include "kernels/common/cache_layout.h"

namespace rcsim {

// Memory order of the V cache. K is always x-packed [NB, H, D/x, BS, x].
enum class VCacheLayout : uint8_t {
  kShuffle,  // [NB, H, BS/x, D, x]: the fused kernel (always) and reshape_and_cache(asm_layout)
  kPlain,    // [NB, H, D, BS]: reshape_and_cache(asm_layout=False), branch B with a 4-D v_cache
};
constexpr std::string_view v_layout_name(VCacheLayout l) {
  return l == VCacheLayout::kShuffle ? "shuffle" : "plain";
}
std::optional<VCacheLayout> v_layout_from_name(std::string_view name);

// The order of the non-fused composition (ATOM's branch C): the one type the dispatcher's
// policies, the kernel backends' non-fused path, the simulator and the GPU harness share.
enum class FallbackOrder : uint8_t {
  kRopeThenNorm,  // PR #279's fallback: RoPE on q and k, then q_norm / k_norm
  kNormThenRope,  // the model's order (HF Qwen3, the fused kernel): norms, then RoPE
};

struct AttentionConfig {
  int64_t num_heads_q = 16;
  int64_t num_heads_kv = 8;
  int64_t head_dim = 128;
  int64_t rotary_dim = 128;  // == head_dim for the fused kernel of March 2026
  bool is_neox = true;
  float eps = 1e-6f;
  DType act_dtype = DType::kBF16;
  KvCacheDtype kv_cache_dtype = KvCacheDtype::kAuto;
  int64_t block_size = 16;  // tokens per page
  int64_t num_blocks = 64;
  int64_t max_position = 4096;  // rows of cos_sin_cache
  // Per-token fp8 amax floor: false = AITER of March 2026 (0/0 = NaN for an all-zero head),
  // true = AITER@HEAD (amax floored at 1e-8).
  bool amax_floor = false;

  int64_t qkv_width() const { return (num_heads_q + 2 * num_heads_kv) * head_dim; }
  DType cache_storage_dtype() const { return kv_storage_dtype(kv_cache_dtype, act_dtype); }
  int64_t x() const { return 16 / dtype_size_bytes(cache_storage_dtype()); }
  layout::PagedCacheShape cache_shape() const {
    return {num_blocks, num_heads_kv, block_size, head_dim, x()};
  }
  int64_t num_slots() const { return num_blocks * block_size; }
  std::string describe() const;
};

// Throws InvalidInput naming the first unsupported field (head dim, Hkv, block size, GQA ratio...).
void validate_attention_config(const AttentionConfig& cfg);

}  // namespace rcsim
