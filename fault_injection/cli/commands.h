// The verbs of the rcsim CLI. Each register_* adds its subcommands to the app; main.cc calls all.
#pragma once

#include <CLI/CLI.hpp>

namespace rcsim::cli {

// Exit codes shared by every verb (TigerBeetle's VOPR convention for the last four).
inline constexpr int kExitPass = 0;
inline constexpr int kExitUsage = 1;
inline constexpr int kExitCrash = 127;
inline constexpr int kExitLiveness = 128;
inline constexpr int kExitCorrectness = 129;
inline constexpr int kExitNondeterminism = 130;

// `rcsim case`: one rope_cache call from a JSON case file (fault_injection/cli/case_command.cc).
void register_case_command(CLI::App& app, int& exit_code);
// `rcsim run|replay|shrink|campaign`: the simulated serving engine (sim_commands.cc).
void register_sim_commands(CLI::App& app, int& exit_code);
// `rcsim diff`: on-GPU differential runs (diff_command.cc); reports "no GPU backend" when absent.
void register_diff_command(CLI::App& app, int& exit_code);

}  // namespace rcsim::cli
