// The fault-injecting decorators. One FaultEngine holds the plan, the seed, the per-site call
// counters and the device state (sticky poison, a pending late error); one small decorator class
// per kernel interface asks it what to do on each call and otherwise forwards to the real kernel.
// Nothing here computes kernel math: partial work is always the real kernel under a WorkLimit.
#include "fakes/faults/faulty_kernels.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "core/check.h"
#include "core/errors.h"
#include "core/prng.h"
#include "kernels/common/cache_layout.h"

namespace rcsim {
namespace {

std::size_t ix(FaultSite s) { return static_cast<std::size_t>(s); }
std::size_t ix(FaultKind k) { return static_cast<std::size_t>(k); }

// ---- Unit footprints ------------------------------------------------------------------------
// Every element a payload may overwrite is reported as (view, element offset from view.data()).
// The emitters below only enumerate; the payload writer decides the bits.
struct Emit {
  virtual ~Emit() = default;
  virtual void element(const TensorView& view, int64_t offset) = 0;
};

bool region_hits(FaultRegion filter, FaultRegion part) {
  return filter == FaultRegion::kAll || filter == part;
}

int64_t read_slot(const TensorView& slots, int64_t token) {
  return slots.data_as<const int64_t>()[token * slots.stride(0)];
}

void emit_row(const TensorView& view3, int64_t t, int64_t h, int64_t dims, Emit& emit) {
  for (int64_t d = 0; d < dims; ++d) emit.element(view3, view3.element_offset({t, h, d}));
}

// K cache [NB, H, D/x, BS, x]: the view's strides when it is 5-D, else the contiguous formula.
void emit_k_slot(const TensorView& k_cache, const layout::PagedCacheShape& shape, int64_t slot,
                 int64_t h, Emit& emit) {
  const int64_t b = slot / shape.block_size;
  const int64_t tok = slot % shape.block_size;
  for (int64_t d = 0; d < shape.head_dim; ++d) {
    const int64_t off = k_cache.rank == 5
                            ? k_cache.element_offset({b, h, d / shape.x, tok, d % shape.x})
                            : layout::k_xpacked_offset(shape, b, h, tok, d);
    emit.element(k_cache, off);
  }
}

// V cache: 5-D = shuffle [NB, H, BS/x, D, x]; 4-D plain [NB, H, D, BS]; a 4-D view labelled
// shuffle (ATOM's v_cache label) is addressed with the contiguous shuffle formula.
void emit_v_slot(const TensorView& v_cache, VCacheLayout v_layout,
                 const layout::PagedCacheShape& shape, int64_t slot, int64_t h, Emit& emit) {
  const int64_t b = slot / shape.block_size;
  const int64_t tok = slot % shape.block_size;
  for (int64_t d = 0; d < shape.head_dim; ++d) {
    int64_t off = 0;
    if (v_cache.rank == 5) {
      off = v_cache.element_offset({b, h, tok / shape.x, d, tok % shape.x});
    } else if (v_layout == VCacheLayout::kPlain) {
      off = v_cache.element_offset({b, h, d, tok});
    } else {
      off = layout::v_shuffle_offset(shape, b, h, tok, d);
    }
    emit.element(v_cache, off);
  }
}

void emit_scale(const TensorView& scale, const layout::PagedCacheShape& shape, int64_t slot,
                int64_t h, Emit& emit) {
  if (scale.is_null() || scale.rank != 3) return;  // per-tensor scales are shared inputs
  emit.element(scale, scale.element_offset({slot / shape.block_size, h, slot % shape.block_size}));
}

void footprint(const FusedQkNormRopeCacheArgs& a, int64_t g, FaultRegion filter, Emit& emit) {
  const int64_t hq = a.cfg.num_heads_q;
  const int64_t hkv = a.cfg.num_heads_kv;
  const int64_t dim = a.cfg.head_dim;
  const int64_t t = g / (hq + 2 * hkv);
  const int64_t h = g % (hq + 2 * hkv);
  const layout::PagedCacheShape shape = a.cfg.cache_shape();
  FaultRegion part = h < hq ? FaultRegion::kQ : (h < hq + hkv ? FaultRegion::kK : FaultRegion::kV);
  if (region_hits(filter, part)) {
    for (int64_t d = 0; d < dim; ++d) emit.element(a.qkv, a.qkv.element_offset({t, h * dim + d}));
    if (part == FaultRegion::kQ && !a.q_out.is_null()) emit_row(a.q_out, t, h, dim, emit);
    if (part == FaultRegion::kK && !a.k_out.is_null()) emit_row(a.k_out, t, h - hq, dim, emit);
  }
  if (part == FaultRegion::kQ || !region_hits(filter, FaultRegion::kCache)) return;
  const int64_t slot = read_slot(a.slot_mapping, t);
  if (slot < 0) return;
  if (part == FaultRegion::kK) {
    emit_k_slot(a.cache.k_cache, shape, slot, h - hq, emit);
    emit_scale(a.cache.k_scale, shape, slot, h - hq, emit);
  } else {
    emit_v_slot(a.cache.v_cache, VCacheLayout::kShuffle, shape, slot, h - hq - hkv, emit);
    emit_scale(a.cache.v_scale, shape, slot, h - hq - hkv, emit);
  }
}

void footprint(const RopeReshapeCacheArgs& a, int64_t g, FaultRegion filter, Emit& emit) {
  const int64_t hq = a.cfg.num_heads_q;
  const int64_t group = hq / a.cfg.num_heads_kv;
  const int64_t t = g / hq;
  const int64_t h = g % hq;
  const layout::PagedCacheShape shape = a.cfg.cache_shape();
  if (region_hits(filter, FaultRegion::kQ)) emit_row(a.q, t, h, a.cfg.head_dim, emit);
  if (h % group != 0) return;  // only a group's first q head handles its K head
  const int64_t kvh = h / group;
  if (region_hits(filter, FaultRegion::kK)) emit_row(a.k, t, kvh, a.cfg.head_dim, emit);
  const int64_t slot = read_slot(a.slot_mapping, t);
  if (slot < 0 || !region_hits(filter, FaultRegion::kCache)) return;
  emit_k_slot(a.cache.k_cache, shape, slot, kvh, emit);
  emit_v_slot(a.cache.v_cache, a.v_layout, shape, slot, kvh, emit);
}

void footprint(const RotaryArgs& a, int64_t g, FaultRegion filter, Emit& emit) {
  const int64_t tokens = a.q.size(0);
  const int64_t hq = a.q.size(1);
  if (g < tokens * hq) {
    if (region_hits(filter, FaultRegion::kQ)) emit_row(a.q, g / hq, g % hq, a.rotary_dim, emit);
    return;
  }
  const int64_t gk = g - tokens * hq;
  const int64_t hkv = a.k.size(1);
  if (region_hits(filter, FaultRegion::kK)) emit_row(a.k, gk / hkv, gk % hkv, a.rotary_dim, emit);
}

void footprint(const RmsNormArgs& a, int64_t g, FaultRegion filter, Emit& emit) {
  const int64_t heads = a.output.size(1);
  if (region_hits(filter, FaultRegion::kOut)) {
    emit_row(a.output, g / heads, g % heads, a.output.size(2), emit);
  }
}

void footprint(const ReshapeAndCacheArgs& a, int64_t g, FaultRegion filter, Emit& emit) {
  const int64_t slot = read_slot(a.slot_mapping, g);
  if (slot < 0 || !region_hits(filter, FaultRegion::kCache)) return;
  const layout::PagedCacheShape shape = a.cfg.cache_shape();
  for (int64_t h = 0; h < a.cfg.num_heads_kv; ++h) {
    emit_k_slot(a.cache.k_cache, shape, slot, h, emit);
    emit_v_slot(a.cache.v_cache, a.v_layout, shape, slot, h, emit);
  }
}

void footprint(const PerTokenQuantCacheArgs& a, int64_t g, FaultRegion filter, Emit& emit) {
  const int64_t hkv = a.cfg.num_heads_kv;
  const int64_t slot = read_slot(a.slot_mapping, g / hkv);
  if (slot < 0 || !region_hits(filter, FaultRegion::kCache)) return;
  const layout::PagedCacheShape shape = a.cfg.cache_shape();
  const int64_t h = g % hkv;
  emit_k_slot(a.cache.k_cache, shape, slot, h, emit);
  emit_v_slot(a.cache.v_cache, a.v_layout, shape, slot, h, emit);
  emit_scale(a.cache.k_scale, shape, slot, h, emit);
  emit_scale(a.cache.v_scale, shape, slot, h, emit);
}

int64_t tokens_of(const FusedQkNormRopeCacheArgs& a) { return a.qkv.rank > 0 ? a.qkv.size(0) : 0; }
int64_t tokens_of(const RopeReshapeCacheArgs& a) { return a.q.rank > 0 ? a.q.size(0) : 0; }
int64_t tokens_of(const RotaryArgs& a) { return a.q.rank > 0 ? a.q.size(0) : 0; }
int64_t tokens_of(const RmsNormArgs& a) { return a.input.rank > 0 ? a.input.size(0) : 0; }
int64_t tokens_of(const ReshapeAndCacheArgs& a) { return a.key.rank > 0 ? a.key.size(0) : 0; }
int64_t tokens_of(const PerTokenQuantCacheArgs& a) { return a.key.rank > 0 ? a.key.size(0) : 0; }

// Writes the payload: seeded random bits (garbage) or the dtype's quiet NaN (nan). Host views
// are written in place; views on another device are staged: each touched view is downloaded once,
// patched on the host and uploaded by flush() (through the DeviceMemoryAccess hooks). The bits are
// drawn in the same order either way, so one seed gives the same payload on every backend.
class PayloadWriter final : public Emit {
 public:
  PayloadWriter(bool nan, Prng& prng, const DeviceMemoryAccess& access)
      : nan_(nan), prng_(prng), access_(access) {}
  void element(const TensorView& view, int64_t offset) override {
    const int64_t size = dtype_size_bytes(view.dtype);
    const uint64_t bits = nan_ ? nan_bits(view.dtype) : prng_.next_u64();
    std::byte* at = nullptr;
    if (view.device == DeviceTag::kHost) {
      at = view.data() + offset * size;
    } else {
      // A contiguous view's element offset is its index in the downloaded copy.
      at = staged(view).data() + offset * size;
    }
    std::memcpy(at, &bits, static_cast<std::size_t>(size));  // little-endian: the low bytes
    ++elements_;
  }
  int64_t elements() const { return elements_; }
  // Uploads every staged view (no-op for host-only payloads).
  void flush() {
    for (const Staged& s : staged_) access_.upload(s.host, s.view);
    staged_.clear();
  }

