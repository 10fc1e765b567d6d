// `rcsim case --in CASE.json --out DIR`: one rope_cache call, fully described by a JSON case file,
// run through the dispatcher on the CPU backend, or with "backend": "gpu" / --backend gpu on the
// GPU backend (inputs mirrored to device memory, outputs downloaded; optionally under a fault
// plan, whose torn writes are then the GPU kernels' own device-side unit limits), with every input
// and output written as .npy so that anyone can recompute the outputs independently (e.g. from
// PyTorch). Tensors dumped from PyTorch can be replayed by naming them under "inputs".
//
// Case file (unknown keys are errors, so a typo never silently falls back to a default):
//   {
//     "schema_version": 1,          // optional; docs/schemas/case-file.schema.json
//     "description": "free text",
//     "config": {"num_heads_q": 4, "num_heads_kv": 2, "head_dim": 128, "rotary_dim": 128,
//                "is_neox": true, "eps": 1e-6, "act_dtype": "bf16",
//                "kv_cache_dtype": "auto" | "fp8_e4m3fn" | "fp8_e4m3fnuz", "block_size": 16,
//                "num_blocks": 4, "max_position": 256, "amax_floor": false, "rope_theta": 1e6},
//     "layer": {"rotary": true, "q_norm": true, "k_norm": true, "sliding_window": -1,
//               "logic": "pr279" | "pr-base", "strict": false},
//     "policy": "pr279" | "pr279-model-order" | "sticky" | "qk-slice-backup" | "out-of-place" |
//               "prevalidate",
//     "backend": "cpu" | "gpu", "faults": "fused:unavailable", "seed": 42,
//     "fidelity": "math" | "aiter-gfx942" | "aiter-gfx950" | "aiter-gfx942-mar26" |
//                 "aiter-gfx950-mar26",   // what the CPU kernels compute (core/fidelity.h);
//                                         // --fidelity on the command line overrides it
//     "tokens": 6, "padding_tokens": 1, "qkv_present": true,
//     "inputs": {"qkv": "qkv.npy", ...}   // any of the input names below; paths relative to
//   }                                     // the case file
// Generated inputs are random and non-zero (one seed, rcsim::Prng), cos/sin is a real trig table
// (theta = rope_theta) rounded to the activation dtype, caches and scales start sentinel-filled.
//
// Output: DIR/{qkv,k_cache,v_cache,k_scale,v_scale,q,k}.npy (scales only for fp8 caches; q/k only
// when the call returned), for fp8 caches DIR/{k,v}_cache_dequant.npy (fp32 [NB, Hkv, BS, D]:
// every code decoded times its per-token scale, V read in the layout attention reads: what
// attention sees, and the only output that shows rcsim's fp8 decoder), DIR/meta.json (real
// dtypes, shapes, layouts), DIR/record.json (branch, attempt, restore, failure, log lines, calls
// per kernel site under a fault plan, fidelity and, where the fidelity's fused kernel computes the
// configuration wrongly, why), DIR/inputs/*.npy (every input, as used).
// --compare-to OTHER_DIR: then compares the outputs with another run's (a GPU run with the CPU
// run's): computed outputs by NaN class (core/nan_class.h), V copies bit for bit; prints
// "COMPARE PASS" or "COMPARE FAIL ... first difference" and exits 1 on a difference.
// Exit codes: 0 the call ran (a DispatchError is a result, recorded in record.json); 1 with
// --compare-to, the outputs differ; 2 a bad command line or case file (clear error on stderr,
// nothing written).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/check.h"
#include "core/dispatch/rope_cache_dispatcher.h"
#include "core/fidelity.h"
#include "core/io/npy.h"
#include "core/nan_class.h"
#include "core/limits.h"
#include "core/mutants.h"
#include "core/prng.h"
#include "fakes/faults/faulty_kernels.h"
#include "fault_injection/cli/cli_args.h"
#include "fault_injection/cli/commands.h"
#include "fault_injection/plan/fault_plan.h"
#include "fault_injection/sim/attention_read.h"
#include "fault_injection/sim/sim_device.h"
#include "kernels/cpu/cpu_backend.h"

