// Reads a case file into a CaseSpec (case_spec.h): size limit, JSON, no unknown key anywhere,
// every value typed and in range; then the command line's --fidelity, --backend and --mutant.
#include "fault_injection/cli/case_spec.h"

#include <cstdint>
#include <fstream>
#include <initializer_list>
#include <string>

#include <fmt/format.h>

#include "core/check.h"
#include "core/fidelity.h"
#include "core/limits.h"
#include "fault_injection/cli/cli_args.h"
#include "fault_injection/sim/sim_device.h"

namespace rcsim::cli {
namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;

constexpr std::size_t kCaseFileBytesMax = 1 << 20;
// Layout version: docs/schemas/case-file.schema.json.
constexpr int kCaseSchemaVersion = 1;

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
    for (std::string_view n : kCaseInputNames) known = known || name == n;
    RCSIM_REQUIRE(known, "case file: unknown input '{}' (expected one of qkv, positions, "
                         "slot_mapping, cos_sin_cache, q_weight, k_weight, k_cache, v_cache, "
                         "k_scale, v_scale)", name);
    RCSIM_REQUIRE(value.is_string(), "case file: inputs.{} must be a path string", name);
    const fs::path file(value.get<std::string>());
    s.input_files[name] = file.is_absolute() ? file : s.case_dir / file;
  }
}

}  // namespace

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

}  // namespace rcsim::cli