 private:
  struct Staged {
    TensorView view;
    HostTensor host;
  };
  HostTensor& staged(const TensorView& view) {
    for (Staged& s : staged_) {
      if (s.view.base == view.base && s.view.offset == view.offset && s.view.rank == view.rank &&
          s.view.shape == view.shape && s.view.dtype == view.dtype) {
        return s.host;
      }
    }
    RCSIM_REQUIRE(access_.download && access_.upload,
                  "garbage/nan payload into {} needs DeviceMemoryAccess hooks "
                  "(FaultyKernelSet::set_device_memory_access)",
                  view.describe());
    RCSIM_REQUIRE(view.is_contiguous(), "garbage/nan payload needs a contiguous device view: {}",
                  view.describe());
    staged_.push_back({view, access_.download(view)});
    RCSIM_REQUIRE(staged_.back().host.numel() == view.numel(),
                  "device download of {} returned {} elements", view.describe(),
                  staged_.back().host.numel());
    return staged_.back().host;
  }
  static uint64_t nan_bits(DType t) {
    switch (t) {
      case DType::kBF16: return 0x7FC0;
      case DType::kFP16: return 0x7E00;
      case DType::kFP32: return 0x7FC00000;
      case DType::kFP8E4M3FN: return 0x7F;
      case DType::kFP8E4M3FNUZ: return 0x80;
      case DType::kI64: break;
    }
    RCSIM_ASSERT(false, "no NaN for dtype {}", dtype_name(t));
  }
  bool nan_;
  Prng& prng_;
  const DeviceMemoryAccess& access_;
  std::vector<Staged> staged_;
  int64_t elements_ = 0;
};

// A copy of `args` whose slot_mapping is host-readable (downloaded through `access` when it lives
// on a device; `holder` keeps the download alive). Kernels without slots are returned as they are.
template <typename Args>
Args with_host_slots(const Args& args, HostTensor& holder, const DeviceMemoryAccess& access) {
  Args out = args;
  if constexpr (requires { out.slot_mapping; }) {
    if (!out.slot_mapping.is_null() && out.slot_mapping.device != DeviceTag::kHost) {
      RCSIM_REQUIRE(access.download, "garbage/nan with a device slot_mapping needs "
                                     "DeviceMemoryAccess hooks (set_device_memory_access)");
      RCSIM_REQUIRE(out.slot_mapping.is_contiguous(), "slot_mapping must be contiguous: {}",
                    out.slot_mapping.describe());
      holder = access.download(out.slot_mapping);
      out.slot_mapping = holder.view();
    }
  }
  return out;
}

// Buffers the decorated memory backend handed out: copies *from* them are restores/commits.
struct BufferRegistry {
  std::mutex mu;
  std::set<const std::byte*> bases;
};

}  // namespace

// ---- The engine -------------------------------------------------------------------------------
struct FaultyKernelSet::Impl {
  Impl(KernelSet inner_set, FaultPlan fault_plan, uint64_t fault_seed)
      : inner(inner_set), plan(std::move(fault_plan)), seed(fault_seed),
        registry(std::make_shared<BufferRegistry>()) {}

