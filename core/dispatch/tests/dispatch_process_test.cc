// Goal: DispatchProcess keeps its promises: one line per (kernel, failure class) for warnings and
// errors separately, the line names the class, the capturing ring keeps exactly the newest
// kLogLinesMax lines, counters per class, sticky-disable and device health flags.
// Method: direct calls; lines read back through log_lines().
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <spdlog/spdlog.h>

#include "core/dispatch/rope_cache_dispatcher.h"

namespace rcsim {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(DispatchProcess, OncePerKernelAndClassWithTheClassNamed) {
  DispatchProcess p;
  EXPECT_TRUE(p.warn_fallback_once("fusedA", FailureClass::kOutOfMemory, "d1"));
  EXPECT_FALSE(p.warn_fallback_once("fusedA", FailureClass::kOutOfMemory, "d2"));
  EXPECT_TRUE(p.warn_fallback_once("fusedA", FailureClass::kInvalidArgument, "d3"));
  EXPECT_TRUE(p.warn_fallback_once("fusedB", FailureClass::kOutOfMemory, "d4"));
  EXPECT_TRUE(p.error_once("fusedA", FailureClass::kOutOfMemory, "d5"));  // errors keyed apart
  EXPECT_FALSE(p.error_once("fusedA", FailureClass::kOutOfMemory, "d6"));
  EXPECT_THAT(p.log_lines(),
              ElementsAre("warning: fusedA failed [out_of_memory] (d1), falling back to non-fused path",
                          "warning: fusedA failed [invalid_argument] (d3), falling back to non-fused path",
                          "warning: fusedB failed [out_of_memory] (d4), falling back to non-fused path",
                          "error: fusedA failed [out_of_memory] (d5), not falling back"));
  EXPECT_EQ(p.logger()->name(), "rcsim.fallback");
}

TEST(DispatchProcess, RingKeepsTheNewestLines) {
  DispatchProcess p;
  const int64_t total = DispatchProcess::kLogLinesMax + 10;
  for (int64_t i = 0; i < total; ++i) {
    p.warn_fallback_once("k" + std::to_string(i), FailureClass::kLaunchFailure, "x");
  }
  const auto lines = p.log_lines();
  ASSERT_EQ(static_cast<int64_t>(lines.size()), DispatchProcess::kLogLinesMax);
  EXPECT_THAT(lines.front(), HasSubstr("k10 failed"));
  EXPECT_THAT(lines.back(), HasSubstr("k" + std::to_string(total - 1) + " failed"));
}

TEST(DispatchProcess, CountersAndFlags) {
  DispatchProcess p;
  EXPECT_TRUE(p.device_healthy());
  EXPECT_FALSE(p.fused_disabled());
  p.count_fallback(FailureClass::kUnavailable);
  p.count_fallback(FailureClass::kUnavailable);
  p.count_fallback(FailureClass::kOutOfMemory);
  EXPECT_EQ(p.fallback_count(FailureClass::kUnavailable), 2);
  EXPECT_EQ(p.fallback_count(FailureClass::kOutOfMemory), 1);
  EXPECT_EQ(p.fallback_count(FailureClass::kLaunchFailure), 0);
  EXPECT_EQ(p.fallback_count_total(), 3);
  p.disable_fused();
  p.mark_device_unhealthy();
  EXPECT_TRUE(p.fused_disabled());
  EXPECT_FALSE(p.device_healthy());
  DispatchProcess fresh;  // a new simulated process starts clean
  EXPECT_TRUE(fresh.device_healthy());
  EXPECT_TRUE(fresh.warn_fallback_once("k", FailureClass::kUnavailable, "x"));
}

}  // namespace
}  // namespace rcsim
