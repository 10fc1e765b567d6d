// Owner: the dispatcher work (issue 3). Until then `rcsim case` is not registered.
#include "fault_injection/cli/commands.h"
namespace rcsim::cli {
void register_case_command(CLI::App& /*app*/, int& /*exit_code*/) {}
}  // namespace rcsim::cli