  // What one call must do: nothing (rule == nullptr) or the rule that fired.
  struct Decision {
    const FaultRule* rule = nullptr;
    int64_t rule_index = -1;
    int64_t call_index = 0;
  };

  KernelError injected(FailureClass c, std::string_view kernel, std::string detail) const {
    return KernelError(c, std::string(kernel), std::move(detail), /*injected=*/true);
  }

  // Device-wide state first (a poisoned device fails everything; a pending late error surfaces),
  // then the first rule of this site whose modifiers fire on this call. Caller holds no lock.
  // select_rule = false: a device operation that is no site's call (taking the backup copy): only
  // the device state applies, and it is not counted as a call of `site`.
  Decision begin_call(FaultSite site, std::string_view kernel, bool select_rule = true) {
    std::lock_guard<std::mutex> lock(mu);
    if (select_rule) ++stats.calls[ix(site)];
    const int64_t call = select_rule ? ++call_index[ix(site)] : call_index[ix(site)];
    if (poisoned) {
      ++stats.injections[ix(site)][ix(FaultKind::kSticky)];
      throw injected(FailureClass::kStickyDevice, kernel,
                     fmt::format("device context poisoned earlier (call {} at {})", call,
                                 fault_site_name(site)));
    }
    if (late_countdown > 0 && --late_countdown == 0) {
      ++stats.late_surfaced;
      ++stats.injections[ix(site)][ix(FaultKind::kLate)];
      const bool sticky = late_error == LateError::kSticky;
      if (sticky) poisoned = true;
      throw injected(sticky ? FailureClass::kStickyDevice : FailureClass::kLaunchFailure, kernel,
                     fmt::format("asynchronous error of an earlier {} call (its write already "
                                 "happened) surfaced at {} call {}",
                                 fault_site_name(late_origin), fault_site_name(site), call));
    }
    Decision d;
    d.call_index = call;
    if (!select_rule) return d;
    for (std::size_t i = 0; i < plan.rules.size(); ++i) {
      const FaultRule& rule = plan.rules[i];
      if (rule.site != site) continue;
      if (rule.on_call != 0 && rule.on_call != call) continue;
      if (!rule.ratio.always()) {
        // Level 2 of swarm activation: this hit fires or not, from its own stream.
        Prng fire = Prng::stream(seed, "fault.fire", i, call);
        if (!fire.chance(rule.ratio.numerator, rule.ratio.denominator)) continue;
      }
      d.rule = &rule;
      d.rule_index = static_cast<int64_t>(i);
      return d;
    }
    return d;
  }

