// Mock wiring shared by the dispatcher's mock tests: a call journal every mock appends to, a fused
// mock that tears qkv (scribbles the Q and K rows it may write, optionally V) and then throws a
// chosen failure class, and norm mocks that write their output so that new storage is visible.
#pragma once

#include <mutex>
#include <string>
#include <vector>

#include "core/dispatch/tests/dispatch_fixture.h"
#include "core/errors.h"
#include "fakes/mocks/kernel_mocks.h"

namespace rcsim::testing {

struct Journal {
  std::mutex mutex;
  std::vector<std::string> calls;
  void add(std::string name) {
    std::lock_guard<std::mutex> lock(mutex);
    calls.push_back(std::move(name));
  }
  std::vector<std::string> take() {
    std::lock_guard<std::mutex> lock(mutex);
    return std::exchange(calls, {});
  }
};

using fakes::MockKernels;

// gtest parameter names for policies ("qk-slice-backup" -> "qk_slice_backup").
inline std::string policy_test_name(const ::testing::TestParamInfo<FallbackPolicy>& param) {
  std::string n(policy_name(param.param));
  std::replace(n.begin(), n.end(), '-', '_');
  return n;
}

// Default behaviours: every kernel journals its name and succeeds; rms_norm copies input to
// output (so a result that points at new storage holds the normalised-q stand-in).
template <typename Mocks>
void journal_all(Mocks& m, Journal& j) {
  using ::testing::_;
  ON_CALL(m.fused, run(_)).WillByDefault([&j](const FusedQkNormRopeCacheArgs& a) {
    j.add("fused");
    return KernelRun{a.qkv.size(0), a.qkv.size(0)};
  });
  ON_CALL(m.rope_reshape_cache, run(_)).WillByDefault([&j](const RopeReshapeCacheArgs&) {
    j.add("rope_reshape_cache");
    return KernelRun{};
  });
  ON_CALL(m.rotary, run(_)).WillByDefault([&j](const RotaryArgs&) {
    j.add("rotary");
    return KernelRun{};
  });
  ON_CALL(m.rms_norm, run(_)).WillByDefault([&j](const RmsNormArgs& a) {
    j.add("rms_norm[H=" + std::to_string(a.input.size(1)) + "]");
    fakes::copy_elements(a.input, a.output, {});
    return KernelRun{};
  });
  ON_CALL(m.reshape_and_cache, run(_)).WillByDefault([&j](const ReshapeAndCacheArgs&) {
    j.add("reshape_and_cache");
    return KernelRun{};
  });
  ON_CALL(m.per_token_quant_cache, run(_)).WillByDefault([&j](const PerTokenQuantCacheArgs&) {
    j.add("per_token_quant_cache");
    return KernelRun{};
  });
}

// The fused kernel tears its in-place output (Q and K rows of qkv, and V too if `also_v`, which
// the real kernel never does) and then throws `failure`.
template <typename Mocks>
void fused_tears_and_throws(Mocks& m, Journal& j, FailureClass failure, bool also_v = false) {
  using ::testing::_;
  ON_CALL(m.fused, run(_)).WillByDefault([&j, failure, also_v](const FusedQkNormRopeCacheArgs& a) {
    j.add("fused");
    const QkvViews v =
        split_qkv(a.qkv, a.cfg.num_heads_q, a.cfg.num_heads_kv, a.cfg.head_dim);
    scribble(a.q_out.is_null() ? v.q : a.q_out, 0x4000);
    scribble(a.k_out.is_null() ? v.k : a.k_out, 0x4100);
    if (also_v) scribble(v.v, 0x4200);
    throw KernelError(failure, std::string(FusedQkNormRopeCacheKernel::kName), "mock failure",
                      /*injected=*/true);
    return KernelRun{};
  });
}

}  // namespace rcsim::testing
