#include "fault_injection/sim/sim_config.h"

#include <array>
#include <charconv>
#include <map>

#include <fmt/format.h>
#include <xxhash.h>

#include "core/check.h"
#include "core/limits.h"
#include "core/prng.h"
#include "fault_injection/plan/fault_plan.h"
#include "fault_injection/sim/sim_device.h"

namespace rcsim::sim {
namespace {

// Qwen3 per-rank attention shapes. 235B with TP8 has 64/8 = 8 q heads and max(1, 4/8) = 1 KV
// head per rank (semantics.md 1.1); its theta is the 2507 checkpoint's (inferred, 4 of the table).
constexpr std::array<ModelShape, 4> kModels = {{
    {"qwen3-0.6b", 16, 8, 128, 1.0e6},
    {"qwen3-8b", 32, 8, 128, 1.0e6},
    {"qwen3-32b", 64, 8, 128, 1.0e6},
    {"qwen3-235b-tp8", 8, 1, 128, 5.0e6},
}};

constexpr std::string_view kBase64 =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

std::string base64url_encode(std::string_view in) {
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (unsigned char c : in) {
    acc = (acc << 8) | c;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out.push_back(kBase64[(acc >> bits) & 63u]);
    }
  }
  if (bits > 0) out.push_back(kBase64[(acc << (6 - bits)) & 63u]);
  return out;
}

std::string base64url_decode(std::string_view in) {
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    const auto pos = kBase64.find(c);
    RCSIM_REQUIRE(pos != std::string_view::npos, "replay token: bad character '{}'", c);
    acc = (acc << 6) | static_cast<uint32_t>(pos);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xFFu));
    }
  }
  return out;
}

int64_t parse_i64(const std::string& key, const std::string& value) {
  int64_t out = 0;
  const auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), out);
  RCSIM_REQUIRE(ec == std::errc() && ptr == value.data() + value.size(),
                "replay token: field {} is not an integer: '{}'", key, value);
  return out;
}

}  // namespace

std::string_view graph_mode_name(GraphMode m) {
  switch (m) {
    case GraphMode::kEager: return "eager";
    case GraphMode::kCaptureReplay: return "capture-replay";
  }
  return "?";
}

std::optional<GraphMode> graph_mode_from_name(std::string_view name) {
  for (GraphMode m : {GraphMode::kEager, GraphMode::kCaptureReplay}) {
    if (graph_mode_name(m) == name) return m;
  }
  return std::nullopt;
}

std::span<const ModelShape> all_models() { return kModels; }

const ModelShape* model_by_name(std::string_view name) {
  for (const ModelShape& m : kModels) {
    if (m.name == name) return &m;
  }
  return nullptr;
}

std::string SimConfig::describe() const {
  const ModelShape* m = model_by_name(model);
  return fmt::format(
      "CONFIG model={} (Hq={} Hkv={} D={} theta={:g}) layers={} steps={}+{} policy={} mutant={} "
      "backend={}\nWORKLOAD requests={} prompt_max={} output_max={} token_budget={} "
      "kv_cache={} block_size={} num_blocks={} max_position={} weights={} sliding_window={} "
      "faulty_calls_max={} graph_mode={}\n"
      "FAULTS {}",
      model, m ? m->num_heads_q : 0, m ? m->num_heads_kv : 0, m ? m->head_dim : 0,
      m ? m->rope_theta : 0.0, layers, steps, liveness_steps, policy_name(policy),
      mutant_name(mutant), backend, requests, prompt_tokens_max, output_tokens_max, token_budget,
      kv_cache_dtype_name(kv_cache_dtype), block_size, num_blocks, max_position,
      symmetric_weights ? "symmetric" : "asymmetric", sliding_window, faulty_calls_max,
      graph_mode_name(graph_mode), faults.empty() ? "none" : faults);
}

