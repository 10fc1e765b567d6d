#include "fault_injection/sim/checkers/log_checker.h"

#include <fmt/format.h>

namespace rcsim::sim {

void LogChecker::check_call(const CheckContext& ctx, const DispatchRecord& r,
                            int64_t log_lines_added) {
  if (r.warning_logged) {
    if (!r.failure) {
      fail(RunVerdict::kCorrectness, fmt::format("step {} layer {}: a fallback warning without a "
                                                 "failure",
                                                 ctx.step, ctx.layer));
    }
    const auto cls = static_cast<std::size_t>(*r.failure);
    if (++warnings_by_class_[cls] > 1) {
      fail(RunVerdict::kCorrectness,
           fmt::format("step {} layer {}: the fallback warning for {} was logged again in the "
                       "same process (PR #279 warns once per process)",
                       ctx.step, ctx.layer, failure_class_name(static_cast<FailureClass>(cls))));
    }
  }
  if (r.failure && warnings_by_class_[static_cast<std::size_t>(*r.failure)] == 0 &&
      !r.error_logged) {
    fail(RunVerdict::kCorrectness,
         fmt::format("step {} layer {}: fell back after {} without ever warning", ctx.step,
                     ctx.layer, failure_class_name(*r.failure)));
  }
  const int64_t promised = (r.warning_logged ? 1 : 0) + (r.error_logged ? 1 : 0);
  if (log_lines_added != promised) {
    fail(RunVerdict::kCorrectness,
         fmt::format("step {} layer {}: {} log lines for a call whose record promises {}",
                     ctx.step, ctx.layer, log_lines_added, promised));
  }
  ctx.result.checks_passed += 1;
}

void LogChecker::check_surfaced(const CheckContext& ctx, const DispatchRecord& r,
                                int64_t log_lines_added) {
  const int64_t promised = (r.warning_logged ? 1 : 0) + (r.error_logged ? 1 : 0);
  if (log_lines_added != promised) {
    fail(RunVerdict::kCorrectness,
         fmt::format("step {} layer {}: {} log lines for a surfaced error whose record promises {}",
                     ctx.step, ctx.layer, log_lines_added, promised));
  }
  if (r.warning_logged && r.failure) {
    const auto cls = static_cast<std::size_t>(*r.failure);
    if (++warnings_by_class_[cls] > 1) {
      fail(RunVerdict::kCorrectness,
           fmt::format("step {} layer {}: warning for {} logged twice in one process", ctx.step,
                       ctx.layer, failure_class_name(*r.failure)));
    }
  }
}

}  // namespace rcsim::sim
