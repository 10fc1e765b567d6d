// Goal: the seed's mock test under concurrency: 8 dispatcher instances (layers) sharing one
// DispatchProcess, driven by 8 threads, 1000 calls in all, the fused mock failing every time.
// The warning is logged exactly once, every call falls back in the policy's order, every qkv is
// restored byte for byte, and the counters add up. Run under the tsan preset (the CTest name
// contains "concurrency") to check the process state and the log sink for data races.
// Method: one MockKernels set per thread (GMock expectations are set before the threads start),
// one tensor set per thread (qkv is written in place), a start barrier so the first calls race.
#include <atomic>
#include <barrier>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/dispatch/rope_cache_dispatcher.h"
#include "core/dispatch/tests/dispatch_mock_fixture.h"

namespace rcsim::testing {
namespace {

using ::testing::HasSubstr;

constexpr int kThreads = 8;
constexpr int kCallsTotal = 1000;

class ConcurrencyTest : public ::testing::TestWithParam<FallbackPolicy> {};

TEST_P(ConcurrencyTest, WarningLoggedOnceAcrossThreadsAndLayers) {
  const FallbackPolicy policy = GetParam();
  DispatchProcess process;
  struct PerThread {
    MockKernels<> mocks;
    Journal journal;
    std::unique_ptr<LayerTensors> tensors;
    std::unique_ptr<RopeCacheDispatcher> dispatcher;
    int bad_order = 0, not_restored = 0, warnings = 0;
  };
  std::vector<std::unique_ptr<PerThread>> threads_state;
  for (int i = 0; i < kThreads; ++i) {
    auto s = std::make_unique<PerThread>();
    journal_all(s->mocks, s->journal);
    fused_tears_and_throws(s->mocks, s->journal, FailureClass::kUnavailable);
    s->tensors = std::make_unique<LayerTensors>(small_config(), 100 + static_cast<uint64_t>(i));
    LayerSpec spec;
    spec.attn = small_config();
    spec.policy = policy;
    spec.layer_index = i;
    s->dispatcher = std::make_unique<RopeCacheDispatcher>(spec, s->mocks.kernels(), process);
    threads_state.push_back(std::move(s));
  }
  const std::vector<std::string> pr_order{"fused", "rotary", "rms_norm[H=4]", "rms_norm[H=2]",
                                          "reshape_and_cache"};
  const std::vector<std::string> model_order{"fused", "rms_norm[H=4]", "rms_norm[H=2]", "rotary",
                                             "reshape_and_cache"};
  std::vector<std::string> want =
      fallback_order_of(policy) == FallbackOrder::kRopeThenNorm ? pr_order : model_order;
  std::barrier start(kThreads);
  std::vector<std::thread> workers;
  for (int i = 0; i < kThreads; ++i) {
    workers.emplace_back([&, i] {
      PerThread& s = *threads_state[static_cast<std::size_t>(i)];
      const HostTensor snapshot = s.tensors->qkv;
      start.arrive_and_wait();
      for (int call = i; call < kCallsTotal; call += kThreads) {
        const RopeCacheResult r = s.dispatcher->rope_cache(s.tensors->inputs());
        std::vector<std::string> calls = s.journal.take();
        // sticky: only the first call of the process attempts; the rest skip "fused".
        if (!calls.empty() && calls.front() != "fused") calls.insert(calls.begin(), "fused");
        if (calls != want) ++s.bad_order;
        if (!s.tensors->qkv.bytes_equal(snapshot)) ++s.not_restored;
        if (r.record.warning_logged) ++s.warnings;
      }
    });
  }
  for (auto& w : workers) w.join();
  int warnings = 0;
  for (const auto& s : threads_state) {
    EXPECT_EQ(s->bad_order, 0);
    EXPECT_EQ(s->not_restored, 0);
    warnings += s->warnings;
  }
  EXPECT_EQ(warnings, 1);
  const auto lines = process.log_lines();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_THAT(lines[0], HasSubstr("[unavailable]"));
  EXPECT_EQ(process.fallback_count(FailureClass::kUnavailable), kCallsTotal);
  EXPECT_EQ(process.fallback_count_total(), kCallsTotal);
}

INSTANTIATE_TEST_SUITE_P(Policies, ConcurrencyTest,
                         ::testing::Values(FallbackPolicy::kPr279, FallbackPolicy::kPr279ModelOrder,
                                           FallbackPolicy::kSticky),
                         policy_test_name);

// The capturing ring keeps the newest kLogLinesMax lines and stays consistent under contention.
TEST(DispatchProcessConcurrency, DistinctKeysLogOnceEachFromManyThreads) {
  DispatchProcess process;
  constexpr int kKernels = 16;
  std::barrier start(kThreads);
  std::atomic<int> emitted{0};
  std::vector<std::thread> workers;
  for (int i = 0; i < kThreads; ++i) {
    workers.emplace_back([&] {
      start.arrive_and_wait();
      for (int k = 0; k < kKernels; ++k) {
        for (FailureClass c : kAllFailureClasses) {
          const std::string kernel = "kernel" + std::to_string(k);
          if (process.warn_fallback_once(kernel, c, "detail")) ++emitted;
          if (process.error_once(kernel, c, "detail")) ++emitted;
          process.count_fallback(c);
        }
      }
    });
  }
  for (auto& w : workers) w.join();
  const int keys = kKernels * static_cast<int>(std::size(kAllFailureClasses));
  EXPECT_EQ(emitted.load(), 2 * keys);
  EXPECT_EQ(process.log_lines().size(), static_cast<std::size_t>(2 * keys));
  EXPECT_EQ(process.fallback_count_total(), int64_t{kThreads} * keys);
}

}  // namespace
}  // namespace rcsim::testing