  void count(FaultSite site, FaultKind kind) {
    std::lock_guard<std::mutex> lock(mu);
    ++stats.injections[ix(site)][ix(kind)];
  }
  void record_shape(FaultSite site, int64_t units_total, int64_t tokens) {
    std::lock_guard<std::mutex> lock(mu);
    stats.last_units_total[ix(site)] = units_total;
    stats.last_tokens[ix(site)] = tokens;
  }

  // The kinds that write nothing and throw (or abort) at once; returns for every other kind.
  void fail_without_writing(FaultSite site, std::string_view kernel, const Decision& d) {
    const FaultRule& rule = *d.rule;
    const std::string where = fmt::format("{} call {}", fault_site_name(site), d.call_index);
    switch (rule.kind) {
      case FaultKind::kUnavailable:
        count(site, rule.kind);
        throw injected(FailureClass::kUnavailable, kernel, "module not built (" + where + ")");
      case FaultKind::kLaunch:
        count(site, rule.kind);
        throw injected(FailureClass::kLaunchFailure, kernel, "launch failed (" + where + ")");
      case FaultKind::kInvalid:
        count(site, rule.kind);
        throw injected(FailureClass::kInvalidArgument, kernel,
                       "op rejected its arguments: API drift (" + where + ")");
      case FaultKind::kOom:
        count(site, rule.kind);
        throw injected(FailureClass::kOutOfMemory, kernel, "out of memory (" + where + ")");
      case FaultKind::kAbort:
        count(site, rule.kind);
        std::fprintf(stderr, "rcsim: injected abort in %.*s (%s)\n",
                     static_cast<int>(kernel.size()), kernel.data(), where.c_str());
        std::fflush(stderr);
        std::abort();
      case FaultKind::kRebuild: {
        std::function<void(std::string_view)> sink_copy;
        int64_t attempt = 0;
        {
          std::lock_guard<std::mutex> lock(mu);
          ++stats.injections[ix(site)][ix(rule.kind)];
          attempt = ++stats.rebuild_attempts;
          stats.rebuild_cost_us += rule.rebuild_cost_us;
          sink_copy = log_sink;
        }
        const std::string line = fmt::format(
            "ERROR rcsim.jit: building module for {} failed, attempt {} ({} us) [injected, {}]",
            kernel, attempt, rule.rebuild_cost_us, where);
        if (sink_copy) sink_copy(line);
        throw injected(FailureClass::kUnavailable, kernel,
                       fmt::format("JIT build failed again (attempt {}, {})", attempt, where));
      }
      default: return;
    }
  }

