// Differential runs of the CPU reference kernels: `math` against one aiter-* fidelity mode
// (core/fidelity.h) on the same seeded inputs, reporting per configuration what differs, by how
// much, and whether the model-order fallback still equals the fused kernel under that mode.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/attention_config.h"
#include "core/fidelity.h"

namespace rcsim::fidelity {

// Element-wise comparison of two activation tensors (same shape and dtype).
struct DiffStats {
  int64_t compared = 0;
  int64_t differing = 0;  // bit patterns that differ
  double max_abs = 0.0;   // over finite pairs
  double cosine = 1.0;    // cosine similarity of the two as vectors (1.0 when identical)
};

struct DiffRow {
  std::string config;   // one line, e.g. "Qwen3-8B D=128 rot=128 neox kv=auto"
  Fidelity mode = Fidelity::kMath;
  bool mode_rejects = false;    // the mode's fused kernel raises on this config (Mar26 partial)
  std::string miscomputes;      // fidelity_miscomputes() reason, empty if none
  DiffStats fused_qk;           // fused q/k: math vs mode
  DiffStats fallback_qk;        // model-order fallback q/k: math vs mode
  DiffStats fused_vs_fallback;  // within the mode: fused q/k vs model-order fallback q/k
  int64_t k_cache_bytes_differing = 0;  // fused K cache bytes: math vs mode
  // What the paged-attention read that follows (fault_injection/sim/attention_read.h) computes for
  // the last token over all tokens' cache entries, math vs mode: after the fused kernel and after
  // the model-order fallback (elements = Hq * D fp32 outputs; "differing" = bits differ).
  DiffStats fused_attention;
  DiffStats fallback_attention;
};

struct NamedConfig {
  std::string name;
  AttentionConfig cfg;
  bool qwen3 = false;  // a shape a Qwen3 deployment runs (rotary_dim == head_dim)
};

// Qwen3 shapes (8B and a MoE TP8 shard, auto and fp8 caches) and the item-1 shapes.
std::vector<NamedConfig> default_configs();

// Runs one configuration under `mode` with `tokens` tokens from `seed`.
DiffRow run_diff(const NamedConfig& c, Fidelity mode, int64_t tokens, uint64_t seed);

std::string table_header();
std::string table_line(const DiffRow& r);

}  // namespace rcsim::fidelity