void validate_sim_config(const SimConfig& cfg) {
  RCSIM_REQUIRE(model_by_name(cfg.model) != nullptr,
                "unknown model '{}' (qwen3-0.6b, qwen3-8b, qwen3-32b, qwen3-235b-tp8)", cfg.model);
  RCSIM_REQUIRE(cfg.layers >= 1 && cfg.layers <= limits::kLayersMax, "layers {} outside [1, {}]",
                cfg.layers, limits::kLayersMax);
  RCSIM_REQUIRE(cfg.steps >= 0 && cfg.liveness_steps >= 1 &&
                    cfg.steps + cfg.liveness_steps <= limits::kSimStepsMax,
                "steps {} + liveness {} outside [1, {}]", cfg.steps, cfg.liveness_steps,
                limits::kSimStepsMax);
  RCSIM_REQUIRE(cfg.backend == "cpu" || cfg.backend == "gpu",
                "backend '{}' is unknown (expected cpu | gpu)", cfg.backend);
  RCSIM_REQUIRE(cfg.backend == "cpu" || gpu_backend_built(),
                "backend 'gpu' is not available: this binary was built without the GPU backend "
                "(configure with -DRCSIM_HOST_ONLY=OFF, e.g. the cuda or hip-amd preset)");
  RCSIM_REQUIRE(cfg.requests >= 1 && cfg.requests <= limits::kSimRequestsMax,
                "requests {} outside [1, {}]", cfg.requests, limits::kSimRequestsMax);
  RCSIM_REQUIRE(cfg.token_budget >= 1 && cfg.token_budget <= limits::kTokensPerBatchMax,
                "token budget {} out of range", cfg.token_budget);
  RCSIM_REQUIRE(cfg.prompt_tokens_max >= 1 && cfg.output_tokens_max >= 1,
                "prompt/output maxima must be >= 1");
  RCSIM_REQUIRE(cfg.prompt_tokens_max + cfg.output_tokens_max <= cfg.max_position,
                "requests may reach position {} but the rope table has {} rows",
                cfg.prompt_tokens_max + cfg.output_tokens_max, cfg.max_position);
  RCSIM_REQUIRE(cfg.sliding_window >= -1, "sliding_window {} must be -1 or >= 0",
                cfg.sliding_window);
  RCSIM_REQUIRE(static_cast<int64_t>(cfg.faults.size()) <= limits::kFaultSpecCharsMax,
                "fault spec too long");
  (void)parse_fault_plan(cfg.faults);  // throws with the column of the first error
}

SimConfig sample_config(uint64_t seed, const SimOverrides& o) {
  SimConfig c;
  c.seed = seed;
  Prng rng = Prng::stream(seed, "config");
  // Draw every choice even when overridden, so overriding one field leaves the others unchanged.
  const auto& models = all_models();
  const std::size_t model_pick = o.campaign_shape ? (rng.chance(3, 4) ? 3 : 0)
                                                  : static_cast<std::size_t>(0);
  c.model = o.model ? *o.model : std::string(models[model_pick].name);
  const int64_t layers = o.campaign_shape ? rng.range(1, 2) : rng.range(2, 3);
  c.layers = o.layers ? *o.layers : layers;
  const int64_t steps = o.campaign_shape ? rng.range(12, 24) : rng.range(32, 48);
  c.steps = o.steps ? *o.steps : steps;
  const auto policies = all_policies();
  const FallbackPolicy policy = policies[rng.below(policies.size())];
  c.policy = o.policy ? *o.policy : policy;
  c.mutant = o.mutant ? *o.mutant : Mutant::kNone;
  c.backend = o.backend ? *o.backend : "cpu";
  // Half the runs with an "auto" (bf16) cache, the other half fp8 of either flavour.
  const uint64_t kv_pick = rng.below(4);
  const KvCacheDtype kv = kv_pick < 2 ? KvCacheDtype::kAuto
                          : kv_pick == 2 ? KvCacheDtype::kFp8E4M3FN
                                         : KvCacheDtype::kFp8E4M3FNUZ;
  c.kv_cache_dtype = o.kv_cache_dtype ? *o.kv_cache_dtype : kv;
  c.block_size = rng.chance(3, 4) ? 16 : 32;
  if (o.campaign_shape) {
    c.requests = rng.range(2, 4);
    c.prompt_tokens_max = rng.range(4, 20);
    c.output_tokens_max = rng.range(2, 8);
    c.token_budget = rng.pick(std::array<int64_t, 3>{4, 8, 12}.data(), 3);
  } else {
    c.requests = rng.range(3, 8);
    c.prompt_tokens_max = rng.range(8, 48);
    c.output_tokens_max = rng.range(2, 16);
    c.token_budget = rng.pick(std::array<int64_t, 3>{8, 16, 32}.data(), 3);
  }
  // Enough pages for every request at once plus slack, so admission never deadlocks.
  const int64_t pages_per_request =
      (c.prompt_tokens_max + c.output_tokens_max + c.block_size - 1) / c.block_size;
  c.num_blocks = c.requests * pages_per_request + rng.range(1, 8);
  c.max_position = 256;
  c.symmetric_weights = rng.chance(1, 8);
  c.sliding_window = o.sliding_window ? *o.sliding_window : -1;
  c.graph_mode = o.graph_mode ? *o.graph_mode : GraphMode::kEager;
  const std::string faults = o.faults ? *o.faults : "swarm";
  if (faults == "swarm" || faults == "swarm-dense") {
    Prng fault_rng = Prng::stream(seed, "swarm");
    FaultPlan plan = sample_swarm_plan(fault_rng);
    if (faults == "swarm-dense") {
      // The same swarm activation (which kinds, where, which k), but every active rule fires on
      // at least every other call: a CI campaign reaches 10^5 injections in minutes.
      for (FaultRule& rule : plan.rules) {
        if (rule.ratio.denominator > 2 * rule.ratio.numerator) rule.ratio = {1, 2};
      }
    }
    c.faults = to_string(plan);
  } else if (faults == "none") {
    c.faults = "";
  } else {
    c.faults = to_string(parse_fault_plan(faults));
  }
  validate_sim_config(c);
  return c;
}