  // The k of this call, in native units, for a kernel of `units_total` units over `tokens`.
  int64_t resolve_native_k(const FaultRule& rule, const Decision& d, int64_t units_total,
                           int64_t tokens, TornUnit unit) {
    const int64_t at_granularity =
        units_at_granularity(unit, rule.tile_tokens, units_total, tokens);
    const UnitCount k = rule.k_or_default();
    if (k.mode == UnitCount::Mode::kNumber && k.number > at_granularity) {
      std::lock_guard<std::mutex> lock(mu);
      ++stats.k_clamped;
    }
    Prng prng = Prng::stream(seed, "fault.k", d.rule_index, d.call_index);
    const int64_t resolved = k.resolve(at_granularity, prng);
    return native_units_for(unit, rule.tile_tokens, resolved, units_total, tokens);
  }

  // The shared flow of every kernel decorator. `cache_only(args, k)` runs the kernel for k units
  // with its q/k outputs redirected (only fused and rope_cache pass one).
  template <typename Kernel, typename Args, typename CacheOnly>
  KernelRun run_kernel(FaultSite site, Kernel& kernel, const Args& args, CacheOnly cache_only) {
    const std::string_view name = Kernel::kName;
    const Decision d = begin_call(site, name);
    const int64_t tokens = tokens_of(args);
    if (d.rule == nullptr) {
      const KernelRun run = kernel.run(args);
      record_shape(site, run.units_total, tokens);
      return run;
    }
    fail_without_writing(site, name, d);
    const FaultRule& rule = *d.rule;
    // Probe N: max_units = 0 validates and writes nothing (bad input throws InvalidInput here,
    // before any injected effect, exactly as the real kernel would).
    Args probe = args;
    probe.limit.max_units = 0;
    const int64_t units_total = kernel.run(probe).units_total;
    record_shape(site, units_total, tokens);
    int64_t k = resolve_native_k(rule, d, units_total, tokens, rule.unit);
    if (!args.limit.unlimited() && args.limit.max_units < k) k = args.limit.max_units;
    Args limited = args;
    limited.limit.max_units = k;
    const std::string where = fmt::format("{} call {}, {} of {} units done",
                                          fault_site_name(site), d.call_index, k, units_total);
    switch (rule.kind) {
      case FaultKind::kTorn:
        kernel.run(limited);
        count(site, rule.kind);
        throw injected(FailureClass::kLaunchFailure, name, "torn write (" + where + ")");
      case FaultKind::kSticky: {
        kernel.run(limited);
        std::lock_guard<std::mutex> lock(mu);
        ++stats.injections[ix(site)][ix(rule.kind)];
        poisoned = true;
        throw injected(FailureClass::kStickyDevice, name, "sticky device error (" + where + ")");
      }
      case FaultKind::kLate: {
        kernel.run(limited);
        std::lock_guard<std::mutex> lock(mu);
        ++stats.injections[ix(site)][ix(rule.kind)];
        ++stats.late_armed;
        // One pending asynchronous error at a time: a device reports its first fault.
        if (late_countdown <= 0) {
          late_countdown = rule.late_after_calls;
          late_error = rule.late_error;
          late_origin = site;
        }
        // The launch "succeeded" as far as the caller can tell: that is the point of this kind.
        return KernelRun{units_total, units_total};
      }
      case FaultKind::kGarbage:
      case FaultKind::kNan: {
        kernel.run(limited);
        Prng payload_prng = Prng::stream(seed, "fault.payload", d.rule_index, d.call_index);
        Prng share_prng = Prng::stream(seed, "fault.share", d.rule_index, d.call_index);
        DeviceMemoryAccess access;
        {
          std::lock_guard<std::mutex> lock(mu);
          access = device_access;
        }
        PayloadWriter writer(rule.kind == FaultKind::kNan, payload_prng, access);
        // The footprints read slot_mapping on the host: bring a device one over first.
        HostTensor host_slots;
        const Args host_args = with_host_slots(args, host_slots, access);
        int64_t units_hit = 0;
        for (int64_t g = k; g < units_total; ++g) {
          if (!rule.p.always() && !share_prng.chance(rule.p.numerator, rule.p.denominator)) {
            continue;
          }
          const int64_t before = writer.elements();
          footprint(host_args, g, rule.region, writer);
          if (writer.elements() > before) ++units_hit;
        }
        writer.flush();
        {
          std::lock_guard<std::mutex> lock(mu);
          ++stats.injections[ix(site)][ix(rule.kind)];
          stats.units_corrupted += units_hit;
        }
        throw injected(FailureClass::kLaunchFailure, name,
                       fmt::format("{} written into {} unprocessed units ({})",
                                   fault_kind_name(rule.kind), units_hit, where));
      }
      case FaultKind::kCacheOnly:
        cache_only(limited);
        count(site, rule.kind);
        throw injected(FailureClass::kLaunchFailure, name,
                       "cache written, q/k not (" + where + ")");
      default: break;
    }
    RCSIM_ASSERT(false, "fault kind {} reached site {} (the parser's validity table forbids it)",
                 fault_kind_name(rule.kind), fault_site_name(site));
  }

