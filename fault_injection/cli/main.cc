// rcsim: the command-line entry point. Verbs register themselves from their own files; this file
// owns what every verb shares: the exit-code table, the error wrapper and the unknown-verb message.
#include <exception>
#include <string>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "core/check.h"
#include "fault_injection/cli/commands.h"

namespace rcsim::cli {

std::string_view exit_code_help() {
  return "Exit codes: 0 every run passed (a documented policy hazard prints HAZARD and still exits "
         "0), 1 a correctness check failed, 2 bad usage or input (nothing written), 3 crash under "
         "a fault, 4 nondeterminism, 5 coverage gate missed, 6 budget ran out before every seed "
         "ran, 7 liveness (the fused path did not come back), 8 cross-backend (--backend gpu "
         "and the CPU gave different digests for one seed). A campaign with several outcomes "
         "exits with the first of 3, 4, 8, 1, 7, 5, 6.\nEnvironment: RCSIM_FAULTS (run, campaign: "
         "the fault spec when --faults is not given), RCSIM_MUTANT (run, campaign, case: the "
         "mutant when --mutant is not given). A flag wins over the variable; a blank variable "
         "counts as unset.";
}

void run_verb(std::string_view verb, int& exit_code, const std::function<int()>& body) {
  try {
    exit_code = body();
  } catch (const InvalidInput& e) {
    fmt::print(stderr, "rcsim {}: error: {}\n", verb, e.what());
    exit_code = kExitUsage;
  } catch (const std::exception& e) {
    fmt::print(stderr, "rcsim {}: error: {}\n", verb, e.what());
    exit_code = kExitUsage;
  }
}

}  // namespace rcsim::cli

int main(int argc, char** argv) {
  using namespace rcsim::cli;
  CLI::App app{"rcsim: deterministic simulation and fault injection for fused QK-norm+RoPE+KV-cache"};
  app.require_subcommand(1);
  app.footer(std::string(exit_code_help()));
  int exit_code = kExitPass;
  register_case_command(app, exit_code);
  register_run_commands(app, exit_code);
  register_campaign_command(app, exit_code);
  register_merge_command(app, exit_code);
  register_report_command(app, exit_code);
  register_diff_command(app, exit_code);
  // An unknown verb gets its own message (CLI11 would say "A subcommand is required").
  if (argc >= 2 && argv[1][0] != '-') {
    const std::string verb = argv[1];
    bool known = false;
    std::string names;
    for (const CLI::App* sub : app.get_subcommands({})) {
      known = known || sub->get_name() == verb;
      names += (names.empty() ? "" : ", ") + sub->get_name();
    }
    if (!known) {
      fmt::print(stderr, "rcsim: unknown verb '{}' (verbs: {}; see rcsim --help)\n", verb, names);
      return kExitUsage;
    }
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? kExitPass : kExitUsage;
  } catch (const std::exception& e) {
    fmt::print(stderr, "rcsim: error: {}\n", e.what());
    return kExitUsage;
  }
  return exit_code;
}
