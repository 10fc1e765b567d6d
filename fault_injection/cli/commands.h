// The verbs of the rcsim CLI, the exit codes they share, and the one wrapper that turns a verb's
// errors into messages and exit codes. Each register_* adds its subcommands to the app; main.cc
// calls all of them.
#pragma once

#include <functional>
#include <string_view>

#include <CLI/CLI.hpp>

namespace rcsim::cli {

// Exit codes shared by every verb, all below 126 so that none collides with the shell's own
// (126 not executable, 127 not found, 128+N killed by signal N). One per outcome; when a campaign
// sees several, the most severe wins in the order crash, nondeterminism, check failed, liveness,
// coverage gate, incomplete. Documented in `rcsim --help` and docs/simulation.md.
inline constexpr int kExitPass = 0;            // every run passed (hazards are findings, not failures)
inline constexpr int kExitCheckFailed = 1;     // a correctness check failed
inline constexpr int kExitUsage = 2;           // bad command line, option value, file or token
inline constexpr int kExitCrash = 3;           // the process aborted under a fault (assertion)
inline constexpr int kExitNondeterminism = 4;  // a rechecked seed gave another digest
inline constexpr int kExitCoverageGate = 5;    // a gated fault site, kind or fallback never reached
inline constexpr int kExitIncomplete = 6;      // the budget ran out before every seed ran
inline constexpr int kExitLiveness = 7;        // the fused path did not come back within the bound
inline constexpr int kExitCrossBackend = 8;     // a seed's digest differed between gpu and cpu

// The exit-code table as printed in every --help footer.
std::string_view exit_code_help();

// Runs one verb's body: InvalidInput (and any other exception) becomes "rcsim VERB: error: ..."
// on stderr and exit code 2. Every verb's callback goes through this, so no verb handles errors
// its own way.
void run_verb(std::string_view verb, int& exit_code, const std::function<int()>& body);

// `rcsim case`: one rope_cache call from a JSON case file (fault_injection/cli/case_command.cc).
void register_case_command(CLI::App& app, int& exit_code);
// `rcsim run|replay|shrink`: one simulated serving run, its replay, its shrinking
// (run_commands.cc; options shared with campaign in sim_options.h).
void register_run_commands(CLI::App& app, int& exit_code);
// `rcsim campaign`: many seeds, swarm faults, every policy (campaign_command.cc).
void register_campaign_command(CLI::App& app, int& exit_code);
// `rcsim merge REPORT...`: shard reports into one, coverage gate on the union (merge_command.cc).
void register_merge_command(CLI::App& app, int& exit_code);
// `rcsim report REPORT.json --html OUT.html`: a campaign report a person can read (report_command.cc).
void register_report_command(CLI::App& app, int& exit_code);
// `rcsim diff`: on-GPU differential runs (diff_command.cc); reports "no GPU backend" when absent.
void register_diff_command(CLI::App& app, int& exit_code);

}  // namespace rcsim::cli
