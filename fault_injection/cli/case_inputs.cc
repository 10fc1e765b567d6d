// Builds the inputs of a case (case_inputs.h): what the case file names is loaded, the rest is
// generated from the case's seed, and the dispatcher gets views onto them.
#include "fault_injection/cli/case_inputs.h"

#include <cmath>
#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

#include "core/check.h"
#include "core/io/npy.h"
#include "core/limits.h"
#include "core/prng.h"
#include "core/rope_table.h"

namespace rcsim::cli {
namespace {

// The dtype an input is stored in; shapes are checked by the dispatcher before it writes.
DType input_dtype(std::string_view name, const AttentionConfig& c) {
  if (name == "positions" || name == "slot_mapping") return DType::kI64;
  if (name == "k_cache" || name == "v_cache") return c.cache_storage_dtype();
  if (name == "k_scale" || name == "v_scale") return DType::kFP32;
  return c.act_dtype;
}

bool input_used(std::string_view name, const CaseSpec& s) {
  const AttentionConfig& c = s.layer.attn;
  if (name == "q_weight") return s.layer.has_q_norm;
  if (name == "k_weight") return s.layer.has_k_norm;
  if (name == "cos_sin_cache") return s.layer.has_rotary;
  if (name == "k_scale" || name == "v_scale") return is_fp8(c.kv_cache_dtype);
  return true;
}

HostTensor generate_input(std::string_view name, const CaseSpec& s, int64_t tokens) {
  const AttentionConfig& c = s.layer.attn;
  Prng rng = Prng::stream(s.seed, "case-input", label_hash(name));
  const DType dt = input_dtype(name, c);
  if (name == "qkv") {
    HostTensor t(dt, {tokens, c.qkv_width()});
    for (uint16_t& e : t.as<uint16_t>()) e = float_to_activation(rng.nonzero_float(0.25f, 2.0f), dt);
    return t;
  }
  if (name == "positions") {
    HostTensor t(dt, {tokens});
    for (int64_t& p : t.as<int64_t>()) p = rng.range(0, c.max_position - 1);
    return t;
  }
  if (name == "slot_mapping") {
    // Distinct slots (a partial Fisher-Yates over all slots), the trailing tokens padding (-1).
    HostTensor t(dt, {tokens});
    std::vector<int64_t> slots(static_cast<std::size_t>(c.num_slots()));
    for (std::size_t i = 0; i < slots.size(); ++i) slots[i] = static_cast<int64_t>(i);
    for (int64_t i = 0; i < tokens; ++i) {
      const auto ui = static_cast<std::size_t>(i);
      const auto j = ui + rng.below(slots.size() - ui);
      std::swap(slots[ui], slots[j]);
      t.as<int64_t>()[ui] = i >= tokens - s.padding_tokens ? -1 : slots[ui];
    }
    return t;
  }
  if (name == "cos_sin_cache") {
    // aiter's table, in aiter's fp32 arithmetic (core/rope_table.h).
    return build_cos_sin_table(c.max_position, c.rotary_dim, c.act_dtype, s.rope_theta,
                               RopeTableMath::kFp32);
  }
  if (name == "q_weight" || name == "k_weight") {
    // Positive like trained norm weights, and not pair-symmetric, so the two fallback orders differ.
    HostTensor t(dt, {c.head_dim});
    for (uint16_t& e : t.as<uint16_t>()) {
      e = float_to_activation(std::fabs(rng.nonzero_float(0.5f, 1.5f)), dt);
    }
    return t;
  }
  const int64_t x = c.x();
  if (name == "k_cache" || name == "v_cache") {
    HostTensor t = name == "k_cache"
                       ? HostTensor(dt, {c.num_blocks, c.num_heads_kv, c.head_dim / x,
                                         c.block_size, x})
                       : HostTensor(dt, {c.num_blocks, c.num_heads_kv, c.head_dim, c.block_size});
    t.fill_pattern(kCacheSentinelByte);
    return t;
  }
  HostTensor t(dt, {c.num_blocks, c.num_heads_kv, c.block_size});  // k_scale / v_scale
  t.fill_pattern(kScaleSentinelByte);
  return t;
}

}  // namespace

CaseTensors build_inputs(const CaseSpec& s) {
  CaseTensors ct;
  for (const auto& [name, file] : s.input_files) {
    RCSIM_REQUIRE(input_used(name, s), "case file: input '{}' is given but this layer never reads it",
                  name);
    ct.t[name] = io::read_npy(file, input_dtype(name, s.layer.attn));
  }
  // Token count: the case's "tokens", else the first dimension of a loaded per-token input.
  std::optional<int64_t> tokens = s.tokens;
  for (std::string_view name : {"qkv", "positions", "slot_mapping"}) {
    if (tokens) break;
    if (const HostTensor* t = ct.get(name); t != nullptr && !t->shape().empty()) {
      tokens = t->shape()[0];
    }
  }
  RCSIM_REQUIRE(tokens.has_value(), "case file: 'tokens' is required when qkv, positions and "
                                    "slot_mapping are all generated");
  RCSIM_REQUIRE(*tokens >= 1 && *tokens <= limits::kTokensPerBatchMax,
                "case file: {} tokens outside [1, {}]", *tokens, limits::kTokensPerBatchMax);
  // Every loaded per-token input must have exactly that many tokens; otherwise the mismatch would
  // surface later as a misleading shape error on another tensor.
  for (std::string_view name : {"qkv", "positions", "slot_mapping"}) {
    if (const HostTensor* t = ct.get(name); t != nullptr) {
      RCSIM_REQUIRE(!t->shape().empty() && t->shape()[0] == *tokens,
                    "case file: input '{}' has {} tokens, expected {} (from {})", name,
                    t->shape().empty() ? 0 : t->shape()[0], *tokens,
                    s.tokens ? "'tokens'" : "the first per-token input");
    }
  }
  RCSIM_REQUIRE(s.padding_tokens >= 0 && s.padding_tokens <= *tokens,
                "case file: padding_tokens {} outside [0, tokens {}]", s.padding_tokens, *tokens);
  RCSIM_REQUIRE(*tokens - s.padding_tokens <= s.layer.attn.num_slots(),
                "case file: {} cached tokens do not fit {} cache slots",
                *tokens - s.padding_tokens, s.layer.attn.num_slots());
  for (std::string_view name : kCaseInputNames) {
    if (!input_used(name, s) || ct.get(name) != nullptr) continue;
    ct.t[std::string(name)] = generate_input(name, s, *tokens);
  }
  return ct;
}

RopeCacheInputs views_of(const CaseTensors& ct, const CaseSpec& s) {
  const AttentionConfig& c = s.layer.attn;
  RopeCacheInputs in;
  const TensorView qkv = ct.get("qkv")->view();
  if (s.qkv_present) {
    in.qkv = qkv;
  } else {
    RCSIM_REQUIRE(qkv.rank == 2 && qkv.size(1) == c.qkv_width(),
                  "input qkv must be [T, {}], got {}", c.qkv_width(), qkv.describe());
    const QkvViews v = split_qkv(qkv, c.num_heads_q, c.num_heads_kv, c.head_dim);
    in.q = v.q;
    in.k = v.k;
    in.v = v.v;
  }
  auto view = [&](std::string_view name) {
    const HostTensor* t = ct.get(name);
    return t == nullptr ? TensorView{} : t->view();
  };
  in.positions = view("positions");
  in.slot_mapping = view("slot_mapping");
  in.cos_sin_cache = view("cos_sin_cache");
  in.q_weight = view("q_weight");
  in.k_weight = view("k_weight");
  in.cache.k_cache = view("k_cache");
  in.cache.v_cache = view("v_cache");
  in.cache.k_scale = view("k_scale");
  in.cache.v_scale = view("v_scale");
  return in;
}

}  // namespace rcsim::cli
