// The fault engine behind FaultyKernelSet (FaultyKernelSet::Impl): the
// plan, the seed, the per-site call counters and the device state (sticky poison, a pending late
// error). Each decorator asks it what to do on a call (begin_call) and runs its shared flow
// (run_kernel); partial work is always the real kernel under a WorkLimit. Internal to
// fakes/faults: included by the decorators (faulty_kernels.cc) and fault_engine.cc only.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <utility>

#include <fmt/format.h>

#include "core/check.h"
#include "core/errors.h"
#include "core/prng.h"
#include "fakes/faults/fault_payloads.h"
#include "fakes/faults/faulty_kernels.h"
#include "fakes/faults/unit_footprints.h"

namespace rcsim {

namespace fault_detail {
inline std::size_t ix(FaultSite s) { return static_cast<std::size_t>(s); }
inline std::size_t ix(FaultKind k) { return static_cast<std::size_t>(k); }

// Buffers the decorated memory backend handed out: copies *from* them are restores/commits.
struct BufferRegistry {
  std::mutex mu;
  std::set<const std::byte*> bases;
};
}  // namespace fault_detail

struct FaultyKernelSet::Impl {
  // Defined with the decorators (faulty_kernels.cc), the only place they are complete types.
  Impl(KernelSet inner_set, FaultPlan fault_plan, uint64_t fault_seed);
  ~Impl();

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
  Decision begin_call(FaultSite site, std::string_view kernel, bool select_rule = true);
  void count(FaultSite site, FaultKind kind);
  void record_shape(FaultSite site, int64_t units_total, int64_t tokens);
  // The kinds that write nothing and throw (or abort) at once; returns for every other kind.
  void fail_without_writing(FaultSite site, std::string_view kernel, const Decision& d);
  // The k of this call, in native units, for a kernel of `units_total` units over `tokens`.
  int64_t resolve_native_k(const FaultRule& rule, const Decision& d, int64_t units_total,
                           int64_t tokens, TornUnit unit);
  std::unique_ptr<DeviceBuffer> scratch(DType dtype, std::initializer_list<int64_t> shape);

  // The shared flow of every kernel decorator. `cache_only(args, k)` runs the kernel for k units
  // with its q/k outputs redirected (only fused and rope_cache pass one).
  template <typename Kernel, typename Args, typename CacheOnly>
  KernelRun run_kernel(FaultSite site, Kernel& kernel, const Args& args, CacheOnly cache_only) {
    const std::string_view name = Kernel::kName;
    const Decision d = begin_call(site, name);
    const int64_t tokens = fault_detail::tokens_of(args);
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
        ++stats.injections[fault_detail::ix(site)][fault_detail::ix(rule.kind)];
        poisoned = true;
        throw injected(FailureClass::kStickyDevice, name, "sticky device error (" + where + ")");
      }
      case FaultKind::kLate: {
        kernel.run(limited);
        std::lock_guard<std::mutex> lock(mu);
        ++stats.injections[fault_detail::ix(site)][fault_detail::ix(rule.kind)];
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
      case FaultKind::kNan:
        kernel.run(limited);
        inject_payload(site, name, rule, d, args, k, units_total, where);
      case FaultKind::kCacheOnly:
        cache_only(limited);
        count(site, rule.kind);
        throw injected(FailureClass::kLaunchFailure, name,
                       "cache written, q/k not (" + where + ")");
      default: break;
    }
    RCSIM_FAIL("fault kind {} reached site {} (the parser's validity table forbids it)",
               fault_kind_name(rule.kind), fault_site_name(site));
  }

  // garbage / nan after the real kernel ran k units: the payload goes into the footprint of a
  // share p of the units it did not process, then the launch reports failure.
  template <typename Args>
  [[noreturn]] void inject_payload(FaultSite site, std::string_view name, const FaultRule& rule,
                                   const Decision& d, const Args& args, int64_t k,
                                   int64_t units_total, const std::string& where) {
    Prng payload_prng = Prng::stream(seed, "fault.payload", d.rule_index, d.call_index);
    Prng share_prng = Prng::stream(seed, "fault.share", d.rule_index, d.call_index);
    DeviceMemoryAccess access;
    {
      std::lock_guard<std::mutex> lock(mu);
      access = device_access;
    }
    fault_detail::PayloadWriter writer(rule.kind == FaultKind::kNan, payload_prng, access);
    // The footprints read slot_mapping on the host: bring a device one over first.
    HostTensor host_slots;
    const Args host_args = fault_detail::with_host_slots(args, host_slots, access);
    int64_t units_hit = 0;
    for (int64_t g = k; g < units_total; ++g) {
      if (!rule.p.always() && !share_prng.chance(rule.p.numerator, rule.p.denominator)) {
        continue;
      }
      const int64_t before = writer.elements();
      fault_detail::footprint(host_args, g, rule.region, writer);
      if (writer.elements() > before) ++units_hit;
    }
    writer.flush();
    {
      std::lock_guard<std::mutex> lock(mu);
      ++stats.injections[fault_detail::ix(site)][fault_detail::ix(rule.kind)];
      stats.units_corrupted += units_hit;
    }
    throw injected(FailureClass::kLaunchFailure, name,
                   fmt::format("{} written into {} unprocessed units ({})",
                               fault_kind_name(rule.kind), units_hit, where));
  }

  KernelSet inner;
  FaultPlan plan;
  uint64_t seed;
  std::shared_ptr<fault_detail::BufferRegistry> registry;

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

}  // namespace rcsim
