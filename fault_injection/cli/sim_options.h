// The options `rcsim run` and `rcsim campaign` share (--steps, --layers, --model, --policy,
// --faults, --backend, --mutant, --kv-cache, --sliding-window, --graph-mode, --report): kept as
// typed, registered with their help text, and parsed into the simulator's overrides before any run
// starts, so a bad value exits 2 with nothing run. RCSIM_FAULTS and RCSIM_MUTANT stand in for
// --faults and --mutant (the flag wins; a blank variable counts as unset).
#pragma once

#include <string>
#include <string_view>

#include <CLI/CLI.hpp>

#include "fault_injection/sim/sim_config.h"

#ifndef RCSIM_GIT_COMMIT
#define RCSIM_GIT_COMMIT "unknown"
#endif

namespace rcsim::cli {

// The build this binary is: stamped into every replay token and report, so a token replayed on
// another build says so.
inline constexpr std::string_view kBuildId = RCSIM_GIT_COMMIT;

// Option values as typed; parsed (and rejected) by overrides_of before anything runs.
struct RunOptions {
  std::string seed = "1";
  std::string steps;
  std::string layers;
  std::string model;
  std::string policy;
  std::string faults;
  std::string backend = "cpu";
  std::string mutant;
  std::string kv_cache;
  std::string sliding_window;
  std::string graph_mode;
  std::string report;
};

// Which verb the options are for: their defaults (drawn from the seed) differ, and the help
// says so.
enum class SimVerb { kRun, kCampaign };

// Registers the shared options on `cmd`, storing into `o` (which must outlive the app).
void add_common_options(CLI::App* cmd, RunOptions& o, SimVerb verb);

// Every shared option parsed and checked (InvalidInput naming the option or variable); an option
// not given stays unset, so the seed decides it.
sim::SimOverrides overrides_of(const RunOptions& o);

}  // namespace rcsim::cli
