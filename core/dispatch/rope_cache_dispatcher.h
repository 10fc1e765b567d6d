// A C++ port of ATOM's PagedAttentionImpl.rope_cache() (semantics.md 1.2-1.6), before and after
// PR #279, with the PR's fallback and the review's alternatives as selectable policies.
//
// One RopeCacheDispatcher per attention layer instance, as in ATOM. Everything "process-wide" in
// ATOM (the class attribute _fused_rope_warned, a cached module failure, the device context's
// health) lives in a DispatchProcess that all dispatchers of one simulated process share, so a
// test or a simulation run can create a fresh "process" without restarting the real one.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "core/attention_config.h"
#include "core/errors.h"
#include "core/kernel_interfaces.h"
#include "core/tensor.h"

namespace spdlog {
class logger;
}

namespace rcsim {

enum class Branch : uint8_t {
  kFused,      // A: fused_qk_norm_rope_cache_quant_shuffle succeeded
  kRopeCache,  // B: Triton fused_qk_rope_reshape_and_cache (RoPE + cache, no norm)
  kNonFused,   // C: rotary, q/k norm, reshape_and_cache (the fallback target)
};
std::string_view branch_name(Branch b);

// Which branch conditions: ATOM before the PR, or as changed by it.
enum class DecisionLogic : uint8_t { kPrBase, kPr279 };

enum class FallbackPolicy : uint8_t {
  kPr279,            // as the PR: full qkv backup every fused attempt, retry every call, catch all,
                     // restore, warn once per process, fallback in the PR's order (RoPE, norms)
  kPr279ModelOrder,  // the same, fallback in the model's order (norms, then RoPE)
  kSticky,           // after "unavailable", never attempt fused again in this process (no backup,
                     // no exception per call); transient failures are retried
  kQkSliceBackup,    // back up only the q and k region of qkv (the fused kernel never writes V)
  kOutOfPlace,       // fused writes q/k to scratch, committed into qkv only on success
  kPrevalidate,      // check the fused kernel's preconditions before calling it (turns aborts
                     // in the op's argument checks into fallbacks); otherwise like pr279-model-order
};
std::string_view policy_name(FallbackPolicy p);
std::optional<FallbackPolicy> policy_from_name(std::string_view name);
std::span<const FallbackPolicy> all_policies();

// The order the policy promises for its fallback (FallbackOrder lives in core/attention_config.h).
FallbackOrder fallback_order_of(FallbackPolicy p);  // before mutants

// How one layer instance is configured, like ATOM's PagedAttentionImpl.__init__.
struct LayerSpec {
  AttentionConfig attn;
  bool has_rotary = true;
  bool has_q_norm = true;
  bool has_k_norm = true;
  int64_t sliding_window = -1;
  DecisionLogic logic = DecisionLogic::kPr279;
  FallbackPolicy policy = FallbackPolicy::kPr279;
  bool strict = false;  // any fallback is an error (users who must know the fused path ran)
  int64_t layer_index = 0;
  bool use_triton_attn() const { return sliding_window != -1 || attn.head_dim != 128; }
  // The V memory order branch C writes: asm_layout = not use_triton_attn (ATOM).
  VCacheLayout fallback_v_layout() const {
    return use_triton_attn() ? VCacheLayout::kPlain : VCacheLayout::kShuffle;
  }
};

// One rope_cache call's inputs. Views are on the backend's device.
struct RopeCacheInputs {
  TensorView qkv;  // [T, (Hq+2Hkv)*D]; may be null (ATOM passes qkv only when fusion is on)
  TensorView q;    // [T, Hq, D] views; when qkv is set these alias it (split_qkv)
  TensorView k;
  TensorView v;
  TensorView positions;      // [T] i64
  TensorView slot_mapping;   // [T] i64
  TensorView cos_sin_cache;  // [max_pos, rotary_dim]
  TensorView q_weight;       // [D]; null when the layer has no q_norm
  TensorView k_weight;       // [D]; null when the layer has no k_norm
  KvCacheViews cache;
};

// What happened in one call; the checkers compare it with what the policy promises.
struct DispatchRecord {
  Branch branch = Branch::kNonFused;
  bool fused_attempted = false;
  bool fused_skipped_by_policy = false;  // sticky-disabled or prevalidation refused
  std::optional<FailureClass> failure;   // of the fused attempt
  bool failure_injected = false;
  bool backup_taken = false;
  int64_t backup_bytes = 0;
  bool restored = false;
  bool warning_logged = false;  // this call emitted the once-per-process warning
  bool error_logged = false;
  // The V memory order the branch that ran wrote (the fused kernel: always shuffle). Checkers
  // read it here instead of re-deriving the dispatcher's layout rule.
  VCacheLayout v_cache_layout = VCacheLayout::kShuffle;
};

// The tensors attention reads next. q and k point into qkv or into storage owned here.
struct RopeCacheResult {
  DispatchRecord record;
  TensorView q;
  TensorView k;
  TensorView v;
  std::unique_ptr<DeviceBuffer> q_storage;
  std::unique_ptr<DeviceBuffer> k_storage;
};

// A failure the dispatcher must surface instead of falling back: sticky device error, a fault in
// the recovery path (backup allocation, restore copy, a fallback kernel), strict mode, or a
// failure class the policy refuses to hide.
class DispatchError : public std::runtime_error {
 public:
  DispatchError(std::string what, FailureClass failure_class, bool injected, DispatchRecord record)
      : std::runtime_error(std::move(what)),
        failure_class_(failure_class),
        injected_(injected),
        record_(record) {}
  FailureClass failure_class() const { return failure_class_; }
  bool injected() const { return injected_; }
  const DispatchRecord& record() const { return record_; }