std::string encode_token(const SimConfig& c, std::string_view build_id) {
  const std::string payload = fmt::format(
      "seed={};model={};layers={};steps={};live={};policy={};mutant={};backend={};req={};"
      "pmax={};omax={};budget={};kv={};bs={};nb={};maxpos={};sym={};swa={};fcm={};graph={};build={};faults={}",
      c.seed, c.model, c.layers, c.steps, c.liveness_steps, policy_name(c.policy),
      mutant_name(c.mutant), c.backend, c.requests, c.prompt_tokens_max, c.output_tokens_max,
      c.token_budget, kv_cache_dtype_name(c.kv_cache_dtype), c.block_size, c.num_blocks,
      c.max_position, c.symmetric_weights ? 1 : 0, c.sliding_window, c.faulty_calls_max,
      graph_mode_name(c.graph_mode), build_id, c.faults);
  const auto check = static_cast<uint32_t>(XXH3_64bits(payload.data(), payload.size()));
  return fmt::format("rcsim1_{}_{:08x}", base64url_encode(payload), check);
}

DecodedToken decode_token(std::string_view token) {
  constexpr std::string_view kPrefix = "rcsim1_";
  RCSIM_REQUIRE(token.substr(0, kPrefix.size()) == kPrefix,
                "replay token must start with '{}'", kPrefix);
  const auto last = token.rfind('_');
  RCSIM_REQUIRE(last != std::string_view::npos && last > kPrefix.size() &&
                    token.size() - last - 1 == 8,
                "replay token is truncated (no checksum)");
  const std::string payload =
      base64url_decode(token.substr(kPrefix.size(), last - kPrefix.size()));
  const auto check = static_cast<uint32_t>(XXH3_64bits(payload.data(), payload.size()));
  RCSIM_REQUIRE(fmt::format("{:08x}", check) == token.substr(last + 1),
                "replay token checksum mismatch (token damaged or edited)");
  std::map<std::string, std::string> fields;
  std::size_t start = 0;
  // `faults` is last and may itself contain ';': everything after "faults=" belongs to it.
  for (int guard = 0; guard < 64 && start < payload.size(); ++guard) {
    const auto eq = payload.find('=', start);
    RCSIM_REQUIRE(eq != std::string::npos, "replay token: malformed field at {}", start);
    const std::string key = payload.substr(start, eq - start);
    if (key == "faults") {
      fields[key] = payload.substr(eq + 1);
      break;
    }
    auto end = payload.find(';', eq);
    if (end == std::string::npos) end = payload.size();
    fields[key] = payload.substr(eq + 1, end - eq - 1);
    start = end + 1;
  }
  auto need = [&](const char* key) -> const std::string& {
    const auto it = fields.find(key);
    RCSIM_REQUIRE(it != fields.end(), "replay token: missing field {}", key);
    return it->second;
  };
  DecodedToken out;
  SimConfig& c = out.cfg;
  c.seed = static_cast<uint64_t>(std::stoull(need("seed")));
  c.model = need("model");
  c.layers = parse_i64("layers", need("layers"));
  c.steps = parse_i64("steps", need("steps"));
  c.liveness_steps = parse_i64("live", need("live"));
  const auto policy = policy_from_name(need("policy"));
  RCSIM_REQUIRE(policy.has_value(), "replay token: unknown policy '{}'", need("policy"));
  c.policy = *policy;
  const auto mutant = mutant_from_name(need("mutant"));
  RCSIM_REQUIRE(mutant.has_value(), "replay token: unknown mutant '{}'", need("mutant"));
  c.mutant = *mutant;
  c.backend = need("backend");
  c.requests = parse_i64("req", need("req"));
  c.prompt_tokens_max = parse_i64("pmax", need("pmax"));
  c.output_tokens_max = parse_i64("omax", need("omax"));
  c.token_budget = parse_i64("budget", need("budget"));
  const auto kv = kv_cache_dtype_from_name(need("kv"));
  RCSIM_REQUIRE(kv.has_value(), "replay token: unknown kv dtype '{}'", need("kv"));
  c.kv_cache_dtype = *kv;
  c.block_size = parse_i64("bs", need("bs"));
  c.num_blocks = parse_i64("nb", need("nb"));
  c.max_position = parse_i64("maxpos", need("maxpos"));
  c.symmetric_weights = need("sym") == "1";
  c.sliding_window = parse_i64("swa", need("swa"));
  c.faulty_calls_max = parse_i64("fcm", need("fcm"));
  // Tokens from before the graph mode existed carry no field: they ran eagerly.
  if (const auto it = fields.find("graph"); it != fields.end()) {
    const auto mode = graph_mode_from_name(it->second);
    RCSIM_REQUIRE(mode.has_value(), "replay token: unknown graph mode '{}'", it->second);
    c.graph_mode = *mode;
  }
  out.build_id = need("build");
  c.faults = need("faults");
  validate_sim_config(c);
  return out;
}

}  // namespace rcsim::sim
