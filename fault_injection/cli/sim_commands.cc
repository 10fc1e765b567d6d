// Owner: the simulator work (issue 6). Until then the simulation verbs are not registered.
#include "fault_injection/cli/commands.h"
namespace rcsim::cli {
void register_sim_commands(CLI::App& /*app*/, int& /*exit_code*/) {}
}  // namespace rcsim::cli
