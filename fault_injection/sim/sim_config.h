// The configuration of one simulation run, how it is sampled from a seed, and the replay token
// that carries it. A run is a pure function of its SimConfig (plus the code, named by the build
// id in the token), so `rcsim replay TOKEN` reproduces a failure exactly and `rcsim shrink` can
// edit the config and re-run.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "core/dispatch/rope_cache_dispatcher.h"
#include "core/dtype.h"
#include "core/mutants.h"

namespace rcsim::sim {

// Per-rank attention shapes (semantics.md section 4).
struct ModelShape {
  std::string_view name;
  int64_t num_heads_q;
  int64_t num_heads_kv;
  int64_t head_dim;
  double rope_theta;
};
std::span<const ModelShape> all_models();
const ModelShape* model_by_name(std::string_view name);

// How decode steps are executed (issue 10 item 5). Eager: every layer calls the dispatcher.
// Capture/replay: a decode-only step runs as a CUDA graph keyed by its padded bucket size; the
// first sighting of a bucket captures (the dispatcher decides, the decision is recorded per
// layer), later sightings replay the recorded kernel sequence without re-deciding.
enum class GraphMode : uint8_t { kEager, kCaptureReplay };
std::string_view graph_mode_name(GraphMode m);
std::optional<GraphMode> graph_mode_from_name(std::string_view name);

struct SimConfig {
  uint64_t seed = 1;
  std::string model = "qwen3-0.6b";
  int64_t layers = 2;
  int64_t steps = 48;            // safety phase (faults on)
  int64_t liveness_steps = 8;    // liveness phase (faults off): the bound on recovery
  FallbackPolicy policy = FallbackPolicy::kPr279;
  std::string faults = "none";   // canonical fault spec (swarm is resolved before a run)
  Mutant mutant = Mutant::kNone;
  std::string backend = "cpu";
  // Workload.
  int64_t requests = 6;
  int64_t prompt_tokens_max = 40;
  int64_t output_tokens_max = 12;
  int64_t token_budget = 24;
  // Cache.
  KvCacheDtype kv_cache_dtype = KvCacheDtype::kAuto;
  int64_t block_size = 16;
  int64_t num_blocks = 48;
  int64_t max_position = 512;
  bool symmetric_weights = false;  // w[d] == w[d + D/2]: the PR order is then exact
  // -1 = none (Qwen3). A window makes use_triton_attn true: branch C then writes plain V while
  // the fused kernel writes shuffle V (semantics.md open question 9), and B becomes reachable.
  int64_t sliding_window = -1;
  // Shrinking knob: only the first N calls of the run may go through the faulty kernels
  // (-1 = all). Later calls use the clean kernels.
  int64_t faulty_calls_max = -1;
  GraphMode graph_mode = GraphMode::kEager;

  std::string describe() const;  // one line per group, printed before a run
};

// Which choices the user fixed on the command line; everything else is drawn from the seed.
struct SimOverrides {
  std::optional<std::string> model;
  std::optional<int64_t> layers;
  std::optional<int64_t> steps;
  std::optional<FallbackPolicy> policy;
  std::optional<std::string> faults;  // "swarm", "none" or a spec
  std::optional<Mutant> mutant;
  std::optional<std::string> backend;
  std::optional<KvCacheDtype> kv_cache_dtype;
  std::optional<int64_t> sliding_window;
  std::optional<GraphMode> graph_mode;
  bool campaign_shape = false;  // small shapes so a campaign injects many faults per second
};

// Resolves a full config from the seed. Throws InvalidInput for unknown names or bad values.
SimConfig sample_config(uint64_t seed, const SimOverrides& overrides);
void validate_sim_config(const SimConfig& cfg);

// Replay tokens: "rcsim1_" + base64url("key=value;...") + "_" + 8 hex digits of the payload hash.
std::string encode_token(const SimConfig& cfg, std::string_view build_id);
struct DecodedToken {
  SimConfig cfg;
  std::string build_id;
};
DecodedToken decode_token(std::string_view token);  // throws InvalidInput on a malformed token

}  // namespace rcsim::sim