namespace rcsim::cli {
namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;

constexpr uint8_t kCacheSentinelByte = 0xA5;
constexpr uint8_t kScaleSentinelByte = 0x7B;
constexpr std::size_t kCaseFileBytesMax = 1 << 20;
constexpr double kRopeThetaDefault = 1e6;
// Layout versions: docs/schemas/case-file.schema.json and case-record.schema.json.
constexpr int kCaseSchemaVersion = 1;
constexpr int kRecordSchemaVersion = 1;

// Input names, in the order they are generated and written.
constexpr std::string_view kInputNames[] = {"qkv",      "positions", "slot_mapping",
                                            "cos_sin_cache", "q_weight", "k_weight",
                                            "k_cache",  "v_cache",   "k_scale",
                                            "v_scale"};

struct CaseSpec {
  fs::path case_dir;
  LayerSpec layer;
  double rope_theta = kRopeThetaDefault;
  std::optional<int64_t> tokens;
  int64_t padding_tokens = 0;
  bool qkv_present = true;
  std::string faults;
  std::string backend = "cpu";
  uint64_t seed = 0;
  std::map<std::string, fs::path, std::less<>> input_files;
  json echo;  // the case as read, copied into record.json
};

// ---- strict JSON access --------------------------------------------------------------------
void require_object(const json& j, std::string_view where) {
  RCSIM_REQUIRE(j.is_object(), "case file: '{}' must be a JSON object", where);
}
void reject_unknown_keys(const json& j, std::string_view where,
                         std::initializer_list<std::string_view> allowed) {
  for (const auto& [key, value] : j.items()) {
    bool known = false;
    for (std::string_view a : allowed) known = known || key == a;
    RCSIM_REQUIRE(known, "case file: unknown key '{}' in '{}'", key, where);
  }
}
int64_t get_int(const json& j, std::string_view key, int64_t fallback, std::string_view where) {
  if (!j.contains(key)) return fallback;
  const json& v = j.at(std::string(key));
  RCSIM_REQUIRE(v.is_number_integer(), "case file: '{}.{}' must be an integer", where, key);
  return v.get<int64_t>();
}
double get_number(const json& j, std::string_view key, double fallback, std::string_view where) {
  if (!j.contains(key)) return fallback;
  const json& v = j.at(std::string(key));
  RCSIM_REQUIRE(v.is_number(), "case file: '{}.{}' must be a number", where, key);
  return v.get<double>();
}
bool get_bool(const json& j, std::string_view key, bool fallback, std::string_view where) {
  if (!j.contains(key)) return fallback;
  const json& v = j.at(std::string(key));
  RCSIM_REQUIRE(v.is_boolean(), "case file: '{}.{}' must be true or false", where, key);
  return v.get<bool>();
}
std::string get_string(const json& j, std::string_view key, std::string fallback,
                       std::string_view where) {
  if (!j.contains(key)) return fallback;
  const json& v = j.at(std::string(key));
  RCSIM_REQUIRE(v.is_string(), "case file: '{}.{}' must be a string", where, key);
  return v.get<std::string>();
}

// The case file as JSON: size-limited, parsed, an object, no unknown top-level key, and of this
// layout version (a file of another version is refused rather than half-understood).
json read_case_json(const fs::path& path) {
  std::error_code ec;
  const auto size = fs::file_size(path, ec);
  RCSIM_REQUIRE(!ec, "case file {}: cannot read: {}", path.string(), ec.message());
  RCSIM_REQUIRE(size <= kCaseFileBytesMax, "case file {}: {} bytes exceeds {}", path.string(),
                size, kCaseFileBytesMax);
  std::ifstream in(path);
  json root;
  try {
    root = json::parse(in);
  } catch (const json::exception& e) {
    throw InvalidInput(fmt::format("case file {}: invalid JSON: {}", path.string(), e.what()));
  }
  require_object(root, "<root>");
  reject_unknown_keys(root, "<root>",
                      {"schema_version", "description", "config", "layer", "policy", "backend",
                       "faults", "seed", "tokens", "padding_tokens", "qkv_present", "inputs",
                       "fidelity"});
  if (root.contains("schema_version")) {
    RCSIM_REQUIRE(root.at("schema_version") == kCaseSchemaVersion,
                  "case file: schema_version {} is not {} (docs/schemas/case-file.schema.json)",
                  root.at("schema_version").dump(), kCaseSchemaVersion);
  }
  return root;
}

// "config": the attention configuration and the RoPE base, validated as a whole.
void parse_config(const json& root, CaseSpec& s) {
  RCSIM_REQUIRE(root.contains("config"), "case file: 'config' is required");
  const json& cj = root.at("config");
  require_object(cj, "config");
  reject_unknown_keys(cj, "config",
                      {"num_heads_q", "num_heads_kv", "head_dim", "rotary_dim", "is_neox", "eps",
                       "act_dtype", "kv_cache_dtype", "block_size", "num_blocks", "max_position",
                       "amax_floor", "rope_theta"});
  AttentionConfig& c = s.layer.attn;
  c.num_heads_q = get_int(cj, "num_heads_q", c.num_heads_q, "config");
  c.num_heads_kv = get_int(cj, "num_heads_kv", c.num_heads_kv, "config");
  c.head_dim = get_int(cj, "head_dim", c.head_dim, "config");
  c.rotary_dim = get_int(cj, "rotary_dim", c.head_dim, "config");
  c.is_neox = get_bool(cj, "is_neox", c.is_neox, "config");
  c.eps = static_cast<float>(get_number(cj, "eps", c.eps, "config"));
  const std::string act = get_string(cj, "act_dtype", "bf16", "config");
  const auto act_dtype = dtype_from_name(act);
  RCSIM_REQUIRE(act_dtype && is_activation_dtype(*act_dtype),
                "case file: config.act_dtype '{}' must be bf16 or fp16", act);
  c.act_dtype = *act_dtype;
  const std::string kv = get_string(cj, "kv_cache_dtype", "auto", "config");
  const auto kv_dtype = kv_cache_dtype_from_name(kv);
  RCSIM_REQUIRE(kv_dtype.has_value(),
                "case file: config.kv_cache_dtype '{}' must be auto, fp8_e4m3fn or fp8_e4m3fnuz",
                kv);
  c.kv_cache_dtype = *kv_dtype;
  c.block_size = get_int(cj, "block_size", c.block_size, "config");
  c.num_blocks = get_int(cj, "num_blocks", c.num_blocks, "config");
  c.max_position = get_int(cj, "max_position", c.max_position, "config");
  c.amax_floor = get_bool(cj, "amax_floor", c.amax_floor, "config");
  s.rope_theta = get_number(cj, "rope_theta", kRopeThetaDefault, "config");
  RCSIM_REQUIRE(s.rope_theta > 1.0 && s.rope_theta <= 1e12, "case file: rope_theta {} outside (1, 1e12]",
                s.rope_theta);
  validate_attention_config(c);
}

// "layer" (optional): which of rotary / q_norm / k_norm the layer has, its window and logic.
void parse_layer(const json& root, CaseSpec& s) {
  if (!root.contains("layer")) return;
  const json& lj = root.at("layer");
  require_object(lj, "layer");
  reject_unknown_keys(lj, "layer",
                      {"rotary", "q_norm", "k_norm", "sliding_window", "logic", "strict"});
  s.layer.has_rotary = get_bool(lj, "rotary", true, "layer");
  s.layer.has_q_norm = get_bool(lj, "q_norm", true, "layer");
  s.layer.has_k_norm = get_bool(lj, "k_norm", true, "layer");
  s.layer.sliding_window = get_int(lj, "sliding_window", -1, "layer");
  RCSIM_REQUIRE(s.layer.sliding_window >= -1, "case file: layer.sliding_window must be >= -1");
  const std::string logic = get_string(lj, "logic", "pr279", "layer");
  RCSIM_REQUIRE(logic == "pr279" || logic == "pr-base",
                "case file: layer.logic '{}' must be pr279 or pr-base", logic);
  s.layer.logic = logic == "pr279" ? DecisionLogic::kPr279 : DecisionLogic::kPrBase;
  s.layer.strict = get_bool(lj, "strict", false, "layer");
}

// The top-level run keys: policy, backend, faults, fidelity and the seed (required).
void parse_run_keys(const json& root, CaseSpec& s) {
  const std::string policy = get_string(root, "policy", "pr279", "<root>");
  const auto p = policy_from_name(policy);
  RCSIM_REQUIRE(p.has_value(),
                "case file: policy '{}' unknown (pr279, pr279-model-order, sticky, "
                "qk-slice-backup, out-of-place, prevalidate)",
                policy);
  s.layer.policy = *p;
  s.backend = get_string(root, "backend", "cpu", "<root>");
  RCSIM_REQUIRE(s.backend == "cpu" || s.backend == "gpu",
                "case file: backend '{}' is unknown (expected cpu | gpu)", s.backend);
  s.faults = get_string(root, "faults", "", "<root>");
  const std::string fidelity = get_string(root, "fidelity", "math", "<root>");
  const auto f = fidelity_from_name(fidelity);
  RCSIM_REQUIRE(f.has_value(), "case file: fidelity '{}' unknown ({})", fidelity,
                fidelity_names_joined());
  s.layer.fidelity = *f;
  RCSIM_REQUIRE(root.contains("seed"), "case file: 'seed' is required (it drives every input)");
  RCSIM_REQUIRE(root.at("seed").is_number_unsigned(),
                "case file: 'seed' must be a non-negative integer");
  s.seed = root.at("seed").get<uint64_t>();
}

// The batch keys: tokens, padding, whether qkv is passed, and the input files (relative to the
// case file).
void parse_batch_keys(const json& root, CaseSpec& s) {
  if (root.contains("tokens")) {
    s.tokens = get_int(root, "tokens", 0, "<root>");
    RCSIM_REQUIRE(*s.tokens >= 1 && *s.tokens <= limits::kTokensPerBatchMax,
                  "case file: tokens {} outside [1, {}]", *s.tokens, limits::kTokensPerBatchMax);
  }
  s.padding_tokens = get_int(root, "padding_tokens", 0, "<root>");
  s.qkv_present = get_bool(root, "qkv_present", true, "<root>");
  if (!root.contains("inputs")) return;
  const json& ij = root.at("inputs");
  require_object(ij, "inputs");
  for (const auto& [name, value] : ij.items()) {
    bool known = false;
    for (std::string_view n : kInputNames) known = known || name == n;
    RCSIM_REQUIRE(known, "case file: unknown input '{}' (expected one of qkv, positions, "
                         "slot_mapping, cos_sin_cache, q_weight, k_weight, k_cache, v_cache, "
                         "k_scale, v_scale)", name);
    RCSIM_REQUIRE(value.is_string(), "case file: inputs.{} must be a path string", name);
    const fs::path file(value.get<std::string>());
    s.input_files[name] = file.is_absolute() ? file : s.case_dir / file;
  }
}

CaseSpec parse_case(const fs::path& path) {
  const json root = read_case_json(path);
  CaseSpec s;
  s.echo = root;
  s.case_dir = path.parent_path();
  parse_config(root, s);
  parse_layer(root, s);
  parse_run_keys(root, s);
  parse_batch_keys(root, s);
  return s;
}

// ---- inputs --------------------------------------------------------------------------------
struct CaseTensors {
  std::map<std::string, HostTensor, std::less<>> t;  // every input, by name
  const HostTensor* get(std::string_view name) const {
    auto it = t.find(name);
    return it == t.end() ? nullptr : &it->second;
  }
};

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

// A real RoPE table as aiter builds it: inv_freq[j] = 1 / theta^(2j/rot) and freqs = p * inv_freq
// in fp32, cos and sin rounded to the activation dtype; row p = [cos(rot/2) | sin(rot/2)].
HostTensor make_cos_sin(const AttentionConfig& c, double theta) {
  const int64_t half = c.rotary_dim / 2;
  HostTensor t(c.act_dtype, {c.max_position, c.rotary_dim});
  auto out = t.as<uint16_t>();
  std::vector<float> inv_freq(static_cast<std::size_t>(half));
  for (int64_t j = 0; j < half; ++j) {
    inv_freq[static_cast<std::size_t>(j)] = static_cast<float>(
        1.0 / std::pow(theta, static_cast<double>(2 * j) / static_cast<double>(c.rotary_dim)));
  }
  for (int64_t p = 0; p < c.max_position; ++p) {
    for (int64_t j = 0; j < half; ++j) {
      const float angle = static_cast<float>(p) * inv_freq[static_cast<std::size_t>(j)];
      const auto row = static_cast<std::size_t>(p * c.rotary_dim);
      out[row + static_cast<std::size_t>(j)] = float_to_activation(std::cos(angle), c.act_dtype);
      out[row + static_cast<std::size_t>(half + j)] =
          float_to_activation(std::sin(angle), c.act_dtype);
    }
  }
  return t;
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
  if (name == "cos_sin_cache") return make_cos_sin(c, s.rope_theta);
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
  for (std::string_view name : kInputNames) {
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

// ---- outputs -------------------------------------------------------------------------------
json shape_json(const TensorView& v) {
  json s = json::array();
  for (int d = 0; d < v.rank; ++d) s.push_back(v.size(d));
  return s;
}

json tensor_meta(const TensorView& v, std::string_view file, std::string_view layout) {
  return {{"file", file},
          {"dtype", dtype_name(v.dtype)},
          {"npy_descr", io::npy_descr(v.dtype)},
          {"shape", shape_json(v)},
          {"layout", layout}};
}

// The memory order the call wrote into v_cache (the tensor is always the 4-D label view unless a
// 5-D one was loaded): the fused kernel always shuffles; B follows the tensor's rank; C shuffles
// iff asm_layout = !use_triton_attn.
std::string v_layout_written(const DispatchRecord& r, bool ok, const LayerSpec& layer,
                             const TensorView& v_cache) {
  if (!ok) return "undefined (the call failed; partial writes possible)";
  switch (r.branch) {
    case Branch::kFused: return "shuffle [NB, Hkv, BS/x, D, x]";
    case Branch::kRopeCache:
      return v_cache.rank == 5 ? "shuffle [NB, Hkv, BS/x, D, x]" : "plain [NB, Hkv, D, BS]";
    case Branch::kNonFused:
      return layer.use_triton_attn() ? "plain [NB, Hkv, D, BS]" : "shuffle [NB, Hkv, BS/x, D, x]";
  }
  return "?";
}

// The fp8 cache of one side as attention reads it (sim::read_cache_element: the code decoded by
// numeric::fp8_bits_to_float, times its per-token scale), in the logical order [NB, Hkv, BS, D].
HostTensor dequantised_cache(const AttentionConfig& c, const KvCacheViews& cache, bool is_v,
                             VCacheLayout v_read) {
  HostTensor out(DType::kFP32, {c.num_blocks, c.num_heads_kv, c.block_size, c.head_dim});
  const std::span<float> dst = out.as<float>();
  const sim::CacheReadSpec spec{c, v_read};
  std::size_t i = 0;
  for (int64_t b = 0; b < c.num_blocks; ++b)
    for (int64_t h = 0; h < c.num_heads_kv; ++h)
      for (int64_t t = 0; t < c.block_size; ++t)
        for (int64_t d = 0; d < c.head_dim; ++d) {
          dst[i++] = sim::read_cache_element(spec, cache, is_v, b, h, t, d);
        }
  return out;
}

json record_json(const DispatchRecord& r) {
  return {{"branch", branch_name(r.branch)},
          {"fused_attempted", r.fused_attempted},
          {"fused_skipped_by_policy", r.fused_skipped_by_policy},
          {"failure", r.failure ? json(failure_class_name(*r.failure)) : json(nullptr)},
          {"failure_injected", r.failure_injected},
          {"backup_taken", r.backup_taken},
          {"backup_bytes", r.backup_bytes},
          {"restored", r.restored},
          {"warning_logged", r.warning_logged},
          {"error_logged", r.error_logged}};
}

void write_json(const fs::path& path, const json& j) {
  std::ofstream out(path, std::ios::trunc);
  RCSIM_REQUIRE(out.good(), "{}: cannot create", path.string());
  out << j.dump(2) << "\n";
}

// The GPU side of a case: every input tensor mirrored into device memory, the views remapped onto
// the mirrors, and after the call every mirror downloaded back into the host tensors (so the
// outputs are written exactly as on the CPU backend).
class CaseDeviceMirror {
 public:
  CaseDeviceMirror(sim::SimDevice& device, CaseTensors& ct) : device_(device) {
    for (auto& [name, t] : ct.t) pairs_.push_back({&t, device.upload_new(t)});
  }
  TensorView to_device(const TensorView& host) const { return remap(host, true); }
  // A device output that aliases no mirrored input (branch C's q/k live in the dispatcher's own
  // norm storage) is downloaded into a host tensor this mirror keeps.
  TensorView to_host(const TensorView& dev) {
    if (dev.is_null() || find(dev, false) != nullptr) return remap(dev, false);
    const DeviceMemoryAccess access = device_.memory_access();
    RCSIM_ASSERT(static_cast<bool>(access.download), "case: no way to download {}",
                 dev.describe());
    downloads_.push_back(std::make_unique<HostTensor>(access.download(dev)));
    return downloads_.back()->view();
  }
  RopeCacheInputs to_device(const RopeCacheInputs& in) const {
    RopeCacheInputs d = in;
    for (TensorView* v : {&d.qkv, &d.q, &d.k, &d.v, &d.positions, &d.slot_mapping,
                          &d.cos_sin_cache, &d.q_weight, &d.k_weight, &d.cache.k_cache,
                          &d.cache.v_cache, &d.cache.k_scale, &d.cache.v_scale}) {
      *v = to_device(*v);
    }
    return d;
  }
  void download_all() {
    for (Pair& p : pairs_) {
      const TensorView h = device_.host_view(p.device);
      const TensorView dst = p.host->view();
      if (p.host->bytes() > 0) {
        std::memcpy(dst.data(), h.data(), static_cast<std::size_t>(p.host->bytes()));
      }
    }
    device_.release_host_views();
  }

 private:
  struct Pair {
    HostTensor* host;
    sim::DeviceTensor device;
  };
  // The pair whose buffer (host side or device side) holds the view's first element: sub-views
  // such as q/k inside qkv resolve by address, whatever base and offset they were built with.
  const Pair* find(const TensorView& v, bool host_side) const {
    const std::byte* first = v.data();
    for (const Pair& p : pairs_) {
      const TensorView b = host_side ? p.host->view() : p.device->view();
      if (first >= b.data() && first < b.data() + b.span_bytes()) return &p;
    }
    return nullptr;
  }
  TensorView remap(const TensorView& v, bool to_dev) const {
    if (v.is_null()) return v;
    const Pair* p = find(v, to_dev);
    RCSIM_ASSERT(p != nullptr, "case: no mirror for {}", v.describe());
    const TensorView from = to_dev ? p->host->view() : p->device->view();
    const TensorView to = to_dev ? p->device->view() : p->host->view();
    TensorView out = v;
    out.base = to.data() + (v.base - from.data());
    out.device = to.device;
    return out;
  }
  sim::SimDevice& device_;
  std::vector<Pair> pairs_;
  std::vector<std::unique_ptr<HostTensor>> downloads_;
};

// --compare-to DIR: this run's outputs against another run's (the CPU backend's, for a GPU run).
// q, k, the Q/K heads of qkv, the K cache, fp8 codes and scales are computed: any NaN equals any
// NaN (core/nan_class.h; a GPU's arithmetic NaN is not the CPU's). The V heads of qkv and a
// bf16/fp16 V cache are copies: bit for bit, NaN payloads included. Returns the first difference.
std::optional<std::string> compare_case_outputs(const AttentionConfig& c, const fs::path& out_dir,
                                                const fs::path& other_dir,
                                                const std::vector<std::pair<std::string, DType>>& outputs) {
  for (const auto& [name, dtype] : outputs) {
    const fs::path other = other_dir / (name + ".npy");
    if (!fs::exists(other)) return fmt::format("{} is missing", other.string());
    const HostTensor mine = io::read_npy(out_dir / (name + ".npy"), dtype);
    const HostTensor theirs = io::read_npy(other, dtype);
    if (mine.shape() != theirs.shape()) return fmt::format("{}: shapes differ", name);
    const int64_t esize = dtype_size_bytes(dtype);
    const int64_t qk_heads = c.num_heads_q + c.num_heads_kv;
    const int64_t row = mine.shape().empty() ? 1 : mine.numel() / std::max<int64_t>(1, mine.shape()[0]);
    for (int64_t i = 0; i < mine.numel(); ++i) {
      uint64_t a = 0, b = 0;
      std::memcpy(&a, mine.data() + i * esize, static_cast<std::size_t>(esize));
      std::memcpy(&b, theirs.data() + i * esize, static_cast<std::size_t>(esize));
      NanRule rule = NanRule::kNanClass;
      if (name == "qkv" && (i % row) / c.head_dim >= qk_heads) rule = NanRule::kBitExact;
      if (name == "v_cache" && !is_fp8(c.kv_cache_dtype)) rule = NanRule::kBitExact;
      if (element_bits_equal(dtype, a, b, rule)) continue;
      if (name == "qkv" || name == "q" || name == "k") {
        const int64_t d = c.head_dim;
        return fmt::format("{} differs at (token {}, head {}, dim {}): 0x{:x} vs 0x{:x}", name,
                           i / row, (i % row) / d, i % d, a, b);
      }
      return fmt::format("{} differs at element {}: 0x{:x} vs 0x{:x}", name, i, a, b);
    }
  }
  return std::nullopt;
}

// The mutant (core/mutants.h) from --mutant or RCSIM_MUTANT (the flag wins; blank = unset):
// proves checks of the outputs bite.
Mutant case_mutant(const std::string& mutant_name_arg) {
  std::string mutant_arg = mutant_name_arg;
  std::string_view mutant_source = "--mutant";
  if (mutant_arg.empty()) {
    if (auto env = env_value("RCSIM_MUTANT")) {
      mutant_arg = *env;
      mutant_source = "RCSIM_MUTANT";
    }
  }
  const std::optional<Mutant> mutant =
      mutant_arg.empty() ? std::optional<Mutant>(Mutant::kNone) : mutant_from_name(mutant_arg);
  RCSIM_REQUIRE(mutant.has_value(), "{}: unknown mutant '{}'", mutant_source, mutant_arg);
  return *mutant;
}

// --fidelity and --backend win over the case file; the pair must be one this binary can run.
// Returns whether the fidelity came from the command line.
bool apply_command_line(CaseSpec& s, const std::string& fidelity_arg,
                        const std::string& backend_arg) {
  const bool fidelity_from_cli = !fidelity_arg.empty();
  if (fidelity_from_cli) {
    const auto f = fidelity_from_name(fidelity_arg);
    RCSIM_REQUIRE(f.has_value(), "--fidelity '{}' unknown ({})", fidelity_arg,
                  fidelity_names_joined());
    s.layer.fidelity = *f;
  }
  if (!backend_arg.empty()) {
    RCSIM_REQUIRE(backend_arg == "cpu" || backend_arg == "gpu",
                  "--backend: unknown backend '{}' (expected cpu | gpu)", backend_arg);
    s.backend = backend_arg;  // the flag wins over the case file
  }
  RCSIM_REQUIRE(s.backend == "cpu" || sim::gpu_backend_built(),
                "backend 'gpu': this binary was built without the GPU backend (configure with "
                "-DRCSIM_HOST_ONLY=OFF, e.g. the cuda or hip-amd preset)");
  // Fidelity modes live in the CPU reference kernels (core/fidelity.h); the GPU kernels compute
  // the math.
  RCSIM_REQUIRE(s.backend == "cpu" || s.layer.fidelity == Fidelity::kMath,
                "fidelity '{}' needs backend cpu (the GPU kernels compute math)",
                fidelity_name(s.layer.fidelity));
  return fidelity_from_cli;
}

// What the one dispatcher call did: its result, or the DispatchError it raised (a result too).
struct CallOutcome {
  std::optional<RopeCacheResult> result;
  DispatchRecord record;
  json error = nullptr;
};

// InvalidInput is raised before the dispatcher writes anything (its contract), so a bad input
// file still leaves DIR unwritten: only DispatchError is caught here.
CallOutcome call_dispatcher(RopeCacheDispatcher& dispatcher, const RopeCacheInputs& call_in) {
  CallOutcome out;
  try {
    out.result.emplace(dispatcher.rope_cache(call_in));
    out.record = out.result->record;
  } catch (const DispatchError& e) {
    out.record = e.record();
    out.error = {{"class", failure_class_name(e.failure_class())},
                 {"injected", e.injected()},
                 {"message", e.what()}};
  }
  return out;
}

// DIR/inputs/*.npy: every input as the call saw it; returns their meta.json entries.
json write_inputs(const fs::path& out_dir, const CaseTensors& inputs_as_given, const CaseSpec& s) {
  fs::create_directories(out_dir / "inputs");
  json inputs_meta = json::object();
  for (const auto& [name, t] : inputs_as_given.t) {
    io::write_npy(out_dir / "inputs" / (name + ".npy"), t.view());
    inputs_meta[name] = tensor_meta(t.view(), "inputs/" + name + ".npy",
                                    s.input_files.count(name) ? "loaded" : "generated");
  }
  return inputs_meta;
}

// DIR/*.npy: qkv, the caches (and scales for fp8), and q/k when the call returned; returns their
// meta.json entries.
// `emitted` receives each file's name and dtype (what --compare-to compares).
json write_outputs(const fs::path& out_dir, const CaseTensors& ct, const RopeCacheInputs& in,
                   const CallOutcome& call, const CaseSpec& s,
                   std::vector<std::pair<std::string, DType>>& emitted) {
  json outputs = json::object();
  auto emit = [&](const std::string& name, const TensorView& v, std::string_view layout) {
    io::write_npy(out_dir / (name + ".npy"), v);
    outputs[name] = tensor_meta(v, name + ".npy", layout);
    emitted.emplace_back(name, v.dtype);
  };
  emit("qkv", ct.get("qkv")->view(), "[T, (Hq + 2*Hkv) * D], per token [Q heads | K heads | V heads]");
  emit("k_cache", in.cache.k_cache, "x-packed [NB, Hkv, D/x, BS, x]");
  emit("v_cache", in.cache.v_cache,
       v_layout_written(call.record, call.result.has_value(), s.layer, in.cache.v_cache));
  if (is_fp8(s.layer.attn.kv_cache_dtype)) {
    emit("k_scale", in.cache.k_scale, "per-token dequant scale [NB, Hkv, BS]");
    emit("v_scale", in.cache.v_scale, "per-token dequant scale [NB, Hkv, BS]");
    // What attention reads: every element decoded and scaled by rcsim itself, so an outside
    // model that decodes the codes above can check the fp8 decoder (independent_reference/).
    const AttentionConfig& c = s.layer.attn;
    const VCacheLayout v_read =
        s.layer.use_triton_attn() ? VCacheLayout::kPlain : VCacheLayout::kShuffle;
    for (const bool is_v : {false, true}) {
      const HostTensor dq = dequantised_cache(c, in.cache, is_v, v_read);
      emit(is_v ? "v_cache_dequant" : "k_cache_dequant", dq.view(),
           fmt::format("fp32 [NB, Hkv, BS, D]: each fp8 code decoded times its per-token scale, "
                       "read{} as attention reads it, sentinels included",
                       is_v ? (v_read == VCacheLayout::kPlain ? " plain" : " shuffle") : ""));
    }
  }
  if (call.result) {
    emit("q", call.result->q, "[T, Hq, D] as attention reads it");
    emit("k", call.result->k, "[T, Hkv, D] as attention reads it");
  }
  return outputs;
}

// DIR/meta.json: the real dtypes, shapes and layouts of every file, and the sentinels.
json meta_json(const CaseSpec& s, json outputs, json inputs_meta) {
  const AttentionConfig& c = s.layer.attn;
  return {{"config",
           {{"num_heads_q", c.num_heads_q},
            {"num_heads_kv", c.num_heads_kv},
            {"head_dim", c.head_dim},
            {"rotary_dim", c.rotary_dim},
            {"is_neox", c.is_neox},
            {"eps", c.eps},
            {"act_dtype", dtype_name(c.act_dtype)},
            {"kv_cache_dtype", kv_cache_dtype_name(c.kv_cache_dtype)},
            {"cache_storage_dtype", dtype_name(c.cache_storage_dtype())},
            {"x", c.x()},
            {"block_size", c.block_size},
            {"num_blocks", c.num_blocks},
            {"max_position", c.max_position},
            {"amax_floor", c.amax_floor},
            {"rope_theta", s.rope_theta},
            {"use_triton_attn", s.layer.use_triton_attn()}}},
          {"sentinels", {{"cache_byte", kCacheSentinelByte}, {"scale_byte", kScaleSentinelByte}}},
          {"outputs", std::move(outputs)},
          {"inputs", std::move(inputs_meta)}};
}

// Everything record.json says about one case run besides the dispatch record itself.
struct CaseRun {
  const CaseSpec& spec;
  Mutant mutant;
  bool fidelity_from_cli;
  const FaultPlan& plan;
  const FaultyKernelSet* faulty;  // null without a fault plan
  const DispatchProcess& process;
  const CallOutcome& call;
};

// Calls that reached each kernel site (counted by the fault decorators; null without faults):
// "surfaced, no fallback" is checked on these, not only on the error class.
json kernel_calls_json(const FaultyKernelSet* faulty) {
  if (faulty == nullptr) return nullptr;
  json calls = json::object();
  for (int i = 0; i < kFaultSiteCount; ++i) {
    const auto site = static_cast<FaultSite>(i);
    calls[std::string(fault_site_name(site))] = faulty->stats().call_count(site);
  }
  return calls;
}

// DIR/record.json (docs/schemas/case-record.schema.json).
json case_record_file_json(const CaseRun& run) {
  const CaseSpec& s = run.spec;
  json rec = record_json(run.call.record);
  rec["schema"] = "rcsim-case-record";
  rec["schema_version"] = kRecordSchemaVersion;
  rec["outcome"] = run.call.result ? "ok" : "dispatch_error";
  // The branch the dispatcher was on (as the console line says); whether it completed is separate.
  rec["branch_completed"] = run.call.result.has_value();
  rec["error"] = run.call.error;
  rec["log_lines"] = run.process.log_lines();
  rec["policy"] = policy_name(s.layer.policy);
  rec["logic"] = s.layer.logic == DecisionLogic::kPr279 ? "pr279" : "pr-base";
  rec["decided_branch"] = branch_name(RopeCacheDispatcher::decide(s.layer, s.qkv_present));
  rec["seed"] = s.seed;
  rec["mutant"] = mutant_name(run.mutant);
  rec["backend"] = s.backend;
  rec["fault_plan"] = to_string(run.plan);
  rec["device_poisoned"] = run.faulty != nullptr ? run.faulty->device_poisoned() : false;
  rec["kernel_calls"] = kernel_calls_json(run.faulty);
  rec["fallback_counts"] = json::object();
  for (FailureClass fc : kAllFailureClasses) {
    rec["fallback_counts"][std::string(failure_class_name(fc))] = run.process.fallback_count(fc);
  }
  rec["fidelity"] = std::string(fidelity_name(s.layer.fidelity));
  rec["fidelity_source"] = run.fidelity_from_cli ? "--fidelity" : "case file";
  const std::optional<std::string> miscomputed = fidelity_miscomputes(s.layer.attn, s.layer.fidelity);
  rec["fidelity_miscomputes"] = miscomputed ? json(*miscomputed) : json(nullptr);
  rec["case"] = s.echo;
  return rec;
}

// The kernels the call runs on: the fidelity's CPU kernels or the device's, wrapped in the fault
// decorators when the case has a fault plan.
KernelSet case_kernels(const CaseSpec& s, const FaultPlan& plan, sim::SimDevice& device,
                       cpu::CpuBackend& fidelity_backend, std::optional<FaultyKernelSet>& faulty) {
  KernelSet kernels = s.backend == "cpu" ? fidelity_backend.kernels() : device.kernels();
  if (plan.empty()) return kernels;
  faulty.emplace(kernels, plan, mix_seed(s.seed, label_hash("faults")));
  if (DeviceMemoryAccess access = device.memory_access(); access.download) {
    faulty->set_device_memory_access(std::move(access));
  }
  return faulty->kernels();
}

int run_case(const fs::path& in_path, const fs::path& out_dir, const std::string& mutant_name_arg,
             const std::string& fidelity_arg, const std::string& backend_arg,
             const std::string& compare_to) {
  // Before any work: a --out that cannot be created fails now, not after the call has run.
  check_output_dir("--out", out_dir.string());
  const Mutant mutant = case_mutant(mutant_name_arg);
  const ScopedMutant scoped_mutant(mutant);
  CaseSpec s = parse_case(in_path);
  const bool fidelity_from_cli = apply_command_line(s, fidelity_arg, backend_arg);
  FaultPlan plan = parse_fault_plan(s.faults);  // InvalidInput names the column
  CaseTensors ct = build_inputs(s);
  const CaseTensors inputs_as_given = ct;  // snapshot before the in-place call
  const RopeCacheInputs in = views_of(ct, s);

  const std::unique_ptr<sim::SimDevice> device = sim::make_sim_device(s.backend);
  std::optional<CaseDeviceMirror> mirror;
  if (s.backend != "cpu") mirror.emplace(*device, ct);
  const RopeCacheInputs call_in = mirror ? mirror->to_device(in) : in;
  cpu::CpuBackend fidelity_backend(s.layer.fidelity);
  std::optional<FaultyKernelSet> faulty;
  const KernelSet kernels = case_kernels(s, plan, *device, fidelity_backend, faulty);
  DispatchProcess process;
  RopeCacheDispatcher dispatcher(s.layer, kernels, process);
  const std::string fidelity_text(fidelity_name(s.layer.fidelity));
  fmt::print("rcsim case: seed {}, policy {}, fidelity {}, backend {}, {} (repro: rcsim case --in {} "
             "--fidelity {} --backend {} --out DIR)\n",
             s.seed, policy_name(s.layer.policy), fidelity_text, s.backend,
             s.layer.attn.describe(), in_path.string(), fidelity_text, s.backend);

  CallOutcome call = call_dispatcher(dispatcher, call_in);
  if (mirror) {
    // Outputs come back to the host tensors; q/k views are remapped onto them.
    mirror->download_all();
    if (call.result) {
      call.result->q = mirror->to_host(call.result->q);
      call.result->k = mirror->to_host(call.result->k);
      call.result->v = mirror->to_host(call.result->v);
    }
  }
  json inputs_meta = write_inputs(out_dir, inputs_as_given, s);
  std::vector<std::pair<std::string, DType>> emitted;
  json outputs = write_outputs(out_dir, ct, in, call, s, emitted);
  write_json(out_dir / "meta.json", meta_json(s, std::move(outputs), std::move(inputs_meta)));
  const CaseRun run{s, mutant, fidelity_from_cli, plan, faulty ? &*faulty : nullptr, process, call};
  const json rec = case_record_file_json(run);
  if (!rec["fidelity_miscomputes"].is_null()) {
    fmt::print("rcsim case: note: {}\n", rec["fidelity_miscomputes"].get<std::string>());
  }
  write_json(out_dir / "record.json", rec);
  fmt::print("rcsim case: {}, fused {}{}{} -> {}\n", branch_name(call.record.branch),
             call.record.fused_attempted ? "attempted" : "not attempted",
             call.record.failure
                 ? fmt::format(", failure {}", failure_class_name(*call.record.failure))
                 : "",
             call.result ? "" : ", DispatchError (branch did not complete)", out_dir.string());
  if (!compare_to.empty()) {
    if (auto d = compare_case_outputs(s.layer.attn, out_dir, compare_to, emitted)) {
      fmt::print("rcsim case: COMPARE FAIL vs {}: {}\n", compare_to, *d);
      return kExitCheckFailed;
    }
    fmt::print("rcsim case: COMPARE PASS vs {}: {} outputs equal (computed ones by NaN class)\n",
               compare_to, emitted.size());
  }
  return kExitPass;
}

}  // namespace

void register_case_command(CLI::App& app, int& exit_code) {
  CLI::App* cmd = app.add_subcommand("case", "Run one rope_cache call from a JSON case file");
  auto in_path = std::make_shared<std::string>();
  auto out_dir = std::make_shared<std::string>();
  cmd->add_option("--in", *in_path, "case file (JSON)")->required();
  cmd->add_option("--out", *out_dir, "output directory (created)")->required();
  auto mutant = std::make_shared<std::string>();
  cmd->add_option("--mutant", *mutant,
                  "run with a deliberately broken variant (core/mutants.h; default $RCSIM_MUTANT)");
  auto fidelity = std::make_shared<std::string>();
  cmd->add_option("--fidelity", *fidelity,
                  "what the CPU kernels compute: " + fidelity_names_joined() +
                      " (default: the case file's \"fidelity\", else math; docs/fidelity.md)");
  auto backend = std::make_shared<std::string>();
  cmd->add_option("--backend", *backend,
                  "cpu | gpu: where the call runs (default: the case file's \"backend\", else cpu; "
                  "gpu needs a build with the GPU backend)");
  auto compare_to = std::make_shared<std::string>();
  cmd->add_option("--compare-to", *compare_to,
                  "after the run, compare its outputs with another run's output directory (e.g. "
                  "the cpu backend's): computed outputs by NaN class, V copies bit for bit; "
                  "exit 1 at the first difference")
      ->check(CLI::ExistingDirectory);
  cmd->footer(std::string(exit_code_help()));
  cmd->callback([in_path, out_dir, mutant, fidelity, backend, compare_to, &exit_code] {
    run_verb("case", exit_code, [&] {
      return run_case(*in_path, *out_dir, *mutant, *fidelity, *backend, *compare_to);
    });
  });
}

}  // namespace rcsim::cli
