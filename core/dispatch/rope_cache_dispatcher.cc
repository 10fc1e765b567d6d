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

namespace rcsim {

// ---- names ---------------------------------------------------------------------------------
namespace {
constexpr std::array<std::pair<FallbackPolicy, std::string_view>, 6> kPolicyNames = {{
    {FallbackPolicy::kPr279, "pr279"},
    {FallbackPolicy::kPr279ModelOrder, "pr279-model-order"},
    {FallbackPolicy::kSticky, "sticky"},
    {FallbackPolicy::kQkSliceBackup, "qk-slice-backup"},
    {FallbackPolicy::kOutOfPlace, "out-of-place"},
    {FallbackPolicy::kPrevalidate, "prevalidate"},
}};
constexpr auto kPolicies = [] {
  std::array<FallbackPolicy, kPolicyNames.size()> out{};
  for (std::size_t i = 0; i < kPolicyNames.size(); ++i) out[i] = kPolicyNames[i].first;
  return out;
}();

// Stage labels: the log-once key for failures outside a named kernel.
constexpr std::string_view kStageBackup = "qkv_backup";
constexpr std::string_view kStageRestore = "qkv_restore";
constexpr std::string_view kStageScratch = "out_of_place_scratch";
constexpr std::string_view kStageCommit = "out_of_place_commit";
constexpr std::string_view kStageNormStorage = "norm_storage";
}  // namespace

std::string_view branch_name(Branch b) {
  switch (b) {
    case Branch::kFused: return "A-fused";
    case Branch::kRopeCache: return "B-rope-cache";
    case Branch::kNonFused: return "C-non-fused";
  }
  return "?";
}

std::string_view policy_name(FallbackPolicy p) {
  for (const auto& [policy, name] : kPolicyNames) {
    if (policy == p) return name;
  }
  return "?";
}
std::optional<FallbackPolicy> policy_from_name(std::string_view name) {
  for (const auto& [policy, n] : kPolicyNames) {
    if (n == name) return policy;
  }
  return std::nullopt;
}
std::span<const FallbackPolicy> all_policies() { return kPolicies; }

// The policies that only change *how* the fused attempt is guarded (sticky, slice backup, out of
// place) keep the PR's fallback order, so that comparing them with pr279 isolates that one change.
FallbackOrder fallback_order_of(FallbackPolicy p) {
  switch (p) {
    case FallbackPolicy::kPr279ModelOrder:
    case FallbackPolicy::kPrevalidate: return FallbackOrder::kNormThenRope;
    case FallbackPolicy::kPr279:
    case FallbackPolicy::kSticky:
    case FallbackPolicy::kQkSliceBackup:
    case FallbackPolicy::kOutOfPlace: return FallbackOrder::kRopeThenNorm;
  }
  return FallbackOrder::kRopeThenNorm;
}

float atom_static_kv_scale(KvCacheDtype kv_cache_dtype) {
  if (!is_fp8(kv_cache_dtype)) return 1.0f;
  return numeric::fp8_max(numeric::Fp8Format::kE4M3FN) / numeric::fp8_max(fp8_format(kv_cache_dtype));
}

// ---- decision logic ------------------------------------------------------------------------
Branch RopeCacheDispatcher::decide(const LayerSpec& spec, bool qkv_present) {
  const bool all_three = spec.has_rotary && spec.has_q_norm && spec.has_k_norm;
  // The review's edge: with qkv absent there is nothing for the fused kernel to work on in place,
  // so it is never attempted (ATOM would have crashed on None), under either logic.
  if (all_three && qkv_present) return Branch::kFused;
  if (spec.logic == DecisionLogic::kPrBase) {
    return spec.use_triton_attn() && spec.has_rotary ? Branch::kRopeCache : Branch::kNonFused;
  }
  // PR #279: B additionally requires q_norm is None.
  return spec.use_triton_attn() && spec.has_rotary && !spec.has_q_norm ? Branch::kRopeCache
                                                                       : Branch::kNonFused;
}

Branch RopeCacheDispatcher::decide_after_failure(const LayerSpec& spec) {
  const bool q_norm_guard = !spec.has_q_norm || mutant_active(Mutant::kBranchBAfterFailure);
  return spec.use_triton_attn() && spec.has_rotary && q_norm_guard ? Branch::kRopeCache
                                                                   : Branch::kNonFused;
}

// ---- preconditions -------------------------------------------------------------------------
namespace {

bool is_shape(const TensorView& t, std::initializer_list<int64_t> shape) {
  return !t.is_null() && t.same_shape(shape);
}

std::string describe_or_null(const TensorView& t) { return t.is_null() ? "null" : t.describe(); }

}  // namespace

std::optional<std::string> fused_precondition_failure(const LayerSpec& spec,
                                                      const RopeCacheInputs& in) {
  const AttentionConfig& c = spec.attn;
  const int64_t d = c.head_dim;
  // Configuration first (the kernel's template dispatch), then each tensor.
  if (d % 32 != 0 || !limits::contains(limits::kHeadDimsSupported, d)) {
    return fmt::format("head_dim {} not in {{64, 128, 256}}", d);
  }
  if (!limits::contains(limits::kHeadsKvSupported, c.num_heads_kv)) {
    return fmt::format("num_heads_kv {} not in {{1, 2, 4, 8, 16, 32}}", c.num_heads_kv);
  }
  if (c.rotary_dim != d) {
    return fmt::format("rotary_dim {} != head_dim {} (the March 2026 kernel is full-rotary only)",
                       c.rotary_dim, d);
  }
  if (in.qkv.is_null()) return "qkv is absent";
  const int64_t t = in.qkv.rank == 2 ? in.qkv.size(0) : -1;
  if (in.qkv.rank != 2 || !in.qkv.is_contiguous() || in.qkv.size(1) != c.qkv_width()) {
    return fmt::format("qkv must be contiguous [T, {}], got {}", c.qkv_width(), in.qkv.describe());
  }
  if (!is_activation_dtype(in.qkv.dtype)) return "qkv dtype is not bf16/fp16";
  if (!is_shape(in.positions, {t}) || in.positions.dtype != DType::kI64 ||
      !in.positions.is_contiguous()) {
    return fmt::format("positions must be contiguous i64 [{}], got {}", t,
                       describe_or_null(in.positions));
  }
  if (!is_shape(in.slot_mapping, {t}) || in.slot_mapping.dtype != DType::kI64 ||
      !in.slot_mapping.is_contiguous()) {
    return fmt::format("slot_mapping must be contiguous i64 [{}], got {}", t,
                       describe_or_null(in.slot_mapping));
  }
  for (const auto& [name, w] : {std::pair{"q_weight", in.q_weight}, {"k_weight", in.k_weight}}) {
    if (!is_shape(w, {d}) || w.dtype != in.qkv.dtype || !w.is_contiguous()) {
      return fmt::format("{} must be contiguous {}[{}], got {}", name, dtype_name(in.qkv.dtype), d,
                         describe_or_null(w));
    }
  }
  const TensorView& cs = in.cos_sin_cache;
  if (cs.is_null() || cs.rank != 2 || cs.size(1) != d || cs.dtype != in.qkv.dtype ||
      !cs.is_contiguous()) {
    return fmt::format("cos_sin_cache must be contiguous {}[max_pos, {}], got {}",
                       dtype_name(in.qkv.dtype), d, describe_or_null(cs));
  }
  const DType cache_dtype = c.cache_storage_dtype();
  const int64_t x = c.x();
  const TensorView& kc = in.cache.k_cache;
  if (!is_shape(kc, {c.num_blocks, c.num_heads_kv, d / x, c.block_size, x}) ||
      kc.dtype != cache_dtype || !kc.is_contiguous()) {
    return fmt::format("k_cache must be contiguous {}[{}, {}, {}, {}, {}], got {}",
                       dtype_name(cache_dtype), c.num_blocks, c.num_heads_kv, d / x, c.block_size,
                       x, describe_or_null(kc));
  }
  // The March kernel takes page_size from v_cache.size(-1): only the 4-D label view is read right.
  const TensorView& vc = in.cache.v_cache;
  if (!is_shape(vc, {c.num_blocks, c.num_heads_kv, d, c.block_size}) || vc.dtype != cache_dtype ||
      !vc.is_contiguous()) {
    return fmt::format("v_cache must be the contiguous 4-D {}[{}, {}, {}, {}], got {}",
                       dtype_name(cache_dtype), c.num_blocks, c.num_heads_kv, d, c.block_size,
                       describe_or_null(vc));
  }
  if (c.block_size % x != 0) return fmt::format("block_size {} % x {} != 0", c.block_size, x);
  if (is_fp8(c.kv_cache_dtype)) {
    for (const auto& [name, s] :
         {std::pair{"k_scale", in.cache.k_scale}, {"v_scale", in.cache.v_scale}}) {
      if (!is_shape(s, {c.num_blocks, c.num_heads_kv, c.block_size}) || s.dtype != DType::kFP32) {
        return fmt::format("{} must be fp32[{}, {}, {}] for an fp8 cache, got {}", name,
                           c.num_blocks, c.num_heads_kv, c.block_size, describe_or_null(s));
      }
    }
  }
  return std::nullopt;
}

// ---- the dispatcher ------------------------------------------------------------------------
namespace {

// A failure caught at one stage of a call: what the log-once key and the DispatchError carry.
struct StageFailure {
  FailureClass failure_class = FailureClass::kLaunchFailure;
  bool injected = false;
  std::string stage;   // kernel name or stage label (log key)
  std::string detail;  // the exception's message
};

// Runs `fn`, turning every exception a kernel or the memory backend may throw into a
// StageFailure. Like PR #279's `except Exception`, nothing escapes: InvalidInput from an op's
// argument checks is the op rejecting its arguments, bad_alloc is out of memory.
template <typename Fn>
std::optional<StageFailure> guarded(std::string_view stage, Fn&& fn) {
  try {
    fn();
    return std::nullopt;
  } catch (const KernelError& e) {
    return StageFailure{e.failure_class(), e.injected(), std::string(stage), e.what()};
  } catch (const InvalidInput& e) {
    return StageFailure{FailureClass::kInvalidArgument, false, std::string(stage), e.what()};
  } catch (const std::bad_alloc& e) {
    return StageFailure{FailureClass::kOutOfMemory, false, std::string(stage), e.what()};
  } catch (const std::exception& e) {
    return StageFailure{FailureClass::kLaunchFailure, false, std::string(stage),
                        fmt::format("untyped exception: {}", e.what())};
  }
}

// A [T, width] window of qkv's first columns (the q region, or q and k).
TensorView qkv_columns(const TensorView& qkv, int64_t width) {
  TensorView v = qkv;
  v.shape[1] = width;
  return v;
}

bool same_view(const TensorView& a, const TensorView& b) {
  if (a.base != b.base || a.dtype != b.dtype || a.rank != b.rank || a.offset != b.offset) {
    return false;
  }
  for (int d = 0; d < a.rank; ++d) {
    if (a.size(d) != b.size(d) || a.stride(d) != b.stride(d)) return false;
  }
  return true;
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

namespace {

// Derives q/k/v from qkv when the caller gave only qkv, and checks every input the chosen branch
// may read, before anything is written.
RopeCacheInputs resolve_and_validate(const LayerSpec& spec, const RopeCacheInputs& raw,
                                     Branch planned) {
  const AttentionConfig& c = spec.attn;
  RopeCacheInputs in = raw;
  RCSIM_REQUIRE(!in.positions.is_null() && in.positions.rank == 1 &&
                    in.positions.dtype == DType::kI64,
                "positions must be i64 [T], got {}", describe_or_null(in.positions));
  const int64_t t = in.positions.size(0);
  RCSIM_REQUIRE(t >= 1 && t <= limits::kTokensPerBatchMax, "token count {} outside [1, {}]", t,
                limits::kTokensPerBatchMax);
  if (!in.qkv.is_null()) {
    RCSIM_REQUIRE(is_shape(in.qkv, {t, c.qkv_width()}) && in.qkv.dtype == c.act_dtype &&
                      in.qkv.stride(1) == 1,
                  "qkv must be {}[{}, {}] with unit column stride, got {}",
                  dtype_name(c.act_dtype), t, c.qkv_width(), in.qkv.describe());
    const QkvViews split = split_qkv(in.qkv, c.num_heads_q, c.num_heads_kv, c.head_dim);
    if (in.q.is_null() && in.k.is_null() && in.v.is_null()) {
      in.q = split.q;
      in.k = split.k;
      in.v = split.v;
    }
    RCSIM_REQUIRE(same_view(in.q, split.q) && same_view(in.k, split.k) &&
                      same_view(in.v, split.v),
                  "q/k/v must be the split_qkv views of qkv (they alias it in ATOM)");
  }
  for (const auto& [name, view, heads] :
       {std::tuple{"q", in.q, c.num_heads_q}, {"k", in.k, c.num_heads_kv},
        {"v", in.v, c.num_heads_kv}}) {
    RCSIM_REQUIRE(is_shape(view, {t, heads, c.head_dim}) && view.dtype == c.act_dtype &&
                      view.stride(2) == 1,
                  "{} must be {}[{}, {}, {}] with unit dim stride, got {}", name,
                  dtype_name(c.act_dtype), t, heads, c.head_dim, describe_or_null(view));
  }
  RCSIM_REQUIRE(is_shape(in.slot_mapping, {t}) && in.slot_mapping.dtype == DType::kI64,
                "slot_mapping must be i64 [{}], got {}", t, describe_or_null(in.slot_mapping));
  if (spec.has_rotary) {
    RCSIM_REQUIRE(is_shape(in.cos_sin_cache, {c.max_position, c.rotary_dim}) &&
                      in.cos_sin_cache.dtype == c.act_dtype,
                  "cos_sin_cache must be {}[{}, {}], got {}", dtype_name(c.act_dtype),
                  c.max_position, c.rotary_dim, describe_or_null(in.cos_sin_cache));
  }
  if (spec.has_q_norm) {
    RCSIM_REQUIRE(is_shape(in.q_weight, {c.head_dim}) && in.q_weight.dtype == c.act_dtype,
                  "q_weight must be {}[{}], got {}", dtype_name(c.act_dtype), c.head_dim,
                  describe_or_null(in.q_weight));
  }
  if (spec.has_k_norm) {
    RCSIM_REQUIRE(is_shape(in.k_weight, {c.head_dim}) && in.k_weight.dtype == c.act_dtype,
                  "k_weight must be {}[{}], got {}", dtype_name(c.act_dtype), c.head_dim,
                  describe_or_null(in.k_weight));
  }
  const DType cache_dtype = c.cache_storage_dtype();
  const int64_t x = c.x();
  RCSIM_REQUIRE(
      is_shape(in.cache.k_cache, {c.num_blocks, c.num_heads_kv, c.head_dim / x, c.block_size, x}) &&
          in.cache.k_cache.dtype == cache_dtype,
      "k_cache must be {}[{}, {}, {}, {}, {}], got {}", dtype_name(cache_dtype), c.num_blocks,
      c.num_heads_kv, c.head_dim / x, c.block_size, x, describe_or_null(in.cache.k_cache));
  RCSIM_REQUIRE(
      (is_shape(in.cache.v_cache, {c.num_blocks, c.num_heads_kv, c.head_dim, c.block_size}) ||
       is_shape(in.cache.v_cache, {c.num_blocks, c.num_heads_kv, c.block_size / x, c.head_dim, x})) &&
          in.cache.v_cache.dtype == cache_dtype,
      "v_cache must be {}[{}, {}, {}, {}] or the 5-D shuffle view, got {}",
      dtype_name(cache_dtype), c.num_blocks, c.num_heads_kv, c.head_dim, c.block_size,
      describe_or_null(in.cache.v_cache));
  // Per-token fp8 scales are needed by A and by C (the fallback); B uses ATOM's static scale.
  if (is_fp8(c.kv_cache_dtype) && planned != Branch::kRopeCache) {
    for (const auto& [name, s] :
         {std::pair{"k_scale", in.cache.k_scale}, {"v_scale", in.cache.v_scale}}) {
      RCSIM_REQUIRE(is_shape(s, {c.num_blocks, c.num_heads_kv, c.block_size}) &&
                        s.dtype == DType::kFP32,
                    "{} must be fp32[{}, {}, {}] for an fp8 cache, got {}", name, c.num_blocks,
                    c.num_heads_kv, c.block_size, describe_or_null(s));
    }
  }
  // Values are checked where they can be read (host views): a position outside the cos/sin table
  // or a slot beyond the cache would make a kernel read or write out of bounds.
  if (in.positions.device == DeviceTag::kHost) {
    for (int64_t i = 0; i < t; ++i) {
      const int64_t p = in.positions.data_as<int64_t>()[i * in.positions.stride(0)];
      RCSIM_REQUIRE(p >= 0 && p < c.max_position, "positions[{}] = {} outside [0, {})", i, p,
                    c.max_position);
    }
  }
  if (in.slot_mapping.device == DeviceTag::kHost) {
    for (int64_t i = 0; i < t; ++i) {
      const int64_t s = in.slot_mapping.data_as<int64_t>()[i * in.slot_mapping.stride(0)];
      RCSIM_REQUIRE(s < c.num_slots(), "slot_mapping[{}] = {} beyond the {} cache slots", i, s,
                    c.num_slots());
    }
  }
  return in;
}

}  // namespace

// Everything one call needs while it runs; keeps rope_cache() readable.
class RopeCacheDispatcher::Call {
 public:
  Call(const RopeCacheDispatcher& owner, const RopeCacheInputs& in)
      : spec_(owner.spec_), k_(owner.kernels_), process_(*owner.process_), in_(in) {}

  RopeCacheResult run(Branch planned);

 private:
  bool attempt_fused(StageFailure& why);
  void run_fused_without_fallback();
  void run_branch_b();
  void run_branch_c();
  [[noreturn]] void surface(const StageFailure& f, std::string_view context);
  void require_kernel(const void* kernel, std::string_view name);
  std::unique_ptr<DeviceBuffer> allocate(std::string_view stage, DType dtype,
                                         std::initializer_list<int64_t> shape);
  void check(std::optional<StageFailure> f, std::string_view context) {
    if (f) surface(*f, context);
  }

  const LayerSpec& spec_;
  const KernelSet& k_;
  DispatchProcess& process_;
  const RopeCacheInputs& in_;
  RopeCacheResult result_;
  std::string fused_failure_note_;  // prefixed to a later error, so one line tells the story
};

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
// says why the call falls back (qkv is then restored or was never touched).
bool RopeCacheDispatcher::Call::attempt_fused(StageFailure& why) {
  DispatchRecord& rec = result_.record;
  const AttentionConfig& c = spec_.attn;
  const std::string fused_name(FusedQkNormRopeCacheKernel::kName);
  const FallbackPolicy policy = spec_.policy;

  if (policy == FallbackPolicy::kSticky && process_.fused_disabled()) {
    rec.fused_skipped_by_policy = true;
    rec.failure = FailureClass::kUnavailable;
    why = {FailureClass::kUnavailable, false, fused_name,
           "disabled in this process after an earlier 'unavailable' failure"};
    return false;
  }
  if (policy == FallbackPolicy::kPrevalidate) {
    if (auto bad = fused_precondition_failure(spec_, in_)) {
      rec.fused_skipped_by_policy = true;
      rec.failure = FailureClass::kInvalidArgument;
      why = {FailureClass::kInvalidArgument, false, fused_name, "prevalidation: " + *bad};
      return false;
    }
  }

  const int64_t t = in_.qkv.size(0);
  const int64_t elem = dtype_size_bytes(c.act_dtype);
  const int64_t q_width = c.num_heads_q * c.head_dim;
  const int64_t qk_width = (c.num_heads_q + c.num_heads_kv) * c.head_dim;

  // Guarded region, step 1: the backup (or the scratch outputs). A failure here surfaces before
  // the kernel is called, so qkv is untouched (the copy only reads it).
  std::unique_ptr<DeviceBuffer> backup;
  TensorView region;  // the part of qkv the backup covers
  std::unique_ptr<DeviceBuffer> q_scratch, k_scratch;
  FusedQkNormRopeCacheArgs args{c,         in_.qkv,          in_.q_weight,     in_.k_weight,
                                in_.cos_sin_cache, in_.positions, in_.slot_mapping, in_.cache,
                                {},        {},               {}};
  if (policy == FallbackPolicy::kOutOfPlace) {
    q_scratch = allocate(kStageScratch, c.act_dtype, {t, c.num_heads_q, c.head_dim});
    k_scratch = allocate(kStageScratch, c.act_dtype, {t, c.num_heads_kv, c.head_dim});
    args.q_out = q_scratch->view();
    args.k_out = k_scratch->view();
  } else {
    // The fused kernel never writes V, so the slice policy backs up only the q and k columns.
    const int64_t width = policy == FallbackPolicy::kQkSliceBackup ? qk_width : c.qkv_width();
    region = qkv_columns(in_.qkv, width);
    backup = allocate(kStageBackup, c.act_dtype, {t, width});
    check(guarded(kStageBackup, [&] { k_.memory->copy(region, backup->view()); }),
          "backup copy");
    rec.backup_taken = true;
    rec.backup_bytes = t * width * elem;
  }

  // Step 2: the call. A missing module fails like the real op's JIT load: "unavailable".
  rec.fused_attempted = true;
  std::optional<StageFailure> failure =
      k_.fused == nullptr
          ? std::optional<StageFailure>(
                StageFailure{FailureClass::kUnavailable, false, fused_name, "module not built"})
          : guarded(fused_name, [&] { k_.fused->run(args); });

  if (!failure) {
    if (policy == FallbackPolicy::kOutOfPlace) {
      check(guarded(kStageCommit,
                    [&] {
                      k_.memory->copy(q_scratch->view(), in_.q);
                      k_.memory->copy(k_scratch->view(), in_.k);
                    }),
            "commit of the out-of-place result");
    }
    result_.q = in_.q;
    result_.k = in_.k;
    return true;
  }

  rec.failure = failure->failure_class;
  rec.failure_injected = failure->injected;
  // A sticky device error is never followed by more work on the same device: no restore, no
  // fallback. qkv may hold partial writes; the error says so by surfacing.
  if (failure->failure_class == FailureClass::kStickyDevice) {
    surface(*failure, "sticky device error: no restore, no fallback on this device");
  }
  // Sticky learns "unavailable" the moment it is observed, before the restore: a module that is
  // not built stays unbuilt whether or not the recovery of this call succeeds, so a failed
  // restore must not cost the process another build attempt on the next call.
  if (policy == FallbackPolicy::kSticky && failure->failure_class == FailureClass::kUnavailable) {
    process_.disable_fused();
  }
  fused_failure_note_ = fmt::format("{} failed [{}] ({})", failure->stage,
                                    failure_class_name(failure->failure_class), failure->detail);
  // Step 3: restore what the kernel may have written.
  if (backup != nullptr) {
    if (!mutant_active(Mutant::kRestoreSkipped)) {
      TensorView src = backup->view();
      TensorView dst = region;
      if (mutant_active(Mutant::kOnlyQRestored)) {
        src = qkv_columns(src, q_width);
        dst = qkv_columns(dst, q_width);
      }
      check(guarded(kStageRestore, [&] { k_.memory->copy(src, dst); }), "restore of qkv");
    }
    rec.restored = true;
  }
  fused_failure_note_.clear();
  why = *failure;
  return false;
}

// B: RoPE in place on q and k, K/V into the cache with ATOM's static per-tensor scale.
void RopeCacheDispatcher::Call::run_branch_b() {
  const AttentionConfig& c = spec_.attn;
  const std::string_view name = RopeReshapeCacheKernel::kName;
  require_kernel(k_.rope_reshape_cache, name);
  RopeReshapeCacheArgs args;
  args.cfg = c;
  args.q = in_.q;
  args.k = in_.k;
  args.v = in_.v;
  args.cos_sin_cache = in_.cos_sin_cache;
  args.positions = in_.positions;
  args.slot_mapping = in_.slot_mapping;
  args.cache = in_.cache;
  // The Triton kernel follows the tensor: a 4-D v_cache is written plain, a 5-D one shuffled.
  args.v_layout = in_.cache.v_cache.rank == 5 ? VCacheLayout::kShuffle : VCacheLayout::kPlain;
  result_.record.v_cache_layout = args.v_layout;
  args.apply_scale = is_fp8(c.kv_cache_dtype);
  args.k_scale_static = atom_static_kv_scale(c.kv_cache_dtype);
  args.v_scale_static = args.k_scale_static;
  check(guarded(name, [&] { k_.rope_reshape_cache->run(args); }), "branch B");
  result_.q = in_.q;
  result_.k = in_.k;
}

// C: rotary, q/k RMSNorm into new storage, cache write (semantics.md 1.6), in the policy's order.
void RopeCacheDispatcher::Call::run_branch_c() {
  const AttentionConfig& c = spec_.attn;
  const int64_t t = in_.positions.size(0);
  FallbackOrder order = fallback_order_of(spec_.policy);
  if (mutant_active(Mutant::kFallbackOrderSwapped)) {
    order = order == FallbackOrder::kRopeThenNorm ? FallbackOrder::kNormThenRope
                                                  : FallbackOrder::kRopeThenNorm;
  }
  TensorView q = in_.q;
  TensorView k = in_.k;

  auto rope = [&] {
    if (!spec_.has_rotary) return;
    const std::string_view name = RotaryEmbeddingKernel::kName;
    require_kernel(k_.rotary, name);
    RotaryArgs args;
    args.q = q;
    args.k = k;
    args.positions = in_.positions;
    args.cos_sin_cache = in_.cos_sin_cache;
    args.rotary_dim = c.rotary_dim;
    args.is_neox = c.is_neox;
    check(guarded(name, [&] { k_.rotary->run(args); }), "branch C rotary");
  };
  // ATOM: q = self.q_norm(q) returns a new tensor; the result owns it.
  auto norm = [&](TensorView& x, const TensorView& weight, int64_t heads,
                  std::unique_ptr<DeviceBuffer>& storage) {
    const std::string_view name = RmsNormKernel::kName;
    require_kernel(k_.rms_norm, name);
    storage = allocate(kStageNormStorage, c.act_dtype, {t, heads, c.head_dim});
    RmsNormArgs args;
    args.input = x;
    args.output = storage->view();
    args.weight = weight;
    args.eps = c.eps;
    check(guarded(name, [&] { k_.rms_norm->run(args); }), "branch C rms_norm");
    x = storage->view();
  };
  auto norms = [&] {
    if (spec_.has_q_norm) norm(q, in_.q_weight, c.num_heads_q, result_.q_storage);
    if (spec_.has_k_norm) norm(k, in_.k_weight, c.num_heads_kv, result_.k_storage);
  };
  if (order == FallbackOrder::kRopeThenNorm) {
    rope();
    norms();
  } else {
    norms();
    rope();
  }

  const VCacheLayout v_layout = spec_.fallback_v_layout();
  result_.record.v_cache_layout = v_layout;
  if (is_fp8(c.kv_cache_dtype)) {
    const std::string_view name = PerTokenQuantCacheKernel::kName;
    require_kernel(k_.per_token_quant_cache, name);
    PerTokenQuantCacheArgs args;
    args.cfg = c;
    args.key = k;
    args.value = in_.v;
    args.slot_mapping = in_.slot_mapping;
    args.cache = in_.cache;
    args.v_layout = v_layout;
    check(guarded(name, [&] { k_.per_token_quant_cache->run(args); }), "branch C cache write");
  } else {
    const std::string_view name = ReshapeAndCacheKernel::kName;
    require_kernel(k_.reshape_and_cache, name);
    ReshapeAndCacheArgs args;
    args.cfg = c;
    args.key = k;
    args.value = in_.v;
    args.slot_mapping = in_.slot_mapping;
    args.cache = in_.cache;
    args.v_layout = v_layout;
    check(guarded(name, [&] { k_.reshape_and_cache->run(args); }), "branch C cache write");
  }
  result_.q = q;
  result_.k = k;
}

RopeCacheResult RopeCacheDispatcher::rope_cache(const RopeCacheInputs& raw) {
  const Branch planned = decide(spec_, !raw.qkv.is_null());
  const RopeCacheInputs in = resolve_and_validate(spec_, raw, planned);
  Call call(*this, in);
  return call.run(planned);
}

}  // namespace rcsim