 private:
  FailureClass failure_class_;
  bool injected_;
  DispatchRecord record_;
};

// Process-wide state of one simulated serving process: once-only log, sticky disable, health,
// counters. Thread-safe. Log lines go through the spdlog logger "rcsim.fallback"; tests read them
// through a sink (see log_lines()).
class DispatchProcess {
 public:
  DispatchProcess();
  ~DispatchProcess();
  DispatchProcess(const DispatchProcess&) = delete;
  DispatchProcess& operator=(const DispatchProcess&) = delete;

  // Returns true iff this call logged: exactly one warning per (kernel, failure class).
  bool warn_fallback_once(std::string_view kernel, FailureClass failure_class,
                          std::string_view detail);
  bool error_once(std::string_view kernel, FailureClass failure_class, std::string_view detail);
  void count_fallback(FailureClass failure_class);
  int64_t fallback_count(FailureClass failure_class) const;
  int64_t fallback_count_total() const;

  bool fused_disabled() const;  // sticky policy: "unavailable" seen in this process
  void disable_fused();
  bool device_healthy() const;  // false after a sticky device error
  void mark_device_unhealthy();

  std::vector<std::string> log_lines() const;  // every line logged by this process, in order

  // The logger's name, and the capacity of the capturing ring behind log_lines() (oldest lines are
  // dropped beyond it; a test that needs every line stays below it).
  static constexpr std::string_view kLoggerName = "rcsim.fallback";
  static constexpr int64_t kLogLinesMax = 4096;
  // The "rcsim.fallback" logger itself, so a CLI or a harness can add its own sink (e.g. stderr).
  std::shared_ptr<spdlog::logger> logger() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// ATOM's self.kv_scale for branch B: finfo(e4m3fn).max / finfo(aiter fp8).max for an fp8 cache
// (448/240 on fnuz, 1 on OCP e4m3fn), 1.0 for "auto".
float atom_static_kv_scale(KvCacheDtype kv_cache_dtype);

// The fused kernel's host-side preconditions (AITER@Mar26, semantics.md 2.1) plus the ones it does
// not check but silently misreads (cos/sin dtype, missing fp8 scales, v_cache shape). Returns the
// first violated one, or nullopt. The `prevalidate` policy falls back without calling when set.
std::optional<std::string> fused_precondition_failure(const LayerSpec& spec,
                                                      const RopeCacheInputs& inputs);

// Behaviour common to every policy (rope_cache_dispatcher.cc):
//  - sticky, qk-slice-backup and out-of-place fall back in the PR's order (they change only how
//    the fused attempt is guarded); pr279-model-order and prevalidate use the model's order. C uses
//    the policy's order also when it is the configured path (no fused attempt).
//  - Recovery-path faults (backup/scratch allocation or copy, restore copy, out-of-place commit, a
//    fallback kernel throwing or missing) surface as DispatchError of that fault's class.
//  - One call logs at most one line: the fallback warning once it has succeeded, or the error it
//    surfaces (which also names the fused failure). Both are once per (kernel or stage, class).
//  - Under DecisionLogic::kPrBase there is no fallback: a fused failure surfaces, unrestored.
class RopeCacheDispatcher {
 public:
  RopeCacheDispatcher(LayerSpec spec, KernelSet kernels, DispatchProcess& process);

  // Runs one call. Returns the tensors attention reads and the record; throws DispatchError where
  // the policy surfaces the failure, InvalidInput for bad input (nothing written).
  RopeCacheResult rope_cache(const RopeCacheInputs& inputs);

  // The branch the decision logic picks before any attempt (A means "try fused").
  static Branch decide(const LayerSpec& spec, bool qkv_present);

  const LayerSpec& spec() const { return spec_; }

  // The decision after a fused attempt that did not succeed (PR #279 only): B iff use_triton_attn
  // and rotary and q_norm is None, else C. (kBranchBAfterFailure drops the q_norm guard.)
  static Branch decide_after_failure(const LayerSpec& spec);

 private:
  class Call;  // the state of one rope_cache() call (rope_cache_dispatcher.cc)
  LayerSpec spec_;
  KernelSet kernels_;
  DispatchProcess* process_;
};

}  // namespace rcsim
