// rcsim: the command-line entry point. Verbs register themselves from their own files.
#include <cstdio>
#include <exception>

#include <CLI/CLI.hpp>

#include "fault_injection/cli/commands.h"

int main(int argc, char** argv) {
  CLI::App app{"rcsim: deterministic simulation and fault injection for fused QK-norm+RoPE+KV-cache"};
  app.require_subcommand(1);
  int exit_code = rcsim::cli::kExitPass;
  rcsim::cli::register_case_command(app, exit_code);
  rcsim::cli::register_sim_commands(app, exit_code);
  rcsim::cli::register_diff_command(app, exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? rcsim::cli::kExitPass : rcsim::cli::kExitUsage;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "rcsim: error: %s\n", e.what());
    return rcsim::cli::kExitUsage;
  }
  return exit_code;
}