  std::unique_ptr<DeviceBuffer> scratch(DType dtype, std::initializer_list<int64_t> shape) {
    RCSIM_REQUIRE(inner.memory != nullptr, "cacheonly needs a memory backend for scratch q/k");
    const std::vector<int64_t> dims(shape);
    return inner.memory->allocate(dtype, dims);
  }

  KernelSet inner;
  FaultPlan plan;
  uint64_t seed;
  std::shared_ptr<BufferRegistry> registry;

  std::mutex mu;  // guards everything below
  FaultStats stats;
  std::array<int64_t, kFaultSiteCount> call_index{};
  bool poisoned = false;
  int64_t late_countdown = 0;  // > 0: a late error surfaces on the countdown's last call
  LateError late_error = LateError::kSticky;
  FaultSite late_origin = FaultSite::kFused;
  std::function<void(std::string_view)> log_sink;
  DeviceMemoryAccess device_access;

  // The decorators (members so kernels() can hand out stable pointers).
  struct Fused;
  struct RopeCache;
  struct Rotary;
  struct Norm;
  struct Cache;
  struct PerToken;
  struct Memory;
  std::unique_ptr<Fused> fused;
  std::unique_ptr<RopeCache> rope_cache;
  std::unique_ptr<Rotary> rotary;
  std::unique_ptr<Norm> norm;
  std::unique_ptr<Cache> cache;
  std::unique_ptr<PerToken> per_token;
  std::unique_ptr<Memory> memory;
};

namespace {
constexpr auto kNoCacheOnly = [](const auto&) {
  RCSIM_ASSERT(false, "cacheonly at a site that writes no cache");
};
}  // namespace

struct FaultyKernelSet::Impl::Fused final : FusedQkNormRopeCacheKernel {
  explicit Fused(Impl& e) : engine(e) {}
  KernelRun run(const FusedQkNormRopeCacheArgs& args) override {
    return engine.run_kernel(FaultSite::kFused, *engine.inner.fused, args,
                             [this](const FusedQkNormRopeCacheArgs& limited) {
                               // The out-of-place variant leaves qkv alone: point q/k outputs at
                               // scratch unless the caller already did.
                               FusedQkNormRopeCacheArgs redirected = limited;
                               std::unique_ptr<DeviceBuffer> q_scratch;
                               std::unique_ptr<DeviceBuffer> k_scratch;
                               const int64_t t = limited.qkv.size(0);
                               const int64_t d = limited.cfg.head_dim;
                               if (redirected.q_out.is_null()) {
                                 q_scratch = engine.scratch(limited.qkv.dtype,
                                                            {t, limited.cfg.num_heads_q, d});
                                 redirected.q_out = q_scratch->view();
                               }
                               if (redirected.k_out.is_null()) {
                                 k_scratch = engine.scratch(limited.qkv.dtype,
                                                            {t, limited.cfg.num_heads_kv, d});
                                 redirected.k_out = k_scratch->view();
                               }
                               engine.inner.fused->run(redirected);
                             });
  }
  Impl& engine;
};

struct FaultyKernelSet::Impl::RopeCache final : RopeReshapeCacheKernel {
  explicit RopeCache(Impl& e) : engine(e) {}
  KernelRun run(const RopeReshapeCacheArgs& args) override {
    return engine.run_kernel(
        FaultSite::kRopeCache, *engine.inner.rope_reshape_cache, args,
        [this](const RopeReshapeCacheArgs& limited) {
          // Branch B ropes q and k in place: run it on copies so only the cache changes.
          RopeReshapeCacheArgs redirected = limited;
          auto q_copy = engine.scratch(limited.q.dtype,
                                       {limited.q.size(0), limited.q.size(1), limited.q.size(2)});
          auto k_copy = engine.scratch(limited.k.dtype,
                                       {limited.k.size(0), limited.k.size(1), limited.k.size(2)});
          engine.inner.memory->copy(limited.q, q_copy->view());
          engine.inner.memory->copy(limited.k, k_copy->view());
          redirected.q = q_copy->view();
          redirected.k = k_copy->view();
          engine.inner.rope_reshape_cache->run(redirected);
        });
  }
  Impl& engine;
};

struct FaultyKernelSet::Impl::Rotary final : RotaryEmbeddingKernel {
  explicit Rotary(Impl& e) : engine(e) {}
  KernelRun run(const RotaryArgs& args) override {
    return engine.run_kernel(FaultSite::kFallbackRope, *engine.inner.rotary, args, kNoCacheOnly);
  }
  Impl& engine;
};

struct FaultyKernelSet::Impl::Norm final : RmsNormKernel {
  explicit Norm(Impl& e) : engine(e) {}
  KernelRun run(const RmsNormArgs& args) override {
    return engine.run_kernel(FaultSite::kFallbackNorm, *engine.inner.rms_norm, args, kNoCacheOnly);
  }
  Impl& engine;
};

struct FaultyKernelSet::Impl::Cache final : ReshapeAndCacheKernel {
  explicit Cache(Impl& e) : engine(e) {}
  KernelRun run(const ReshapeAndCacheArgs& args) override {
    return engine.run_kernel(FaultSite::kFallbackCache, *engine.inner.reshape_and_cache, args,
                             kNoCacheOnly);
  }
  Impl& engine;
};

struct FaultyKernelSet::Impl::PerToken final : PerTokenQuantCacheKernel {
  explicit PerToken(Impl& e) : engine(e) {}
  KernelRun run(const PerTokenQuantCacheArgs& args) override {
    return engine.run_kernel(FaultSite::kFallbackCache, *engine.inner.per_token_quant_cache, args,
                             kNoCacheOnly);
  }
  Impl& engine;
};

// A buffer handed out by the decorated memory backend: forgets its base when it dies, so a later
// allocation at the same address is classified afresh.
class RegisteredBuffer final : public DeviceBuffer {
 public:
  RegisteredBuffer(std::unique_ptr<DeviceBuffer> inner,
                   std::shared_ptr<BufferRegistry> registry)
      : inner_(std::move(inner)), registry_(std::move(registry)) {
    std::lock_guard<std::mutex> lock(registry_->mu);
    registry_->bases.insert(inner_->view().base);
  }
  ~RegisteredBuffer() override {
    std::lock_guard<std::mutex> lock(registry_->mu);
    registry_->bases.erase(inner_->view().base);
  }
  TensorView view() const override { return inner_->view(); }

