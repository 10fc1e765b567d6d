#include "core/attention_config.h"

#include <fmt/format.h>

#include "core/check.h"
#include "core/limits.h"

namespace rcsim {

std::optional<VCacheLayout> v_layout_from_name(std::string_view name) {
  if (name == "shuffle") return VCacheLayout::kShuffle;
  if (name == "plain") return VCacheLayout::kPlain;
  return std::nullopt;
}

std::string AttentionConfig::describe() const {
  return fmt::format(
      "Hq={} Hkv={} D={} rot={} {} eps={:g} act={} kv={} BS={} NB={} max_pos={} amax_floor={}",
      num_heads_q, num_heads_kv, head_dim, rotary_dim, is_neox ? "neox" : "gptj", eps,
      dtype_name(act_dtype), kv_cache_dtype_name(kv_cache_dtype), block_size, num_blocks,
      max_position, amax_floor ? "on" : "off");
}

void validate_attention_config(const AttentionConfig& cfg) {
  RCSIM_REQUIRE(limits::contains(limits::kHeadDimsSupported, cfg.head_dim),
                "unsupported head_dim {} (supported: 64, 128, 256)", cfg.head_dim);
  RCSIM_REQUIRE(limits::contains(limits::kHeadsKvSupported, cfg.num_heads_kv),
                "unsupported num_heads_kv {} (supported: 1, 2, 4, 8, 16, 32)", cfg.num_heads_kv);
  RCSIM_REQUIRE(cfg.num_heads_q >= 1 && cfg.num_heads_q <= limits::kHeadsQMax,
                "num_heads_q {} outside [1, {}]", cfg.num_heads_q, limits::kHeadsQMax);
  RCSIM_REQUIRE(cfg.num_heads_q % cfg.num_heads_kv == 0,
                "num_heads_q {} is not a multiple of num_heads_kv {}", cfg.num_heads_q,
                cfg.num_heads_kv);
  RCSIM_REQUIRE(cfg.rotary_dim >= 2 && cfg.rotary_dim <= cfg.head_dim && cfg.rotary_dim % 2 == 0,
                "rotary_dim {} must be even and in [2, head_dim {}]", cfg.rotary_dim,
                cfg.head_dim);
  RCSIM_REQUIRE(is_activation_dtype(cfg.act_dtype), "activation dtype {} is not bf16/fp16",
                dtype_name(cfg.act_dtype));
  RCSIM_REQUIRE(limits::contains(limits::kBlockSizesSupported, cfg.block_size),
                "unsupported block_size {} (supported: 16, 32, 64)", cfg.block_size);
  RCSIM_REQUIRE(cfg.block_size % cfg.x() == 0, "block_size {} is not a multiple of x {}",
                cfg.block_size, cfg.x());
  RCSIM_REQUIRE(cfg.num_blocks >= 1 && cfg.num_blocks <= limits::kBlocksMax,
                "num_blocks {} outside [1, {}]", cfg.num_blocks, limits::kBlocksMax);
  RCSIM_REQUIRE(cfg.max_position >= 1 && cfg.max_position <= limits::kMaxPositionMax,
                "max_position {} outside [1, {}]", cfg.max_position, limits::kMaxPositionMax);
  RCSIM_REQUIRE(cfg.eps > 0.0f, "eps {} must be positive", cfg.eps);
}

}  // namespace rcsim
