// Owner: the GPU work (issue 7). Until then `rcsim diff` is not registered.
#include "fault_injection/cli/commands.h"
namespace rcsim::cli {
void register_diff_command(CLI::App& /*app*/, int& /*exit_code*/) {}
}  // namespace rcsim::cli
