// Goal: the full branch decision table of ATOM's rope_cache, before PR #279 and with it
// (semantics.md 1.2, 1.3, 5.1): every combination of rotary / q_norm / k_norm present,
// use_triton_attn, qkv present, and the fused outcome (succeeds, or throws each failure class).
// Method: mock kernels count their calls; each row's expectation is derived from the rules as
// written in semantics.md (restated in `expected_row` below, independent of the dispatcher's
// code), and the branch, the attempt, the restore, the exception and every kernel's call count
// are asserted. The PR's edge (rotary && q_norm && !k_norm && use_triton_attn: B before, C after)
// also has its own named test.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <optional>

#include "core/dispatch/rope_cache_dispatcher.h"
#include "core/dispatch/tests/dispatch_mock_fixture.h"

namespace rcsim::testing {
namespace {

using ::testing::_;

struct Row {
  bool rotary, q_norm, k_norm, triton, qkv;
  std::optional<FailureClass> fused_throws;  // nullopt: the fused kernel succeeds
  DecisionLogic logic;
};

struct Expectation {
  bool fused_called = false;
  std::optional<Branch> branch;         // nullopt: the call throws DispatchError
  std::optional<FailureClass> error;    // class of that DispatchError
  bool restored = false;
};

// The rules, restated from semantics.md:
//   A iff rotary && q_norm && k_norm (and qkv present: the review's edge, never call on null).
//   pre-PR: B iff use_triton_attn && rotary; no try/except, so a fused exception propagates.
//   PR #279: B iff !fused_ok && use_triton_attn && rotary && q_norm is None; C otherwise; a
//   failure is restored and falls back, except a sticky device error, which surfaces.
Expectation expected_row(const Row& r) {
  Expectation e;
  const bool a = r.rotary && r.q_norm && r.k_norm && r.qkv;
  if (a) {
    e.fused_called = true;
    if (!r.fused_throws) {
      e.branch = Branch::kFused;
      return e;
    }
    if (r.logic == DecisionLogic::kPrBase || *r.fused_throws == FailureClass::kStickyDevice) {
      e.error = *r.fused_throws;
      return e;
    }
    e.restored = true;
  }
  const bool b_allowed = r.logic == DecisionLogic::kPrBase ? true : !r.q_norm;
  e.branch = (r.triton && r.rotary && b_allowed) ? Branch::kRopeCache : Branch::kNonFused;
  return e;
}

struct Counts {
  int fused = 0, rope_reshape_cache = 0, rotary = 0, rms_norm = 0, reshape_and_cache = 0;
};

TEST(DecisionTable, EveryRowBothLogics) {
  std::vector<std::optional<FailureClass>> outcomes{std::nullopt};
  for (FailureClass c : kAllFailureClasses) outcomes.push_back(c);
  int rows = 0;
  for (DecisionLogic logic : {DecisionLogic::kPrBase, DecisionLogic::kPr279}) {
    for (int bits = 0; bits < 32; ++bits) {
      for (const auto& outcome : outcomes) {
        const Row r{(bits & 1) != 0, (bits & 2) != 0, (bits & 4) != 0, (bits & 8) != 0,
                    (bits & 16) != 0, outcome, logic};
        const std::string row_name = fmt::format(
            "logic={} rotary={} q_norm={} k_norm={} triton={} qkv={} fused={}",
            logic == DecisionLogic::kPrBase ? "pr-base" : "pr279", r.rotary, r.q_norm, r.k_norm,
            r.triton, r.qkv, outcome ? failure_class_name(*outcome) : "ok");
        SCOPED_TRACE(row_name);
        ++rows;
        MockKernels<> m;
        Journal j;
        journal_all(m, j);
        if (outcome) fused_tears_and_throws(m, j, *outcome);
        Counts n;
        ON_CALL(m.rope_reshape_cache, run(_)).WillByDefault([&n](const RopeReshapeCacheArgs&) {
          ++n.rope_reshape_cache;
          return KernelRun{};
        });
        ON_CALL(m.rotary, run(_)).WillByDefault([&n](const RotaryArgs&) {
          ++n.rotary;
          return KernelRun{};
        });
        ON_CALL(m.rms_norm, run(_)).WillByDefault([&n](const RmsNormArgs&) {
          ++n.rms_norm;
          return KernelRun{};
        });
        ON_CALL(m.reshape_and_cache, run(_)).WillByDefault([&n](const ReshapeAndCacheArgs&) {
          ++n.reshape_and_cache;
          return KernelRun{};
        });
        DispatchProcess process;
        LayerSpec spec;
        spec.attn = small_config(r.triton ? 64 : 128);
        spec.has_rotary = r.rotary;
        spec.has_q_norm = r.q_norm;
        spec.has_k_norm = r.k_norm;
        spec.logic = logic;
        ASSERT_EQ(spec.use_triton_attn(), r.triton);
        LayerTensors t(spec.attn, static_cast<uint64_t>(bits));
        const HostTensor snapshot = t.qkv;
        RopeCacheDispatcher dispatcher(spec, m.kernels(), process);
        const Expectation want = expected_row(r);

        std::optional<DispatchRecord> record;
        std::optional<FailureClass> error;
        try {
          record = dispatcher.rope_cache(t.inputs(r.qkv)).record;
        } catch (const DispatchError& e) {
          error = e.failure_class();
          record = e.record();
        }
        for (const std::string& call : j.take()) {
          if (call == "fused") ++n.fused;
        }
        ASSERT_EQ(error, want.error);
        EXPECT_EQ(n.fused, want.fused_called ? 1 : 0);
        EXPECT_EQ(record->fused_attempted, want.fused_called);
        EXPECT_EQ(record->restored, want.restored);
        if (want.restored) {
          EXPECT_TRUE(t.qkv.bytes_equal(snapshot)) << qkv_difference(snapshot, t.qkv, t.cfg);
        }
        if (want.error) {
          EXPECT_EQ(n.rope_reshape_cache + n.rotary + n.rms_norm + n.reshape_and_cache, 0);
          EXPECT_EQ(process.device_healthy(), *want.error != FailureClass::kStickyDevice);
          continue;
        }
        EXPECT_EQ(record->branch, *want.branch);
        const bool b = *want.branch == Branch::kRopeCache;
        const bool c = *want.branch == Branch::kNonFused;
        EXPECT_EQ(n.rope_reshape_cache, b ? 1 : 0);
        EXPECT_EQ(n.rotary, c && r.rotary ? 1 : 0);
        EXPECT_EQ(n.rms_norm, c ? int{r.q_norm} + int{r.k_norm} : 0);
        EXPECT_EQ(n.reshape_and_cache, c ? 1 : 0);
        // A fallback (and only a fallback) logs one warning and counts once.
        const bool fell_back = want.fused_called && outcome.has_value();
        EXPECT_EQ(process.log_lines().size(), fell_back ? 1u : 0u);
        EXPECT_EQ(process.fallback_count_total(), fell_back ? 1 : 0);
        // decide() agrees with what ran, before any attempt.
        EXPECT_EQ(RopeCacheDispatcher::decide(spec, r.qkv),
                  want.fused_called ? Branch::kFused : *want.branch);
      }
    }
  }
  EXPECT_EQ(rows, 2 * 32 * 6);
}

// The one row whose branch PR #279 changed without any failure involved.
TEST(DecisionTable, PrEdgeRotaryQNormWithoutKNormUnderTritonAttention) {
  LayerSpec spec;
  spec.attn = small_config(64);
  spec.has_k_norm = false;
  ASSERT_TRUE(spec.use_triton_attn());
  spec.logic = DecisionLogic::kPrBase;
  EXPECT_EQ(RopeCacheDispatcher::decide(spec, true), Branch::kRopeCache);
  spec.logic = DecisionLogic::kPr279;
  EXPECT_EQ(RopeCacheDispatcher::decide(spec, true), Branch::kNonFused);
  // use_triton_attn also follows a sliding window at head_dim 128.
  spec.attn = small_config(128);
  EXPECT_FALSE(spec.use_triton_attn());
  spec.sliding_window = 4096;
  EXPECT_TRUE(spec.use_triton_attn());
}

}  // namespace
}  // namespace rcsim::testing
