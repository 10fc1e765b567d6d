// Goal: the dispatcher keeps each fallback policy's contract (semantics.md 1.3, issue 3): what is
// backed up, what is retried, what is restored, in which order the fallback kernels run, what is
// logged, and that strict mode and sticky device errors surface instead of falling back.
// Method: GMock kernels that journal their calls; the fused mock tears qkv (scribbles Q/K rows)
// and throws. qkv is compared byte for byte with a snapshot, both at the moment the first fallback
// kernel runs and after the call; log lines are read from the DispatchProcess's capturing sink.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/dispatch/rope_cache_dispatcher.h"
#include "core/dispatch/tests/dispatch_mock_fixture.h"
#include "core/mutants.h"

namespace rcsim::testing {
namespace {

using ::testing::_;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

LayerSpec spec_with(FallbackPolicy policy, int64_t head_dim = 128) {
  LayerSpec s;
  s.attn = small_config(head_dim);
  s.policy = policy;
  return s;
}

class PolicyTest : public ::testing::Test {
 protected:
  MockKernels<> mocks;
  Journal journal;
  DispatchProcess process;
  void SetUp() override { journal_all(mocks, journal); }
};

// The seed's mock test (single thread; the 8-thread variant is dispatch_concurrency_test): the
// fused mock throws, the fallback kernels run in the policy's order, qkv is restored byte for byte
// before the first of them runs, and one warning covers every call.
TEST_F(PolicyTest, Pr279FailureRestoresThenFallsBackInPrOrder) {
  LayerTensors t(small_config(), 1);
  const HostTensor snapshot = t.qkv;
  fused_tears_and_throws(mocks, journal, FailureClass::kUnavailable);
  bool restored_before_rotary = false;
  ON_CALL(mocks.rotary, run(_)).WillByDefault([&](const RotaryArgs& a) {
    journal.add("rotary");
    restored_before_rotary = t.qkv.bytes_equal(snapshot);
    // PR order: RoPE runs in place on the q/k views of qkv.
    EXPECT_EQ(a.q.base, t.qkv.data());
    EXPECT_EQ(a.k.base, t.qkv.data());
    return KernelRun{};
  });
  RopeCacheDispatcher dispatcher(spec_with(FallbackPolicy::kPr279), mocks.kernels(), process);
  for (int call = 0; call < 3; ++call) {
    const RopeCacheResult r = dispatcher.rope_cache(t.inputs());
    EXPECT_THAT(journal.take(), ElementsAre("fused", "rotary", "rms_norm[H=4]", "rms_norm[H=2]",
                                            "reshape_and_cache"));
    EXPECT_TRUE(restored_before_rotary) << qkv_difference(snapshot, t.qkv, t.cfg);
    EXPECT_TRUE(t.qkv.bytes_equal(snapshot)) << qkv_difference(snapshot, t.qkv, t.cfg);
    EXPECT_EQ(r.record.branch, Branch::kNonFused);
    EXPECT_TRUE(r.record.fused_attempted);
    EXPECT_TRUE(r.record.backup_taken);
    EXPECT_EQ(r.record.backup_bytes, t.qkv.bytes());
    EXPECT_TRUE(r.record.restored);
    EXPECT_EQ(r.record.failure, FailureClass::kUnavailable);
    EXPECT_TRUE(r.record.failure_injected);
    EXPECT_EQ(r.record.warning_logged, call == 0);
    // q and k live in new storage owned by the result; v still aliases qkv.
    ASSERT_NE(r.q_storage, nullptr);
    ASSERT_NE(r.k_storage, nullptr);
    EXPECT_EQ(r.q.base, r.q_storage->view().base);
    EXPECT_EQ(r.k.base, r.k_storage->view().base);
    EXPECT_EQ(r.v.base, t.qkv.data());
  }
  const auto lines = process.log_lines();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_THAT(lines[0], HasSubstr("warning: fused_qk_norm_rope_cache_quant_shuffle failed"));
  EXPECT_THAT(lines[0], HasSubstr("[unavailable]"));
  EXPECT_THAT(lines[0], HasSubstr("falling back to non-fused path"));
  EXPECT_EQ(process.fallback_count(FailureClass::kUnavailable), 3);
  EXPECT_EQ(process.fallback_count_total(), 3);
}

TEST_F(PolicyTest, Pr279RetriesAndBacksUpOnEveryCallEvenOnSuccess) {
  LayerTensors t(small_config(), 2);
  RopeCacheDispatcher dispatcher(spec_with(FallbackPolicy::kPr279), mocks.kernels(), process);
  const std::vector<int64_t> full{t.tokens, t.cfg.qkv_width()};
  EXPECT_CALL(mocks.memory, allocate(DType::kBF16, ::testing::ElementsAreArray(full))).Times(4);
  EXPECT_CALL(mocks.fused, run(_)).Times(4);
  for (int call = 0; call < 4; ++call) {
    const RopeCacheResult r = dispatcher.rope_cache(t.inputs());
    EXPECT_EQ(r.record.branch, Branch::kFused);
    EXPECT_TRUE(r.record.backup_taken);
    EXPECT_FALSE(r.record.restored);
    EXPECT_EQ(r.q.base, t.qkv.data());
  }
  EXPECT_TRUE(process.log_lines().empty());
  EXPECT_EQ(process.fallback_count_total(), 0);
}

TEST_F(PolicyTest, ModelOrderNormsFirstThenRopeOnTheNewStorage) {
  LayerTensors t(small_config(), 3);
  const HostTensor snapshot = t.qkv;
  fused_tears_and_throws(mocks, journal, FailureClass::kLaunchFailure);
  std::vector<std::byte*> rotary_q_bases;
  ON_CALL(mocks.rotary, run(_)).WillByDefault([&](const RotaryArgs& a) {
    journal.add("rotary");
    rotary_q_bases = {a.q.base, a.k.base};
    return KernelRun{};
  });
  RopeCacheDispatcher dispatcher(spec_with(FallbackPolicy::kPr279ModelOrder), mocks.kernels(),
                                 process);
  const RopeCacheResult r = dispatcher.rope_cache(t.inputs());
  EXPECT_THAT(journal.take(), ElementsAre("fused", "rms_norm[H=4]", "rms_norm[H=2]", "rotary",
                                          "reshape_and_cache"));
  ASSERT_NE(r.q_storage, nullptr);
  EXPECT_THAT(rotary_q_bases, ElementsAre(r.q_storage->view().base, r.k_storage->view().base));
  EXPECT_TRUE(t.qkv.bytes_equal(snapshot)) << qkv_difference(snapshot, t.qkv, t.cfg);
  EXPECT_EQ(fallback_order_of(FallbackPolicy::kPr279ModelOrder), FallbackOrder::kNormThenRope);
}

TEST_F(PolicyTest, StickyStopsAttemptingAfterUnavailableAndTakesNoFurtherBackup) {
  LayerTensors t(small_config(), 4);
  fused_tears_and_throws(mocks, journal, FailureClass::kUnavailable);
  EXPECT_CALL(mocks.fused, run(_)).Times(1);
  EXPECT_CALL(mocks.memory, allocate(_, _)).Times(1 + 2 * 3);  // 1 backup, 2 norm outputs a call
  RopeCacheDispatcher dispatcher(spec_with(FallbackPolicy::kSticky), mocks.kernels(), process);
  for (int call = 0; call < 3; ++call) {
    const RopeCacheResult r = dispatcher.rope_cache(t.inputs());
    EXPECT_EQ(r.record.branch, Branch::kNonFused);
    EXPECT_EQ(r.record.fused_attempted, call == 0);
    EXPECT_EQ(r.record.fused_skipped_by_policy, call > 0);
    EXPECT_EQ(r.record.backup_taken, call == 0);
  }
  EXPECT_TRUE(process.fused_disabled());
  EXPECT_EQ(process.log_lines().size(), 1u);
  EXPECT_EQ(process.fallback_count(FailureClass::kUnavailable), 3);
}

TEST_F(PolicyTest, StickyRetriesTransientFailures) {
  LayerTensors t(small_config(), 5);
  fused_tears_and_throws(mocks, journal, FailureClass::kLaunchFailure);
  EXPECT_CALL(mocks.fused, run(_)).Times(3);
  RopeCacheDispatcher dispatcher(spec_with(FallbackPolicy::kSticky), mocks.kernels(), process);
  for (int call = 0; call < 3; ++call) {
    const RopeCacheResult r = dispatcher.rope_cache(t.inputs());
    EXPECT_TRUE(r.record.fused_attempted);
    EXPECT_TRUE(r.record.restored);
  }
  EXPECT_FALSE(process.fused_disabled());
  EXPECT_EQ(process.fallback_count(FailureClass::kLaunchFailure), 3);
}

TEST_F(PolicyTest, QkSliceBackupCoversOnlyQAndK) {
  LayerTensors t(small_config(), 6);
  const HostTensor snapshot = t.qkv;
  // The fused mock also tears V (which the real kernel never writes): the slice policy does not
  // cover V, and this test pins that down, so V stays torn while Q and K are restored.
  fused_tears_and_throws(mocks, journal, FailureClass::kLaunchFailure, /*also_v=*/true);
  const int64_t qk_width = (t.cfg.num_heads_q + t.cfg.num_heads_kv) * t.cfg.head_dim;
  const std::vector<int64_t> slice{t.tokens, qk_width};
  EXPECT_CALL(mocks.memory, allocate(_, _)).Times(::testing::AnyNumber());
  EXPECT_CALL(mocks.memory, allocate(DType::kBF16, ::testing::ElementsAreArray(slice))).Times(1);
  RopeCacheDispatcher dispatcher(spec_with(FallbackPolicy::kQkSliceBackup), mocks.kernels(),
                                 process);
  const RopeCacheResult r = dispatcher.rope_cache(t.inputs());
  EXPECT_EQ(r.record.backup_bytes, t.tokens * qk_width * 2);
  EXPECT_TRUE(r.record.restored);
  const auto width = t.cfg.qkv_width();
  for (int64_t tok = 0; tok < t.tokens; ++tok) {
    for (int64_t col = 0; col < width; ++col) {
      const auto i = static_cast<std::size_t>(tok * width + col);
      if (col < qk_width) {
        ASSERT_EQ(t.qkv.as<uint16_t>()[i], snapshot.as<uint16_t>()[i])
            << "q/k not restored at token " << tok << " col " << col;
      } else {
        ASSERT_NE(t.qkv.as<uint16_t>()[i], snapshot.as<uint16_t>()[i])
            << "V unexpectedly restored at token " << tok << " col " << col;
      }
    }
  }
}

TEST_F(PolicyTest, OutOfPlaceFailureLeavesQkvUntouchedWithoutBackup) {
  LayerTensors t(small_config(), 7);
  const HostTensor snapshot = t.qkv;
  fused_tears_and_throws(mocks, journal, FailureClass::kInvalidArgument);
  EXPECT_CALL(mocks.memory, copy(_, _, _)).Times(0);  // nothing to back up or restore
  RopeCacheDispatcher dispatcher(spec_with(FallbackPolicy::kOutOfPlace), mocks.kernels(),
                                 process);
  const RopeCacheResult r = dispatcher.rope_cache(t.inputs());
  EXPECT_EQ(r.record.branch, Branch::kNonFused);
  EXPECT_FALSE(r.record.backup_taken);
  EXPECT_FALSE(r.record.restored);
  EXPECT_TRUE(t.qkv.bytes_equal(snapshot)) << qkv_difference(snapshot, t.qkv, t.cfg);
  const auto lines = process.log_lines();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_THAT(lines[0], HasSubstr("[invalid_argument]"));
}

TEST_F(PolicyTest, OutOfPlaceSuccessCommitsScratchIntoQkv) {
  LayerTensors t(small_config(), 8);
  const HostTensor snapshot = t.qkv;
  ON_CALL(mocks.fused, run(_)).WillByDefault([&](const FusedQkNormRopeCacheArgs& a) {
    EXPECT_FALSE(a.q_out.is_null());
    EXPECT_NE(a.q_out.base, a.qkv.base);
    scribble(a.q_out, 0x1000);
    scribble(a.k_out, 0x2000);
    return KernelRun{};
  });
  RopeCacheDispatcher dispatcher(spec_with(FallbackPolicy::kOutOfPlace), mocks.kernels(),
                                 process);
  const RopeCacheResult r = dispatcher.rope_cache(t.inputs());
  EXPECT_EQ(r.record.branch, Branch::kFused);
  const auto& c = t.cfg;
  const int64_t d = c.head_dim;
  for (int64_t tok = 0; tok < t.tokens; ++tok) {
    for (int64_t col = 0; col < c.qkv_width(); ++col) {
      const auto i = static_cast<std::size_t>(tok * c.qkv_width() + col);
      const int64_t head = col / d;
      uint16_t expected = snapshot.as<uint16_t>()[i];  // V untouched
      if (head < c.num_heads_q) {
        expected = static_cast<uint16_t>(0x1000 + head * d + col % d);
      } else if (head < c.num_heads_q + c.num_heads_kv) {
        expected = static_cast<uint16_t>(0x2000 + (head - c.num_heads_q) * d + col % d);
      }
      ASSERT_EQ(t.qkv.as<uint16_t>()[i], expected) << "token " << tok << " head " << head
                                                   << " dim " << col % d;
    }
  }
}

TEST_F(PolicyTest, PrevalidateRefusesPartialRotaryWithoutCalling) {
  AttentionConfig c = small_config();
  c.rotary_dim = 64;  // the March 2026 fused kernel is full-rotary only
  LayerTensors t(c, 9);
  LayerSpec s = spec_with(FallbackPolicy::kPrevalidate);
  s.attn = c;
  EXPECT_CALL(mocks.fused, run(_)).Times(0);
  EXPECT_CALL(mocks.memory, copy(_, _, _)).Times(0);
  RopeCacheDispatcher dispatcher(s, mocks.kernels(), process);
  const RopeCacheResult r = dispatcher.rope_cache(t.inputs());
  EXPECT_EQ(r.record.branch, Branch::kNonFused);
  EXPECT_FALSE(r.record.fused_attempted);
  EXPECT_TRUE(r.record.fused_skipped_by_policy);
  EXPECT_EQ(r.record.failure, FailureClass::kInvalidArgument);
  EXPECT_THAT(journal.take(), ElementsAre("rms_norm[H=4]", "rms_norm[H=2]", "rotary",
                                          "reshape_and_cache"));
  const auto lines = process.log_lines();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_THAT(lines[0], HasSubstr("[invalid_argument]"));
  EXPECT_THAT(lines[0], HasSubstr("rotary_dim 64"));
}

TEST_F(PolicyTest, PrevalidateRefusesFiveDimensionalVCacheButCallsOnValidInput) {
  LayerTensors t(small_config(), 10);
  RopeCacheDispatcher dispatcher(spec_with(FallbackPolicy::kPrevalidate), mocks.kernels(),
                                 process);
  EXPECT_CALL(mocks.fused, run(_)).Times(1);
  EXPECT_EQ(dispatcher.rope_cache(t.inputs()).record.branch, Branch::kFused);
  RopeCacheInputs in = t.inputs();
  const AttentionConfig& c = t.cfg;
  in.cache.v_cache = TensorView::contiguous(
      t.v_cache.data(), c.cache_storage_dtype(),
      {c.num_blocks, c.num_heads_kv, c.block_size / c.x(), c.head_dim, c.x()});
  const auto why = fused_precondition_failure(dispatcher.spec(), in);
  ASSERT_TRUE(why.has_value());
  EXPECT_THAT(*why, HasSubstr("v_cache"));
  EXPECT_TRUE(dispatcher.rope_cache(in).record.fused_skipped_by_policy);
}

TEST_F(PolicyTest, PrevalidateChecksEveryPrecondition) {
  LayerTensors t(small_config(128, KvCacheDtype::kFp8E4M3FNUZ), 11);
  LayerSpec s = spec_with(FallbackPolicy::kPrevalidate);
  s.attn = t.cfg;
  ASSERT_FALSE(fused_precondition_failure(s, t.inputs()).has_value());
  struct Breakage {
    const char* expect;
    void (*apply)(RopeCacheInputs&);
  };
  const Breakage breakages[] = {
      {"qkv is absent", [](RopeCacheInputs& in) { in.qkv = {}; }},
      {"q_weight", [](RopeCacheInputs& in) { in.q_weight = {}; }},
      {"k_weight", [](RopeCacheInputs& in) { in.k_weight.dtype = DType::kFP16; }},
      {"cos_sin_cache", [](RopeCacheInputs& in) { in.cos_sin_cache.dtype = DType::kFP16; }},
      {"positions", [](RopeCacheInputs& in) { in.positions.strides[0] = 2; }},
      {"slot_mapping", [](RopeCacheInputs& in) { in.slot_mapping.dtype = DType::kFP32; }},
      {"k_scale", [](RopeCacheInputs& in) { in.cache.k_scale = {}; }},
      {"v_scale", [](RopeCacheInputs& in) { in.cache.v_scale.dtype = DType::kBF16; }},
      {"k_cache", [](RopeCacheInputs& in) { in.cache.k_cache.dtype = DType::kFP8E4M3FN; }},
      {"qkv must be contiguous", [](RopeCacheInputs& in) { in.qkv.strides[0] *= 2; }},
  };
  for (const Breakage& b : breakages) {
    RopeCacheInputs in = t.inputs();
    b.apply(in);
    const auto why = fused_precondition_failure(s, in);
    ASSERT_TRUE(why.has_value()) << b.expect;
    EXPECT_THAT(*why, HasSubstr(b.expect));
  }
  LayerSpec odd = s;
  odd.attn.num_heads_kv = 3;
  EXPECT_THAT(fused_precondition_failure(odd, t.inputs()).value_or(""), HasSubstr("num_heads_kv"));
}

TEST_F(PolicyTest, StrictModeRestoresAndSurfacesInsteadOfFallingBack) {
  LayerTensors t(small_config(), 12);
  const HostTensor snapshot = t.qkv;
  fused_tears_and_throws(mocks, journal, FailureClass::kOutOfMemory);
  LayerSpec s = spec_with(FallbackPolicy::kPr279);
  s.strict = true;
  RopeCacheDispatcher dispatcher(s, mocks.kernels(), process);
  for (int call = 0; call < 2; ++call) {
    try {
      dispatcher.rope_cache(t.inputs());
      FAIL() << "strict mode fell back";
    } catch (const DispatchError& e) {
      EXPECT_EQ(e.failure_class(), FailureClass::kOutOfMemory);
      EXPECT_TRUE(e.injected());
      EXPECT_TRUE(e.record().restored);
      EXPECT_EQ(e.record().error_logged, call == 0);
      EXPECT_THAT(e.what(), HasSubstr("strict"));
    }
    EXPECT_THAT(journal.take(), ElementsAre("fused"));
    EXPECT_TRUE(t.qkv.bytes_equal(snapshot)) << qkv_difference(snapshot, t.qkv, t.cfg);
  }
  const auto lines = process.log_lines();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_THAT(lines[0], HasSubstr("error: "));
  EXPECT_THAT(lines[0], HasSubstr("[out_of_memory]"));
  EXPECT_EQ(process.fallback_count_total(), 0);
}

TEST_F(PolicyTest, StrictModeDoesNotRejectTheConfiguredNonFusedPath) {
  LayerTensors t(small_config(), 13);
  LayerSpec s = spec_with(FallbackPolicy::kPr279);
  s.strict = true;
  s.has_k_norm = false;  // A is never eligible: C is the configured path, not a fallback
  RopeCacheDispatcher dispatcher(s, mocks.kernels(), process);
  EXPECT_EQ(dispatcher.rope_cache(t.inputs()).record.branch, Branch::kNonFused);
  EXPECT_THAT(journal.take(), ElementsAre("rotary", "rms_norm[H=4]", "reshape_and_cache"));
}

TEST_F(PolicyTest, StickyDeviceErrorPropagatesOnceAndPoisonsTheDevice) {
  for (FallbackPolicy policy : all_policies()) {
    SCOPED_TRACE(std::string(policy_name(policy)));
    MockKernels<> m;
    Journal j;
    journal_all(m, j);
    DispatchProcess p;
    LayerTensors t(small_config(), 14);
    fused_tears_and_throws(m, j, FailureClass::kStickyDevice);
    RopeCacheDispatcher dispatcher(spec_with(policy), m.kernels(), p);
    RopeCacheDispatcher other_layer(spec_with(policy), m.kernels(), p);
    try {
      dispatcher.rope_cache(t.inputs());
      FAIL() << "sticky device error was hidden";
    } catch (const DispatchError& e) {
      EXPECT_EQ(e.failure_class(), FailureClass::kStickyDevice);
      EXPECT_FALSE(e.record().restored);  // no more work on a poisoned device
      EXPECT_TRUE(e.record().error_logged);
    }
    EXPECT_THAT(j.take(), ElementsAre("fused"));  // no fallback kernel ran
    EXPECT_FALSE(p.device_healthy());
    for (int call = 0; call < 3; ++call) {
      EXPECT_THROW(other_layer.rope_cache(t.inputs()), DispatchError);
    }
    EXPECT_TRUE(j.take().empty());
    const auto lines = p.log_lines();
    ASSERT_EQ(lines.size(), 1u);
    EXPECT_THAT(lines[0], HasSubstr("error: "));
    EXPECT_THAT(lines[0], HasSubstr("[sticky_device]"));
    EXPECT_EQ(p.fallback_count_total(), 0);
  }
}

TEST_F(PolicyTest, OutOfMemoryAndInvalidArgumentAreLoggedAsDistinctClasses) {
  LayerTensors t(small_config(), 15);
  RopeCacheDispatcher dispatcher(spec_with(FallbackPolicy::kPr279), mocks.kernels(), process);
  for (FailureClass c : {FailureClass::kOutOfMemory, FailureClass::kInvalidArgument,
                         FailureClass::kOutOfMemory, FailureClass::kInvalidArgument}) {
    fused_tears_and_throws(mocks, journal, c);
    dispatcher.rope_cache(t.inputs());
  }
  const auto lines = process.log_lines();
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_THAT(lines[0], HasSubstr("[out_of_memory]"));
  EXPECT_THAT(lines[1], HasSubstr("[invalid_argument]"));
  EXPECT_EQ(process.fallback_count(FailureClass::kOutOfMemory), 2);
  EXPECT_EQ(process.fallback_count(FailureClass::kInvalidArgument), 2);
}

TEST_F(PolicyTest, MissingFusedModuleIsAnUnavailableFailure) {
  LayerTensors t(small_config(), 16);
  KernelSet k = mocks.kernels();
  k.fused = nullptr;
  RopeCacheDispatcher dispatcher(spec_with(FallbackPolicy::kPr279), k, process);
  const RopeCacheResult r = dispatcher.rope_cache(t.inputs());
  EXPECT_TRUE(r.record.fused_attempted);
  EXPECT_EQ(r.record.failure, FailureClass::kUnavailable);
  EXPECT_FALSE(r.record.failure_injected);
  EXPECT_EQ(r.record.branch, Branch::kNonFused);
}

TEST_F(PolicyTest, Fp8CacheUsesPerTokenQuantInCAndStaticScaleInB) {
  LayerTensors t(small_config(64, KvCacheDtype::kFp8E4M3FNUZ), 17);  // D=64: use_triton_attn
  fused_tears_and_throws(mocks, journal, FailureClass::kUnavailable);
  VCacheLayout c_layout = VCacheLayout::kShuffle;
  ON_CALL(mocks.per_token_quant_cache, run(_)).WillByDefault([&](const PerTokenQuantCacheArgs& a) {
    journal.add("per_token_quant_cache");
    c_layout = a.v_layout;
    return KernelRun{};
  });
  LayerSpec s = spec_with(FallbackPolicy::kPr279, 64);
  s.attn = t.cfg;
  RopeCacheDispatcher c_dispatcher(s, mocks.kernels(), process);
  c_dispatcher.rope_cache(t.inputs());
  EXPECT_THAT(journal.take(), ElementsAre("fused", "rotary", "rms_norm[H=4]", "rms_norm[H=2]",
                                          "per_token_quant_cache"));
  EXPECT_EQ(c_layout, VCacheLayout::kPlain);  // asm_layout = !use_triton_attn

  RopeReshapeCacheArgs b_args;
  ON_CALL(mocks.rope_reshape_cache, run(_)).WillByDefault([&](const RopeReshapeCacheArgs& a) {
    b_args = a;
    return KernelRun{};
  });
  s.has_q_norm = false;
  s.has_k_norm = false;
  RopeCacheDispatcher b_dispatcher(s, mocks.kernels(), process);
  EXPECT_EQ(b_dispatcher.rope_cache(t.inputs()).record.branch, Branch::kRopeCache);
  EXPECT_TRUE(b_args.apply_scale);
  EXPECT_FLOAT_EQ(b_args.k_scale_static, 448.0f / 240.0f);
  EXPECT_FLOAT_EQ(b_args.v_scale_static, 448.0f / 240.0f);
  EXPECT_EQ(b_args.v_layout, VCacheLayout::kPlain);
  EXPECT_FLOAT_EQ(atom_static_kv_scale(KvCacheDtype::kFp8E4M3FN), 1.0f);
  EXPECT_FLOAT_EQ(atom_static_kv_scale(KvCacheDtype::kAuto), 1.0f);
}

TEST_F(PolicyTest, InvalidInputIsRejectedBeforeAnyKernelRuns) {
  LayerTensors t(small_config(), 18);
  const HostTensor snapshot = t.qkv;
  RopeCacheDispatcher dispatcher(spec_with(FallbackPolicy::kPr279), mocks.kernels(), process);
  RopeCacheInputs in = t.inputs();
  t.positions.as<int64_t>()[1] = t.cfg.max_position;  // one past the cos/sin table
  EXPECT_THROW(dispatcher.rope_cache(in), InvalidInput);
  t.positions.as<int64_t>()[1] = 0;
  t.slot_mapping.as<int64_t>()[0] = t.cfg.num_slots();
  EXPECT_THROW(dispatcher.rope_cache(in), InvalidInput);
  t.slot_mapping.as<int64_t>()[0] = 0;
  in.k_weight = {};
  EXPECT_THROW(dispatcher.rope_cache(in), InvalidInput);
  EXPECT_TRUE(journal.take().empty());
  EXPECT_TRUE(t.qkv.bytes_equal(snapshot));
}

TEST(PolicyNames, RoundTrip) {
  ASSERT_EQ(all_policies().size(), 6u);
  for (FallbackPolicy p : all_policies()) EXPECT_EQ(policy_from_name(policy_name(p)), p);
  EXPECT_FALSE(policy_from_name("pr-279").has_value());
}

// The dispatcher's mutant hooks change observable behaviour (the property and simulation suites
// then have something to catch).
TEST_F(PolicyTest, MutantHooksChangeBehaviour) {
  LayerTensors t(small_config(64), 19);
  const HostTensor snapshot = t.qkv;
  fused_tears_and_throws(mocks, journal, FailureClass::kLaunchFailure);
  LayerSpec s = spec_with(FallbackPolicy::kPr279, 64);
  {
    ScopedMutant m(Mutant::kRestoreSkipped);
    RopeCacheDispatcher d(s, mocks.kernels(), process);
    EXPECT_TRUE(d.rope_cache(t.inputs()).record.restored);  // the lie the checkers must catch
    EXPECT_FALSE(t.qkv.bytes_equal(snapshot));
  }
  t.qkv = snapshot;
  {
    ScopedMutant m(Mutant::kOnlyQRestored);
    RopeCacheDispatcher d(s, mocks.kernels(), process);
    d.rope_cache(t.inputs());
    EXPECT_THAT(qkv_difference(snapshot, t.qkv, t.cfg), HasSubstr("head 4"));  // first K head
  }
  t.qkv = snapshot;
  {
    ScopedMutant m(Mutant::kBranchBAfterFailure);
    RopeCacheDispatcher d(s, mocks.kernels(), process);
    EXPECT_EQ(d.rope_cache(t.inputs()).record.branch, Branch::kRopeCache);
  }
  journal.take();
  {
    ScopedMutant m(Mutant::kFallbackOrderSwapped);
    RopeCacheDispatcher d(s, mocks.kernels(), process);
    d.rope_cache(t.inputs());
    EXPECT_THAT(journal.take(), ElementsAre("fused", "rms_norm[H=4]", "rms_norm[H=2]", "rotary",
                                            "reshape_and_cache"));
  }
  DispatchProcess fresh;
  {
    ScopedMutant m(Mutant::kWarnPerCall);
    RopeCacheDispatcher d(s, mocks.kernels(), fresh);
    for (int i = 0; i < 3; ++i) d.rope_cache(t.inputs());
    EXPECT_EQ(fresh.log_lines().size(), 3u);
  }
}

}  // namespace
}  // namespace rcsim::testing
