// Goal: for each fallback policy of the rope_cache dispatcher and each fault kind, the outcome the
// policy promises, asserted for k = 0, 1, mid, N-1, N wherever the kind takes a k. The promise
// per (policy, kind) is the table kTable below. Where a policy genuinely does not hold under a
// fault model (qk-slice-backup or out-of-place vs garbage written into qkv regions they do not
// restore; every policy but out-of-place vs a late asynchronous error) the cell says so: that is
// the finding, not a failure to hide.
// Method: the real dispatcher over the CPU backend wrapped in FaultyKernelSet, on a small layer
// with sentinel-filled caches. "Fallback" means: no error, branch C, the injected failure
// recorded, one warning, and every output (qkv, q, k, both caches) byte-identical to the same
// policy's clean fallback (the fused call failing before any write). "Surface" means a
// DispatchError of the named class, tagged injected. "Wrong" means the call returned without
// error yet some output differs from the clean fallback: silently wrong data.
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "core/dispatch/rope_cache_dispatcher.h"
#include "core/errors.h"
#include "fakes/faults/faulty_kernels.h"
#include "fault_injection/plan/fault_plan.h"
#include "fakes/faults/tests/fault_test_support.h"
#include "kernels/cpu/cpu_backend.h"

namespace rcsim {
namespace {

using namespace fault_testing;

constexpr int64_t kTokens = 5;
const uint64_t kSeedAtStartup = test_seed();

AttentionConfig policy_config(KvCacheDtype kv = KvCacheDtype::kAuto) {
  AttentionConfig c = small_config(kv);
  c.head_dim = 128;  // use_triton_attn false: the fallback writes V in the shuffle order too
  c.rotary_dim = 128;
  return c;
}

LayerSpec layer_spec(FallbackPolicy policy, const AttentionConfig& cfg) {
  LayerSpec s;
  s.attn = cfg;
  s.policy = policy;
  s.logic = DecisionLogic::kPr279;
  return s;
}

RopeCacheInputs inputs_of(const Layer& l) {
  RopeCacheInputs in;
  in.qkv = l.qkv.view();
  in.positions = l.positions.view();
  in.slot_mapping = l.slots.view();
  in.cos_sin_cache = l.cos_sin.view();
  in.q_weight = l.q_weight.view();
  in.k_weight = l.k_weight.view();
  in.cache = l.cache();
  return in;
}

HostTensor copy_out(const TensorView& v) {
  HostTensor t(v.dtype, {v.size(0), v.size(1), v.size(2)});
  copy_view(v, t.view());
  return t;
}

// What one dispatcher call left behind.
struct CallResult {
  std::optional<DispatchRecord> record;  // set iff the call returned
  std::optional<DispatchError> error;    // set iff it threw DispatchError
  Snapshot memory;
  HostTensor q, k;  // what attention would read next
  int64_t log_lines = 0;
  FaultStats stats;
};

CallResult run_call(FallbackPolicy policy, const std::string& spec, uint64_t stream,
                    const AttentionConfig& cfg = policy_config()) {
  cpu::CpuBackend cpu;
  Layer layer(cfg, kTokens, stream, /*v_cache_4d=*/true);
  FaultyKernelSet faulty(cpu.kernels(), parse_fault_plan(spec), test_seed());
  DispatchProcess process;
  RopeCacheDispatcher dispatcher(layer_spec(policy, cfg), faulty.kernels(), process);
  CallResult r;
  try {
    RopeCacheResult out = dispatcher.rope_cache(inputs_of(layer));
    r.record = out.record;
    r.q = copy_out(out.q);
    r.k = copy_out(out.k);
  } catch (const DispatchError& e) {
    r.error = e;
  }
  r.memory = layer.snapshot();
  r.log_lines = static_cast<int64_t>(process.log_lines().size());
  r.stats = faulty.stats();
  return r;
}

std::string output_difference(const CallResult& a, const CallResult& b) {
  const std::string mem = first_difference(a.memory, b.memory);
  if (!mem.empty()) return mem;
  if (!a.q.bytes_equal(b.q)) return "q";
  if (!a.k.bytes_equal(b.k)) return "k";
  return "";
}

// ---- The promise table ------------------------------------------------------------------------
enum class Promise : uint8_t {
  kFallback,           // restored (or never touched) and fell back: equals the clean fallback
  kFallbackIfRestored, // kFallback iff every qkv region the payload hit is one this policy
                       // restores; otherwise kWrong (computed per k by payload_escapes())
  kSurface,            // DispatchError of `failure`
  kLateSilent,         // returns "fused ok" (wrong data unless k = N); the next call surfaces
};
struct Cell {
  Promise promise;
  FailureClass failure = FailureClass::kLaunchFailure;
};
constexpr Cell F{Promise::kFallback};
constexpr Cell R{Promise::kFallbackIfRestored};
constexpr Cell L{Promise::kLateSilent};
constexpr Cell S(FailureClass c) { return {Promise::kSurface, c}; }
constexpr Cell SL = S(FailureClass::kLaunchFailure);
constexpr Cell SD = S(FailureClass::kStickyDevice);
constexpr Cell SO = S(FailureClass::kOutOfMemory);

// The k a row's spec is instantiated with; `{k}` in the spec is replaced by each.
const char* const kKs[] = {"0", "1", "mid", "last", "all"};

struct Row {
  std::string spec;  // "{k}" = each of kKs; no "{k}" = one run
  FaultRegion payload_region = FaultRegion::kAll;  // for kFallbackIfRestored
  // Columns in the order of all_policies(): pr279, pr279-model-order, sticky, qk-slice-backup,
  // out-of-place, prevalidate.
  std::array<Cell, 6> cells;
};

const std::vector<Row> kTable = {
    // Failures of the fused call before any write: every policy falls back cleanly.
    {"fused:unavailable", FaultRegion::kAll, {F, F, F, F, F, F}},
    {"fused:launch", FaultRegion::kAll, {F, F, F, F, F, F}},
    {"fused:invalid", FaultRegion::kAll, {F, F, F, F, F, F}},  // API drift hidden (ATOM #1257)
    {"fused:oom", FaultRegion::kAll, {F, F, F, F, F, F}},      // OOM hidden too
    {"fused:rebuild(cost_us=1000)", FaultRegion::kAll, {F, F, F, F, F, F}},
    // Torn in-place writes: the full backup, the q/k slice backup (the kernel never writes V)
    // and the scratch outputs all protect qkv; the fallback overwrites every cache slot.
    {"fused:torn(k={k})", FaultRegion::kAll, {F, F, F, F, F, F}},
    {"fused:torn(unit=token,k={k})", FaultRegion::kAll, {F, F, F, F, F, F}},
    {"fused:torn(unit=tile,tile=2,k={k})", FaultRegion::kAll, {F, F, F, F, F, F}},
    {"fused:cacheonly(k={k})", FaultRegion::kAll, {F, F, F, F, F, F}},
    // Corrupting writes: safe only where the policy restores the region hit.
    {"fused:garbage(k={k})", FaultRegion::kAll, {F, F, F, R, R, F}},
    {"fused:garbage(k={k},region=v)", FaultRegion::kV, {F, F, F, R, R, F}},
    {"fused:garbage(k={k},region=q)", FaultRegion::kQ, {F, F, F, F, R, F}},
    {"fused:nan(k={k},region=k)", FaultRegion::kK, {F, F, F, F, R, F}},
    {"fused:nan(k={k},region=cache)", FaultRegion::kCache, {F, F, F, F, F, F}},
    // Sticky device error: never restored, never fallen back.
    {"fused:sticky(k={k})", FaultRegion::kAll, {SD, SD, SD, SD, SD, SD}},
    // Late asynchronous error: the call "succeeds"; only out-of-place has another device call
    // (the commit) in the same rope_cache and so surfaces it there.
    {"fused:late(k={k})", FaultRegion::kAll, {L, L, L, L, SD, L}},
    // Faults in the recovery path surface.
    {"backup:oom", FaultRegion::kAll, {SO, SO, SO, SO, SO, SO}},
    {"fused:torn(k=mid);restore:partial(k={k})", FaultRegion::kAll, {SL, SL, SL, SL, F, SL}},
    {"fused:launch;restore:launch", FaultRegion::kAll, {SL, SL, SL, SL, F, SL}},
    {"fused:launch;fallback.rope:torn(k={k})", FaultRegion::kAll, {SL, SL, SL, SL, SL, SL}},
    {"fused:launch;fallback.norm:torn(k={k})", FaultRegion::kAll, {SL, SL, SL, SL, SL, SL}},
    {"fused:launch;fallback.cache:torn(k={k})", FaultRegion::kAll, {SL, SL, SL, SL, SL, SL}},
    {"fused:launch;fallback.rope:sticky", FaultRegion::kAll, {SD, SD, SD, SD, SD, SD}},
};

// Which qkv regions a policy restores after a failed fused call.
bool policy_restores(FallbackPolicy p, FaultRegion part) {
  switch (p) {
    case FallbackPolicy::kQkSliceBackup: return part == FaultRegion::kQ || part == FaultRegion::kK;
    case FallbackPolicy::kOutOfPlace: return false;  // nothing: it relies on qkv being read-only
    default: return true;
  }
}

// Whether a payload after k of N fused units hits a qkv region `policy` does not restore.
bool payload_escapes(FallbackPolicy policy, FaultRegion region, int64_t k, int64_t n,
                     const AttentionConfig& c) {
  const int64_t heads = c.num_heads_q + 2 * c.num_heads_kv;
  for (int64_t g = k; g < n; ++g) {
    const int64_t h = g % heads;
    const FaultRegion part = h < c.num_heads_q ? FaultRegion::kQ
                             : h < c.num_heads_q + c.num_heads_kv ? FaultRegion::kK
                                                                  : FaultRegion::kV;
    if ((region == FaultRegion::kAll || region == part) && !policy_restores(policy, part)) {
      return true;
    }
  }
  return false;
}

std::string with_k(const std::string& spec, const std::string& k) {
  const std::size_t at = spec.find("{k}");
  return at == std::string::npos ? spec : spec.substr(0, at) + k + spec.substr(at + 3);
}

// Run for a bf16 cache and for an fp8 cache (per-token scales: the fused kernel and the fallback
// both write them, so a torn or poisoned scale must be overwritten too).
class PolicyFaultOutcomesTable : public ::testing::TestWithParam<KvCacheDtype> {};

TEST_P(PolicyFaultOutcomesTable, EveryPolicyUnderEveryFaultKeepsItsPromise) {
  const AttentionConfig cfg = policy_config(GetParam());
  const int64_t n_fused = kTokens * (cfg.num_heads_q + 2 * cfg.num_heads_kv);
  const auto policies = all_policies();
  ASSERT_EQ(policies.size(), 6u) << "a policy was added: give it a column in kTable";
  int64_t cells_checked = 0, wrong_cells = 0;
  for (std::size_t pi = 0; pi < policies.size(); ++pi) {
    const FallbackPolicy policy = policies[pi];
    const CallResult clean_fallback = run_call(policy, "fused:unavailable", 20, cfg);
    const CallResult clean_fused = run_call(policy, "", 20, cfg);
    ASSERT_TRUE(clean_fallback.record && clean_fused.record) << policy_name(policy);
    ASSERT_EQ(clean_fused.record->branch, Branch::kFused);
    ASSERT_EQ(clean_fallback.record->branch, Branch::kNonFused);
    // The two paths differ on these inputs (else "equals the clean fallback" would prove little).
    ASSERT_NE(output_difference(clean_fallback, clean_fused), "");
    for (const Row& row : kTable) {
      const bool takes_k = row.spec.find("{k}") != std::string::npos;
      for (const char* k_text : kKs) {
        const std::string spec = with_k(row.spec, k_text);
        SCOPED_TRACE(fmt::format("policy {} spec {} (repro: RCSIM_SEED={})", policy_name(policy),
                                 spec, test_seed()));
        const Cell cell = row.cells[pi];
        const CallResult got = run_call(policy, spec, 20, cfg);
        ++cells_checked;
        // The k of the fused rule, in fused units (for the payload and late cells).
        const FaultRule first = parse_fault_plan(spec).rules.at(0);
        Prng unused(0);
        const int64_t k_fused = native_units_for(
            first.unit, first.tile_tokens,
            first.k_or_default().resolve(
                units_at_granularity(first.unit, first.tile_tokens, n_fused, kTokens), unused),
            n_fused, kTokens);
        Promise promise = cell.promise;
        if (promise == Promise::kFallbackIfRestored &&
            !payload_escapes(policy, row.payload_region, k_fused, n_fused, cfg)) {
          promise = Promise::kFallback;
        }
        switch (promise) {
          case Promise::kFallback:
            ASSERT_FALSE(got.error) << got.error->what();
            EXPECT_EQ(got.record->branch, Branch::kNonFused);
            EXPECT_TRUE(got.record->failure_injected);
            EXPECT_TRUE(got.record->warning_logged);
            EXPECT_EQ(got.log_lines, 1);
            EXPECT_EQ(got.record->restored, policy != FallbackPolicy::kOutOfPlace);
            EXPECT_EQ(output_difference(got, clean_fallback), "");
            break;
          case Promise::kFallbackIfRestored:  // the payload escaped: silently wrong data
            ASSERT_FALSE(got.error) << got.error->what();
            EXPECT_EQ(got.record->branch, Branch::kNonFused);
            EXPECT_NE(output_difference(got, clean_fallback), "")
                << "the table says this policy does not hold here, but the output is right";
            ++wrong_cells;
            break;
          case Promise::kSurface:
            ASSERT_TRUE(got.error) << "returned branch "
                                   << branch_name(got.record->branch);
            EXPECT_EQ(got.error->failure_class(), cell.failure) << got.error->what();
            EXPECT_TRUE(got.error->injected()) << got.error->what();
            break;
          case Promise::kLateSilent: {
            ASSERT_FALSE(got.error) << got.error->what();
            EXPECT_EQ(got.record->branch, Branch::kFused);
            const std::string diff = output_difference(got, clean_fused);
            if (k_fused == n_fused) {
              EXPECT_EQ(diff, "");
            } else {
              EXPECT_NE(diff, "") << "a late fault at k < N must leave a partial write";
              ++wrong_cells;
            }
            break;
          }
        }
        if (!takes_k) break;
      }
    }
  }
  // 23 rows, 15 of them with 5 values of k, times 6 policies.
  EXPECT_EQ(cells_checked, 6 * (8 + 15 * 5));
  EXPECT_GT(wrong_cells, 0) << "the table's known weak cells were never exercised";
  std::printf("policy x fault cells checked: %lld, of which silently wrong by design: %lld\n",
              static_cast<long long>(cells_checked), static_cast<long long>(wrong_cells));
}

INSTANTIATE_TEST_SUITE_P(KvCacheDtypes, PolicyFaultOutcomesTable,
                         ::testing::Values(KvCacheDtype::kAuto, KvCacheDtype::kFp8E4M3FN),
                         [](const auto& param_info) { return std::string(kv_cache_dtype_name(param_info.param)); });

// The late error surfaces in the *next* rope_cache call (another layer), blamed on that call.
TEST(PolicyFaultOutcomes, LateErrorIsBlamedOnTheNextLayer) {
  const AttentionConfig cfg = policy_config();
  cpu::CpuBackend cpu;
  Layer layer0(cfg, kTokens, 21, true), layer1(cfg, kTokens, 22, true);
  FaultyKernelSet faulty(cpu.kernels(), parse_fault_plan("fused:late(k=mid,after=1)"), test_seed());
  DispatchProcess process;
  RopeCacheDispatcher d0(layer_spec(FallbackPolicy::kPr279, cfg), faulty.kernels(), process);
  RopeCacheDispatcher d1(layer_spec(FallbackPolicy::kPr279, cfg), faulty.kernels(), process);
  EXPECT_EQ(d0.rope_cache(inputs_of(layer0)).record.branch, Branch::kFused);
  const Snapshot before1 = layer1.snapshot();
  try {
    d1.rope_cache(inputs_of(layer1));
    ADD_FAILURE() << "the late error did not surface in the next layer";
  } catch (const DispatchError& e) {
    EXPECT_EQ(e.failure_class(), FailureClass::kStickyDevice);
    EXPECT_TRUE(e.injected());
    EXPECT_NE(std::string(e.what()).find("earlier fused call"), std::string::npos) << e.what();
  }
  EXPECT_EQ(first_difference(before1, layer1.snapshot()), "") << "layer 1 was written";
  EXPECT_FALSE(process.device_healthy());
  EXPECT_THROW(d0.rope_cache(inputs_of(layer0)), DispatchError);
}

// pr279 retries (and rebuilds) every call; sticky stops after the first "unavailable".
TEST(PolicyFaultOutcomes, RebuildAttemptsPerCallPr279VersusSticky) {
  const AttentionConfig cfg = policy_config();
  for (const FallbackPolicy policy : {FallbackPolicy::kPr279, FallbackPolicy::kSticky}) {
    SCOPED_TRACE(policy_name(policy));
    cpu::CpuBackend cpu;
    FaultyKernelSet faulty(cpu.kernels(), parse_fault_plan("fused:rebuild(cost_us=2000)"),
                           test_seed());
    std::vector<std::string> jit_lines;
    faulty.set_log_sink([&](std::string_view line) { jit_lines.emplace_back(line); });
    DispatchProcess process;
    constexpr int kCalls = 4;
    for (int call = 0; call < kCalls; ++call) {
      Layer layer(cfg, kTokens, 30 + static_cast<uint64_t>(call), true);
      RopeCacheDispatcher d(layer_spec(policy, cfg), faulty.kernels(), process);
      EXPECT_EQ(d.rope_cache(inputs_of(layer)).record.branch, Branch::kNonFused);
    }
    const int64_t attempts = policy == FallbackPolicy::kPr279 ? kCalls : 1;
    EXPECT_EQ(faulty.stats().rebuild_attempts, attempts);
    EXPECT_EQ(faulty.stats().rebuild_cost_us, attempts * 2000);
    EXPECT_EQ(static_cast<int64_t>(jit_lines.size()), attempts);
    EXPECT_EQ(process.log_lines().size(), 1u) << "the fallback warning is once per process";
    // pr279 backs up qkv on every attempt; sticky only on the first.
    EXPECT_EQ(faulty.stats().call_count(FaultSite::kBackup),
              attempts + 2 * kCalls /* q and k norm storage of each fallback */);
  }
}

// abort is uncatchable: under every policy a call that reaches the fused op kills the process.
// prevalidate alone turns it into a fallback when the op's argument checks would have fired
// (here: partial rotary, which the March 2026 kernel does not support).
TEST(PolicyFaultOutcomesDeathTest, AbortCrashesUnlessPrevalidationSkipsTheCall) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  for (const FallbackPolicy policy : all_policies()) {
    SCOPED_TRACE(policy_name(policy));
    EXPECT_DEATH(
        {
          const CallResult r = run_call(policy, "fused:abort", 40);
          std::fprintf(stderr, "returned: %s\n", r.error ? "error" : "fallback");
          std::exit(0);
        },
        "injected abort");
  }
  AttentionConfig partial = policy_config();
  partial.rotary_dim = 64;
  const CallResult r = run_call(FallbackPolicy::kPrevalidate, "fused:abort", 41, partial);
  ASSERT_TRUE(r.record.has_value());
  EXPECT_EQ(r.record->branch, Branch::kNonFused);
  EXPECT_TRUE(r.record->fused_skipped_by_policy);
  EXPECT_EQ(r.stats.call_count(FaultSite::kFused), 0);
  for (const FallbackPolicy policy : all_policies()) {
    if (policy == FallbackPolicy::kPrevalidate) continue;
    SCOPED_TRACE(policy_name(policy));
    EXPECT_DEATH(run_call(policy, "fused:abort", 41, partial), "injected abort");
  }
}

}  // namespace
}  // namespace rcsim
