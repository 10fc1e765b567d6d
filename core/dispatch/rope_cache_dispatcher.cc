// The rope_cache dispatcher: ATOM's branch logic before and after PR #279 (semantics.md 1.2-1.6),
// the PR's fallback and the review's alternatives as policies. See rope_cache_dispatcher.h.
//
// Shape of one call:
//   1. resolve and validate the inputs (InvalidInput, nothing written);
//   2. refuse to run on a device marked unhealthy by an earlier sticky device error;
//   3. decide the branch; for A (fused) under PR #279: policy gate (sticky / prevalidate), backup
//      or scratch (inside the guarded region), the call, restore on failure;
//   4. run B or C (the fallback, or the configured path when A was never eligible).
// Logging is deferred to the end of a call so that one call emits at most one line: a warning when
// a fallback served the call, an error when the call surfaces a DispatchError. Both are once per
// process per (kernel or stage, failure class).
#include "core/dispatch/rope_cache_dispatcher.h"

#include <array>
#include <new>
#include <utility>

#include <fmt/format.h>

#include "core/check.h"
#include "core/limits.h"
#include "core/mutants.h"

#include "core/dispatch/dispatch_internal.h"

namespace rcsim {

using dispatch_detail::guarded;
using dispatch_detail::StageFailure;

namespace {

// A [T, width] window of qkv's first columns (the q region, or q and k).
TensorView qkv_columns(const TensorView& qkv, int64_t width) {
  TensorView v = qkv;
  v.shape[1] = width;
  return v;
}

}  // namespace

RopeCacheDispatcher::RopeCacheDispatcher(LayerSpec spec, KernelSet kernels,
                                         DispatchProcess& process)
    : spec_(std::move(spec)), kernels_(kernels), process_(&process) {
  validate_attention_config(spec_.attn);
  RCSIM_REQUIRE(kernels_.memory != nullptr, "the dispatcher needs a MemoryBackend");
  RCSIM_REQUIRE(spec_.sliding_window >= -1, "sliding_window {} must be -1 or >= 0",
                spec_.sliding_window);
}


void RopeCacheDispatcher::Call::surface(const StageFailure& f, std::string_view context) {
  if (f.failure_class == FailureClass::kStickyDevice) process_.mark_device_unhealthy();
  const std::string detail = fused_failure_note_.empty()
                                 ? fmt::format("{}: {}", context, f.detail)
                                 : fmt::format("{}; {}: {}", fused_failure_note_, context, f.detail);
  result_.record.error_logged = process_.error_once(f.stage, f.failure_class, detail);
  throw DispatchError(fmt::format("{} failed [{}]: {}", f.stage,
                                  failure_class_name(f.failure_class), detail),
                      f.failure_class, f.injected, result_.record);
}

// A kernel the backend does not provide is a module that was not built: "unavailable".
void RopeCacheDispatcher::Call::require_kernel(const void* kernel, std::string_view name) {
  if (kernel == nullptr) {
    surface({FailureClass::kUnavailable, false, std::string(name), "module not built"},
            "kernel missing");
  }
}

std::unique_ptr<DeviceBuffer> RopeCacheDispatcher::Call::allocate(
    std::string_view stage, DType dtype, std::initializer_list<int64_t> shape) {
  std::unique_ptr<DeviceBuffer> buffer;
  check(guarded(stage,
                [&] {
                  buffer = k_.memory->allocate(
                      dtype, std::span<const int64_t>(shape.begin(), shape.size()));
                }),
        "allocation");
  if (buffer == nullptr) {
    surface({FailureClass::kOutOfMemory, false, std::string(stage), "allocate returned null"},
            "allocation");
  }
  return buffer;
}

RopeCacheResult RopeCacheDispatcher::Call::run(Branch planned) {
  DispatchRecord& rec = result_.record;
  if (!process_.device_healthy()) {
    // Logged once when the sticky error happened; later refusals add no line.
    throw DispatchError("device marked unhealthy by an earlier sticky device error", 
                        FailureClass::kStickyDevice, false, rec);
  }
  result_.v = in_.v;
  if (planned != Branch::kFused) {
    (planned == Branch::kRopeCache) ? run_branch_b() : run_branch_c();
    rec.branch = planned;
    return std::move(result_);
  }
  if (spec_.logic == DecisionLogic::kPrBase) {
    run_fused_without_fallback();
    return std::move(result_);
  }
  StageFailure why;
  if (attempt_fused(why)) {
    rec.branch = Branch::kFused;
    return std::move(result_);
  }
  if (spec_.strict) {
    surface(why, "strict mode: a fallback is an error");
  }
  fused_failure_note_ = fmt::format("{} failed [{}] ({})", why.stage,
                                    failure_class_name(why.failure_class), why.detail);
  process_.count_fallback(why.failure_class);
  const Branch fallback = RopeCacheDispatcher::decide_after_failure(spec_);
  (fallback == Branch::kRopeCache) ? run_branch_b() : run_branch_c();
  rec.branch = fallback;
  rec.warning_logged = process_.warn_fallback_once(why.stage, why.failure_class, why.detail);
  return std::move(result_);
}

// ATOM@PR-base: no backup, no try/except. A failure propagates; nothing is restored.
void RopeCacheDispatcher::Call::run_fused_without_fallback() {
  DispatchRecord& rec = result_.record;
  const std::string_view name = FusedQkNormRopeCacheKernel::kName;
  require_kernel(k_.fused, name);
  rec.fused_attempted = true;
  FusedQkNormRopeCacheArgs args{spec_.attn,      in_.qkv,          in_.q_weight, in_.k_weight,
                                in_.cos_sin_cache, in_.positions, in_.slot_mapping, in_.cache,
                                {},              {},               {}};
  if (auto f = guarded(name, [&] { k_.fused->run(args); })) {
    rec.failure = f->failure_class;
    rec.failure_injected = f->injected;
    surface(*f, "pre-PR logic has no fallback");
  }
  rec.branch = Branch::kFused;
  result_.q = in_.q;
  result_.k = in_.k;
}

// PR #279 and the review's policies. Returns true iff the fused kernel succeeded; otherwise `why`
// says why the call falls back (qkv is then restored or was never touched). Three steps: the
// guard (the policy's gate, then the backup or the scratch outputs), the call, the recovery.
bool RopeCacheDispatcher::Call::attempt_fused(StageFailure& why) {
  if (auto skipped = fused_skipped_by_policy()) {
    why = *skipped;
    return false;
  }
  FusedGuard guard = guard_fused();
  const std::optional<StageFailure> failure = call_fused(guard);
  if (!failure) return true;
  recover_fused(*failure, guard);
  why = *failure;
  return false;
}

// The policy's gate: sticky after 'unavailable' in this process, prevalidate on a precondition.
std::optional<StageFailure> RopeCacheDispatcher::Call::fused_skipped_by_policy() {
  DispatchRecord& rec = result_.record;
  const std::string fused_name(FusedQkNormRopeCacheKernel::kName);
  if (spec_.policy == FallbackPolicy::kSticky && process_.fused_disabled()) {
    rec.fused_skipped_by_policy = true;
    rec.failure = FailureClass::kUnavailable;
    return StageFailure{FailureClass::kUnavailable, false, fused_name,
                        "disabled in this process after an earlier 'unavailable' failure"};
  }
  if (spec_.policy == FallbackPolicy::kPrevalidate) {
    if (auto bad = fused_precondition_failure(spec_, in_)) {
      rec.fused_skipped_by_policy = true;
      rec.failure = FailureClass::kInvalidArgument;
      return StageFailure{FailureClass::kInvalidArgument, false, fused_name,
                          "prevalidation: " + *bad};
    }
  }
  return std::nullopt;
}

// Guarded region, step 1: the backup (or the scratch outputs). A failure here surfaces before
// the kernel is called, so qkv is untouched (the copy only reads it).
RopeCacheDispatcher::Call::FusedGuard RopeCacheDispatcher::Call::guard_fused() {
  DispatchRecord& rec = result_.record;
  const AttentionConfig& c = spec_.attn;
  const int64_t t = in_.qkv.size(0);
  FusedGuard g;
  g.args = FusedQkNormRopeCacheArgs{c,         in_.qkv,          in_.q_weight,     in_.k_weight,
                                    in_.cos_sin_cache, in_.positions, in_.slot_mapping, in_.cache,
                                    {},        {},               {}};
  if (spec_.policy == FallbackPolicy::kOutOfPlace) {
    g.q_scratch = allocate(dispatch_detail::kStageScratch, c.act_dtype,
                           {t, c.num_heads_q, c.head_dim});
    g.k_scratch = allocate(dispatch_detail::kStageScratch, c.act_dtype,
                           {t, c.num_heads_kv, c.head_dim});
    g.args.q_out = g.q_scratch->view();
    g.args.k_out = g.k_scratch->view();
    return g;
  }
  // The fused kernel never writes V, so the slice policy backs up only the q and k columns.
  const int64_t qk_width = (c.num_heads_q + c.num_heads_kv) * c.head_dim;
  const int64_t width =
      spec_.policy == FallbackPolicy::kQkSliceBackup ? qk_width : c.qkv_width();
  g.region = qkv_columns(in_.qkv, width);
  g.backup = allocate(dispatch_detail::kStageBackup, c.act_dtype, {t, width});
  check(guarded(dispatch_detail::kStageBackup,
                [&] { k_.memory->copy(g.region, g.backup->view()); }),
        "backup copy");
  rec.backup_taken = true;
  rec.backup_bytes = t * width * dtype_size_bytes(c.act_dtype);
  return g;
}

// Step 2: the call (and, out of place, the commit of its result). A missing module fails like
// the real op's JIT load: "unavailable". Returns the failure, if any.
std::optional<StageFailure> RopeCacheDispatcher::Call::call_fused(FusedGuard& g) {
  result_.record.fused_attempted = true;
  const std::string fused_name(FusedQkNormRopeCacheKernel::kName);
  std::optional<StageFailure> failure =
      k_.fused == nullptr
          ? std::optional<StageFailure>(
                StageFailure{FailureClass::kUnavailable, false, fused_name, "module not built"})
          : guarded(fused_name, [&] { k_.fused->run(g.args); });
  if (failure) return failure;
  if (spec_.policy == FallbackPolicy::kOutOfPlace) {
    check(guarded(dispatch_detail::kStageCommit,
                  [&] {
                    k_.memory->copy(g.q_scratch->view(), in_.q);
                    k_.memory->copy(g.k_scratch->view(), in_.k);
                  }),
          "commit of the out-of-place result");
  }
  result_.q = in_.q;
  result_.k = in_.k;
  return std::nullopt;
}

// Step 3: record the failure, learn from it (sticky), and restore what the kernel may have
// written. Surfaces instead when the device is gone or the restore itself fails.
void RopeCacheDispatcher::Call::recover_fused(const StageFailure& failure, FusedGuard& g) {
  DispatchRecord& rec = result_.record;
  rec.failure = failure.failure_class;
  rec.failure_injected = failure.injected;
  // A sticky device error is never followed by more work on the same device: no restore, no
  // fallback. qkv may hold partial writes; the error says so by surfacing.
  if (failure.failure_class == FailureClass::kStickyDevice) {
    // The mutant goes on to the fallback instead; on a poisoned device that fails with the same
    // class, so only the call counts (record.json's kernel_calls, the fault stats) can tell.
    if (mutant_active(Mutant::kStickyErrorFallsBack)) return;
    surface(failure, "sticky device error: no restore, no fallback on this device");
  }
  // Sticky learns "unavailable" the moment it is observed, before the restore: a module that is
  // not built stays unbuilt whether or not the recovery of this call succeeds, so a failed
  // restore must not cost the process another build attempt on the next call.
  if (spec_.policy == FallbackPolicy::kSticky &&
      failure.failure_class == FailureClass::kUnavailable) {
    process_.disable_fused();
  }
  fused_failure_note_ = fmt::format("{} failed [{}] ({})", failure.stage,
                                    failure_class_name(failure.failure_class), failure.detail);
  if (g.backup != nullptr) {
    if (!mutant_active(Mutant::kRestoreSkipped)) {
      TensorView src = g.backup->view();
      TensorView dst = g.region;
      if (mutant_active(Mutant::kOnlyQRestored)) {
        const int64_t q_width = spec_.attn.num_heads_q * spec_.attn.head_dim;
        src = qkv_columns(src, q_width);
        dst = qkv_columns(dst, q_width);
      }
      check(guarded(dispatch_detail::kStageRestore, [&] { k_.memory->copy(src, dst); }),
            "restore of qkv");
    }
    rec.restored = true;
  }
  fused_failure_note_.clear();
}

RopeCacheResult RopeCacheDispatcher::rope_cache(const RopeCacheInputs& raw) {
  const Branch planned = decide(spec_, !raw.qkv.is_null());
  const RopeCacheInputs in = dispatch_detail::resolve_and_validate(spec_, raw, planned);
  Call call(*this, in);
  return call.run(planned);
}

}  // namespace rcsim