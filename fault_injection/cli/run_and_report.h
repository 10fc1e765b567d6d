// One simulated serving run from the command line (`rcsim run` and `rcsim replay`): the seed and
// configuration first, a live progress line on a terminal, the summary lines, the verdict with a
// replay token and one-line repro on failure, the digest, and the JSON run report. An assertion
// that aborts the run still prints its replay token and exits with the crash code.
#pragma once

#include <string>

#include "fault_injection/sim/engine.h"
#include "fault_injection/sim/sim_config.h"

namespace rcsim::cli {

// The exit code of one run's verdict (commands.h).
int exit_code_of(sim::RunVerdict v);

// Runs `cfg`, prints it, and writes the run report (docs/schemas/run-report.schema.json) when
// `report_path` is not empty (checked by the caller before). Returns the verdict's exit code.
int run_and_report(const sim::SimConfig& cfg, const std::string& report_path);

}  // namespace rcsim::cli