 private:
  std::unique_ptr<DeviceBuffer> inner_;
  std::shared_ptr<BufferRegistry> registry_;
};

struct FaultyKernelSet::Impl::Memory final : MemoryBackend {
  explicit Memory(Impl& e) : engine(e) {}
  DeviceTag device() const override { return engine.inner.memory->device(); }

  std::unique_ptr<DeviceBuffer> allocate(DType dtype, std::span<const int64_t> shape) override {
    const Decision d = engine.begin_call(FaultSite::kBackup, kName);
    if (d.rule != nullptr) {
      const std::string where = fmt::format("backup call {}", d.call_index);
      if (d.rule->kind == FaultKind::kSticky) {
        std::lock_guard<std::mutex> lock(engine.mu);
        ++engine.stats.injections[ix(FaultSite::kBackup)][ix(FaultKind::kSticky)];
        engine.poisoned = true;
        throw engine.injected(FailureClass::kStickyDevice, kName,
                              "sticky device error (" + where + ")");
      }
      engine.fail_without_writing(FaultSite::kBackup, kName, d);
      RCSIM_ASSERT(false, "kind {} at backup", fault_kind_name(d.rule->kind));
    }
    return std::make_unique<RegisteredBuffer>(engine.inner.memory->allocate(dtype, shape),
                                              engine.registry);
  }

