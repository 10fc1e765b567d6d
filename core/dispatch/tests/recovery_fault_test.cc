// Goal: faults in the recovery path itself (testing.md "what none of them has" 9): the backup
// allocation fails, the backup copy or the restore copy stops part-way, a fallback kernel throws.
// Each must surface as DispatchError (never silently wrong data), at most one log line per call
// and none on repeats, never a fallback after a failed restore, and nothing written when the
// failure comes before the fused call.
// Method: GMock memory backend and kernels; the copy mock performs a real partial copy (WorkLimit)
// before throwing, as the fault decorators do; qkv and the caches are compared byte for byte.
#include <algorithm>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/dispatch/rope_cache_dispatcher.h"
#include "core/dispatch/tests/dispatch_mock_fixture.h"

namespace rcsim::testing {
namespace {

using ::testing::_;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Return;

class RecoveryFaultTest : public ::testing::TestWithParam<FallbackPolicy> {
 protected:
  MockKernels<> mocks;
  Journal journal;
  DispatchProcess process;
  LayerTensors t{small_config(), 21};
  HostTensor qkv_before = t.qkv;
  HostTensor k_cache_before = t.k_cache;
  void SetUp() override { journal_all(mocks, journal); }
  LayerSpec spec() const {
    LayerSpec s;
    s.attn = t.cfg;
    s.policy = GetParam();
    return s;
  }
  // Calls `n` times; every call must throw DispatchError of `want`. Returns the records.
  std::vector<DispatchRecord> expect_errors(RopeCacheDispatcher& d, FailureClass want, int n,
                                            bool injected = true) {
    std::vector<DispatchRecord> records;
    for (int i = 0; i < n; ++i) {
      try {
        d.rope_cache(t.inputs());
        ADD_FAILURE() << "call " << i << " did not surface the recovery fault";
      } catch (const DispatchError& e) {
        EXPECT_EQ(e.failure_class(), want) << e.what();
        EXPECT_EQ(e.injected(), injected) << e.what();
        records.push_back(e.record());
      }
    }
    return records;
  }
};

KernelError injected(FailureClass c, const char* what) {
  return KernelError(c, "memory", what, /*injected=*/true);
}

TEST_P(RecoveryFaultTest, BackupAllocationFailureCorruptsNothing) {
  ON_CALL(mocks.memory, allocate(_, _))
      .WillByDefault([](DType, std::span<const int64_t>) -> std::unique_ptr<DeviceBuffer> {
        throw injected(FailureClass::kOutOfMemory, "backup:oom");
      });
  EXPECT_CALL(mocks.fused, run(_)).Times(0);
  RopeCacheDispatcher d(spec(), mocks.kernels(), process);
  const auto records = expect_errors(d, FailureClass::kOutOfMemory, 3);
  for (const auto& r : records) {
    EXPECT_FALSE(r.backup_taken);
    EXPECT_FALSE(r.fused_attempted);
  }
  EXPECT_TRUE(journal.take().empty());
  EXPECT_TRUE(t.qkv.bytes_equal(qkv_before));
  EXPECT_TRUE(t.k_cache.bytes_equal(k_cache_before));
  const auto lines = process.log_lines();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_THAT(lines[0], HasSubstr("error: "));
  EXPECT_THAT(lines[0], HasSubstr("[out_of_memory]"));
  EXPECT_EQ(process.fallback_count_total(), 0);
}

TEST_P(RecoveryFaultTest, AllocatorReturningNullIsOutOfMemory) {
  ON_CALL(mocks.memory, allocate(_, _))
      .WillByDefault([](DType, std::span<const int64_t>) { return std::unique_ptr<DeviceBuffer>{}; });
  RopeCacheDispatcher d(spec(), mocks.kernels(), process);
  expect_errors(d, FailureClass::kOutOfMemory, 1, /*injected=*/false);
  EXPECT_TRUE(t.qkv.bytes_equal(qkv_before));
}

INSTANTIATE_TEST_SUITE_P(AllPolicies, RecoveryFaultTest, ::testing::ValuesIn(all_policies()),
                         policy_test_name);

// The policies that back qkv up (all but out-of-place) share the copy-fault contract.
class BackupCopyFaultTest : public RecoveryFaultTest {};

TEST_P(BackupCopyFaultTest, BackupCopyStoppingPartWayLeavesQkvAndCachesUntouched) {
  ON_CALL(mocks.memory, copy(_, _, _))
      .WillByDefault([this](const TensorView& src, const TensorView& dst, WorkLimit) -> KernelRun {
        mocks.memory.host().copy(src, dst, WorkLimit{src.numel() / 2});
        throw injected(FailureClass::kLaunchFailure, "copy torn");
      });
  EXPECT_CALL(mocks.fused, run(_)).Times(0);
  RopeCacheDispatcher d(spec(), mocks.kernels(), process);
  expect_errors(d, FailureClass::kLaunchFailure, 2);
  EXPECT_TRUE(t.qkv.bytes_equal(qkv_before)) << qkv_difference(qkv_before, t.qkv, t.cfg);
  EXPECT_TRUE(t.k_cache.bytes_equal(k_cache_before));
  EXPECT_EQ(process.log_lines().size(), 1u);
}

TEST_P(BackupCopyFaultTest, RestoreStoppingPartWaySurfacesAndNeverFallsBack) {
  fused_tears_and_throws(mocks, journal, FailureClass::kUnavailable);
  int copies = 0;
  ON_CALL(mocks.memory, copy(_, _, _))
      .WillByDefault([&](const TensorView& src, const TensorView& dst, WorkLimit) -> KernelRun {
        if (++copies % 2 == 1) return mocks.memory.host().copy(src, dst, {});  // the backup
        mocks.memory.host().copy(src, dst, WorkLimit{src.numel() / 3});       // torn restore
        throw injected(FailureClass::kLaunchFailure, "restore torn");
      });
  RopeCacheDispatcher d(spec(), mocks.kernels(), process);
  const bool sticky = GetParam() == FallbackPolicy::kSticky;
  // Sticky learns "unavailable" on the first call even though its restore failed; the others
  // retry the fused kernel, and fail the restore, on every call.
  const auto records = expect_errors(d, FailureClass::kLaunchFailure, sticky ? 1 : 3);
  for (const auto& r : records) {
    EXPECT_TRUE(r.backup_taken);
    EXPECT_FALSE(r.restored);
    EXPECT_EQ(r.failure, FailureClass::kUnavailable);
    EXPECT_FALSE(r.warning_logged);
  }
  // Only the fused kernel ran: no fallback on top of a half-restored qkv.
  if (sticky) {
    EXPECT_THAT(journal.take(), ElementsAre("fused"));
  } else {
    EXPECT_THAT(journal.take(), ElementsAre("fused", "fused", "fused"));
  }
  // The corruption is not silent: qkv differs and the call said so.
  EXPECT_FALSE(t.qkv.bytes_equal(qkv_before));
  const auto lines = process.log_lines();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_THAT(lines[0], HasSubstr("qkv_restore failed [launch_failure]"));
  EXPECT_THAT(lines[0], HasSubstr("fused_qk_norm_rope_cache_quant_shuffle failed [unavailable]"));
  EXPECT_EQ(process.fused_disabled(), sticky);
  if (sticky) {
    // The next call goes straight to the fallback: no fused attempt, no backup, no copy at all.
    const int copies_before = copies;
    RopeCacheResult next = d.rope_cache(t.inputs());
    EXPECT_FALSE(next.record.fused_attempted);
    EXPECT_FALSE(next.record.backup_taken);
    EXPECT_EQ(next.record.branch, Branch::kNonFused);
    EXPECT_EQ(copies, copies_before);
    const std::vector<std::string> calls = journal.take();
    EXPECT_TRUE(std::find(calls.begin(), calls.end(), "fused") == calls.end());
  }
}

INSTANTIATE_TEST_SUITE_P(BackupPolicies, BackupCopyFaultTest,
                         ::testing::Values(FallbackPolicy::kPr279, FallbackPolicy::kPr279ModelOrder,
                                           FallbackPolicy::kSticky, FallbackPolicy::kQkSliceBackup,
                                           FallbackPolicy::kPrevalidate),
                         policy_test_name);

class FallbackKernelFaultTest : public RecoveryFaultTest {};

TEST_P(FallbackKernelFaultTest, FallbackKernelThrowingSurfacesWithOneLine) {
  fused_tears_and_throws(mocks, journal, FailureClass::kLaunchFailure);
  ON_CALL(mocks.rms_norm, run(_)).WillByDefault([](const RmsNormArgs&) -> KernelRun {
    throw KernelError(FailureClass::kUnavailable, "rms_norm", "module_rmsnorm_quant excluded",
                      true);
  });
  RopeCacheDispatcher d(spec(), mocks.kernels(), process);
  const auto records = expect_errors(d, FailureClass::kUnavailable, 4);
  for (const auto& r : records) {
    EXPECT_EQ(r.failure, FailureClass::kLaunchFailure);  // the fused attempt's class
    EXPECT_EQ(r.restored, GetParam() != FallbackPolicy::kOutOfPlace);
    EXPECT_FALSE(r.warning_logged);
  }
  const auto lines = process.log_lines();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_THAT(lines[0], HasSubstr("error: rms_norm failed [unavailable]"));
  EXPECT_THAT(lines[0], HasSubstr("[launch_failure]"));
}

TEST_P(FallbackKernelFaultTest, FallbackStickyDeviceErrorPoisonsTheDevice) {
  fused_tears_and_throws(mocks, journal, FailureClass::kLaunchFailure);
  ON_CALL(mocks.reshape_and_cache, run(_)).WillByDefault([](const ReshapeAndCacheArgs&) -> KernelRun {
    throw KernelError(FailureClass::kStickyDevice, "reshape_and_cache", "context lost", true);
  });
  RopeCacheDispatcher d(spec(), mocks.kernels(), process);
  expect_errors(d, FailureClass::kStickyDevice, 1);
  EXPECT_FALSE(process.device_healthy());
  EXPECT_THROW(d.rope_cache(t.inputs()), DispatchError);
  EXPECT_EQ(process.log_lines().size(), 1u);
}

TEST_P(FallbackKernelFaultTest, MissingFallbackModuleIsUnavailable) {
  fused_tears_and_throws(mocks, journal, FailureClass::kUnavailable);
  KernelSet k = mocks.kernels();
  k.rotary = nullptr;  // semantics.md 6.2: the fallback's own modules may be CK-excluded too
  RopeCacheDispatcher d(spec(), k, process);
  expect_errors(d, FailureClass::kUnavailable, 1, /*injected=*/false);
  EXPECT_THAT(process.log_lines().at(0), HasSubstr("rotary_embedding failed [unavailable]"));
}

INSTANTIATE_TEST_SUITE_P(AllPolicies, FallbackKernelFaultTest,
                         ::testing::ValuesIn(all_policies()), policy_test_name);

TEST(RecoveryFault, OutOfPlaceCommitFailureSurfaces) {
  MockKernels<> mocks;
  Journal journal;
  journal_all(mocks, journal);
  DispatchProcess process;
  LayerTensors t(small_config(), 22);
  ON_CALL(mocks.memory, copy(_, _, _))
      .WillByDefault([](const TensorView&, const TensorView&, WorkLimit) -> KernelRun {
        throw KernelError(FailureClass::kLaunchFailure, "memory", "commit", true);
      });
  LayerSpec s;
  s.attn = t.cfg;
  s.policy = FallbackPolicy::kOutOfPlace;
  RopeCacheDispatcher d(s, mocks.kernels(), process);
  try {
    d.rope_cache(t.inputs());
    FAIL() << "commit failure hidden";
  } catch (const DispatchError& e) {
    EXPECT_EQ(e.failure_class(), FailureClass::kLaunchFailure);
    EXPECT_THAT(e.what(), HasSubstr("out_of_place_commit"));
  }
  EXPECT_EQ(process.log_lines().size(), 1u);
}

}  // namespace
}  // namespace rcsim::testing
