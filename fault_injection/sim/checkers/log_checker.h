// Checks the dispatcher's log lines against its records: one fallback warning per failure class
// and process (PR #279 warns once), never a fallback without a warning, and exactly the lines
// each record promises. Keeps the per-process warning count; reset() on a process restart.
#pragma once

#include <array>
#include <cstdint>

#include "core/dispatch/rope_cache_dispatcher.h"
#include "fault_injection/sim/checkers/check_failure.h"

namespace rcsim::sim {

class LogChecker {
 public:
  void reset() { warnings_by_class_.fill(0); }
  // A call that returned; `log_lines_added`: lines the process logged during it.
  void check_call(const CheckContext& ctx, const DispatchRecord& r, int64_t log_lines_added);
  // A call that surfaced a DispatchError carrying `r`.
  void check_surfaced(const CheckContext& ctx, const DispatchRecord& r, int64_t log_lines_added);

 private:
  std::array<int64_t, 5> warnings_by_class_{};
};

}  // namespace rcsim::sim