  KernelRun copy(const TensorView& src, const TensorView& dst, WorkLimit limit) override {
    bool from_our_buffer = false;
    {
      std::lock_guard<std::mutex> lock(engine.registry->mu);
      from_our_buffer = engine.registry->bases.count(src.base) > 0;
    }
    if (!from_our_buffer) {
      // Taking the backup: no rule applies, but the device's state does.
      engine.begin_call(FaultSite::kBackup, kName, /*select_rule=*/false);
      return engine.inner.memory->copy(src, dst, limit);
    }
    const Decision d = engine.begin_call(FaultSite::kRestore, kName);
    if (d.rule == nullptr) {
      const KernelRun run = engine.inner.memory->copy(src, dst, limit);
      engine.record_shape(FaultSite::kRestore, run.units_total, src.rank > 0 ? src.size(0) : 0);
      return run;
    }
    const FaultRule& rule = *d.rule;
    if (rule.kind == FaultKind::kLaunch) engine.fail_without_writing(FaultSite::kRestore, kName, d);
    const int64_t units_total = engine.inner.memory->copy(src, dst, WorkLimit{0}).units_total;
    const int64_t rows = src.rank > 0 ? src.size(0) : 0;
    engine.record_shape(FaultSite::kRestore, units_total, rows);
    int64_t k = 0;  // sticky defaults to k = 0 (nothing copied)
    if (rule.kind == FaultKind::kPartial || rule.k) {
      k = engine.resolve_native_k(rule, d, units_total, rows, TornUnit::kHead);
    }
    if (!limit.unlimited() && limit.max_units < k) k = limit.max_units;
    engine.inner.memory->copy(src, dst, WorkLimit{k});
    const std::string where = fmt::format("restore call {}, {} of {} elements copied",
                                          d.call_index, k, units_total);
    std::lock_guard<std::mutex> lock(engine.mu);
    ++engine.stats.injections[ix(FaultSite::kRestore)][ix(rule.kind)];
    if (rule.kind == FaultKind::kSticky) {
      engine.poisoned = true;
      throw engine.injected(FailureClass::kStickyDevice, kName,
                            "sticky device error (" + where + ")");
    }
    RCSIM_ASSERT(rule.kind == FaultKind::kPartial, "kind {} at restore",
                 fault_kind_name(rule.kind));
    throw engine.injected(FailureClass::kLaunchFailure, kName, "copy stopped part-way (" + where + ")");
  }
  Impl& engine;
};

FaultyKernelSet::FaultyKernelSet(KernelSet inner, FaultPlan plan, uint64_t seed)
    : impl_(std::make_unique<Impl>(inner, std::move(plan), seed)) {
  Impl& e = *impl_;
  if (inner.fused) e.fused = std::make_unique<Impl::Fused>(e);
  if (inner.rope_reshape_cache) e.rope_cache = std::make_unique<Impl::RopeCache>(e);
  if (inner.rotary) e.rotary = std::make_unique<Impl::Rotary>(e);
  if (inner.rms_norm) e.norm = std::make_unique<Impl::Norm>(e);
  if (inner.reshape_and_cache) e.cache = std::make_unique<Impl::Cache>(e);
  if (inner.per_token_quant_cache) e.per_token = std::make_unique<Impl::PerToken>(e);
  if (inner.memory) e.memory = std::make_unique<Impl::Memory>(e);
}

FaultyKernelSet::~FaultyKernelSet() = default;

KernelSet FaultyKernelSet::kernels() {
  Impl& e = *impl_;
  KernelSet out;
  out.fused = e.fused.get();
  out.rope_reshape_cache = e.rope_cache.get();
  out.rotary = e.rotary.get();
  out.rms_norm = e.norm.get();
  out.reshape_and_cache = e.cache.get();
  out.per_token_quant_cache = e.per_token.get();
  out.memory = e.memory.get();
  return out;
}

const FaultStats& FaultyKernelSet::stats() const { return impl_->stats; }
const FaultPlan& FaultyKernelSet::plan() const { return impl_->plan; }
uint64_t FaultyKernelSet::seed() const { return impl_->seed; }

void FaultyKernelSet::set_log_sink(std::function<void(std::string_view line)> sink) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->log_sink = std::move(sink);
}

void FaultyKernelSet::set_device_memory_access(DeviceMemoryAccess access) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->device_access = std::move(access);
}

bool FaultyKernelSet::device_poisoned() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->poisoned;
}

}  // namespace rcsim
