// Registers and parses the options the simulation verbs share (sim_options.h).
#include "fault_injection/cli/sim_options.h"

#include <optional>
#include <span>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "core/check.h"
#include "core/limits.h"
#include "core/mutants.h"
#include "fault_injection/cli/cli_args.h"
#include "fault_injection/plan/fault_plan.h"
#include "fault_injection/sim/sim_device.h"

namespace rcsim::cli {
namespace {

template <typename T, typename NameOf>
std::string names_of(std::span<const T> values, NameOf name_of) {
  std::vector<std::string> names;
  for (const T& v : values) names.emplace_back(name_of(v));
  return fmt::format("{}", fmt::join(names, " | "));
}

std::string model_names() {
  return names_of(sim::all_models(), [](const sim::ModelShape& m) { return m.name; });
}
std::string policy_names() {
  return names_of(all_policies(), [](FallbackPolicy p) { return policy_name(p); });
}
std::string mutant_names() {
  return "none | " + names_of(all_mutants(), [](Mutant m) { return mutant_name(m); }) + " | " +
         names_of(device_only_mutants(), [](Mutant m) { return mutant_name(m); }) +
         " (gpu backend only) | " +
         names_of(campaign_only_mutants(), [](Mutant m) { return mutant_name(m); }) +
         " (caught by a campaign's determinism recheck only)";
}

// The fault spec from --faults or RCSIM_FAULTS (the flag wins), validated here with the
// parser's message, prefixed by where it came from.
std::optional<std::string> faults_of(const RunOptions& o) {
  std::string source = "--faults";
  std::optional<std::string> spec;
  if (!o.faults.empty()) {
    spec = o.faults;
  } else if (auto env = env_value("RCSIM_FAULTS")) {
    spec = std::move(env);
    source = "RCSIM_FAULTS";
  }
  if (!spec || *spec == "swarm" || *spec == "swarm-dense" || *spec == "none") return spec;
  try {
    (void)parse_fault_plan(*spec);
  } catch (const InvalidInput& e) {
    throw InvalidInput(fmt::format("{}: {}", source, e.what()));
  }
  return spec;
}

std::optional<Mutant> mutant_of(const RunOptions& o) {
  std::string source = "--mutant";
  std::optional<std::string> name;
  if (!o.mutant.empty()) {
    name = o.mutant;
  } else if (auto env = env_value("RCSIM_MUTANT")) {
    name = std::move(env);
    source = "RCSIM_MUTANT";
  }
  if (!name) return std::nullopt;
  const auto m = mutant_from_name(*name);
  RCSIM_REQUIRE(m.has_value(), "{}: unknown mutant '{}' (expected {})", source, *name,
                mutant_names());
  return m;
}

}  // namespace

void add_common_options(CLI::App* cmd, RunOptions& o, SimVerb verb) {
  const bool campaign = verb == SimVerb::kCampaign;
  cmd->add_option("--steps", o.steps,
                  fmt::format("safety-phase steps, 0..{} (default: from the seed, {})",
                              limits::kSimStepsMax - sim::SimConfig{}.liveness_steps,
                              campaign ? "12-24" : "32-48"))
      ->type_name("INT");
  cmd->add_option("--layers", o.layers,
                  fmt::format("attention layers, each its own dispatcher, 1..{} (default: from "
                              "the seed, {})",
                              limits::kLayersMax, campaign ? "1-2" : "2-3"))
      ->type_name("INT");
  cmd->add_option("--model", o.model,
                  fmt::format("{} (default: {})", model_names(),
                              campaign ? "qwen3-235b-tp8 for 3 seeds in 4, else qwen3-0.6b"
                                       : "qwen3-0.6b"))
      ->type_name("MODEL");
  cmd->add_option("--policy", o.policy,
                  fmt::format("{} (default: {})", policy_names(),
                              campaign ? "a hash of the seed, so every shard runs every policy"
                                       : "drawn from the seed"))
      ->type_name("POLICY");
  cmd->add_option("--faults", o.faults,
                  fmt::format("swarm | swarm-dense | none | a fault spec SITE:KIND(PARAMS);... "
                              "(docs/fault-spec.md), sites {}, kinds {} (default: $RCSIM_FAULTS, "
                              "else swarm)",
                              names_of(all_fault_sites(), [](FaultSite x) { return fault_site_name(x); }),
                              names_of(all_fault_kinds(), [](FaultKind x) { return fault_kind_name(x); })))
      ->type_name("SPEC");
  cmd->add_option("--backend", o.backend,
                  "cpu | gpu: where the system under test's kernels, caches, backups and "
                  "restores run; the oracle stays on the CPU (default: cpu; gpu needs a build "
                  "with the GPU backend)");
  cmd->add_option("--mutant", o.mutant,
                  fmt::format("a deliberately broken variant (core/mutants.h): {} (default: "
                              "$RCSIM_MUTANT, else none)",
                              mutant_names()))
      ->type_name("MUTANT");
  cmd->add_option("--kv-cache", o.kv_cache,
                  "auto | fp8_e4m3fn | fp8_e4m3fnuz (default: from the seed: auto for 1 seed in "
                  "2, else one of the fp8 flavours)")
      ->type_name("DTYPE");
  cmd->add_option("--sliding-window", o.sliding_window,
                  fmt::format("-1 (none) or a window of 0..{} tokens; a window makes branch B "
                              "eligible (use_triton_attn) (default: -1)",
                              limits::kMaxPositionMax))
      ->type_name("INT");
  cmd->add_option("--graph-mode", o.graph_mode,
                  fmt::format("eager | capture-replay: decode steps run as CUDA graphs per "
                              "bucket (default: {})",
                              campaign ? "a hash of the seed, half the seeds each" : "eager"))
      ->type_name("MODE");
}

sim::SimOverrides overrides_of(const RunOptions& o) {
  sim::SimOverrides ov;
  if (!o.steps.empty()) {
    ov.steps = parse_int_arg("--steps", o.steps, 0,
                             limits::kSimStepsMax - sim::SimConfig{}.liveness_steps);
  }
  if (!o.layers.empty()) ov.layers = parse_int_arg("--layers", o.layers, 1, limits::kLayersMax);
  if (!o.model.empty()) {
    RCSIM_REQUIRE(sim::model_by_name(o.model) != nullptr, "--model: unknown model '{}' (expected {})",
                  o.model, model_names());
    ov.model = o.model;
  }
  if (!o.policy.empty()) {
    const auto p = policy_from_name(o.policy);
    RCSIM_REQUIRE(p.has_value(), "--policy: unknown policy '{}' (expected {})", o.policy,
                  policy_names());
    ov.policy = *p;
  }
  ov.faults = faults_of(o);
  RCSIM_REQUIRE(o.backend == "cpu" || o.backend == "gpu", "--backend: unknown backend '{}' "
                "(expected cpu | gpu)", o.backend);
  RCSIM_REQUIRE(o.backend == "cpu" || sim::gpu_backend_built(),
                "--backend gpu: this binary was built without the GPU backend (configure with "
                "-DRCSIM_HOST_ONLY=OFF, e.g. the cuda or hip-amd preset)");
  ov.backend = o.backend;
  if (auto m = mutant_of(o)) ov.mutant = *m;
  if (!o.kv_cache.empty()) {
    const auto kv = kv_cache_dtype_from_name(o.kv_cache);
    RCSIM_REQUIRE(kv.has_value(), "--kv-cache: unknown cache dtype '{}' (expected auto | "
                  "fp8_e4m3fn | fp8_e4m3fnuz)", o.kv_cache);
    ov.kv_cache_dtype = *kv;
  }
  if (!o.sliding_window.empty()) {
    ov.sliding_window =
        parse_int_arg("--sliding-window", o.sliding_window, -1, limits::kMaxPositionMax);
  }
  if (!o.graph_mode.empty()) {
    const auto g = sim::graph_mode_from_name(o.graph_mode);
    RCSIM_REQUIRE(g.has_value(), "--graph-mode: unknown mode '{}' (expected eager | capture-replay)",
                  o.graph_mode);
    ov.graph_mode = *g;
  }
  return ov;
}

}  // namespace rcsim::cli
