// The fault engine's decisions (fault_engine.h): which rule fires on a call, the kinds that fail
// without writing, and the resolution of a rule's k for one call.
#include "fakes/faults/fault_engine.h"

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "core/mutants.h"

namespace rcsim {

using fault_detail::ix;

namespace {
// Only the kFaultFireUnseeded mutant reads it: a count of fire decisions that lives as long as
// the OS process, so a seed run twice in one process fires differently the second time.
std::atomic<uint64_t> g_fire_decisions{0};

uint64_t fire_seed(uint64_t run_seed) {
  if (!mutant_active(Mutant::kFaultFireUnseeded)) return run_seed;
  return mix_seed(run_seed, g_fire_decisions.fetch_add(1, std::memory_order_relaxed));
}
}  // namespace

FaultyKernelSet::Impl::Decision FaultyKernelSet::Impl::begin_call(FaultSite site,
                                                               std::string_view kernel,
                                                               bool select_rule) {
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
      Prng fire = Prng::stream(fire_seed(seed), "fault.fire", i, call);
      if (!fire.chance(rule.ratio.numerator, rule.ratio.denominator)) continue;
    }
    d.rule = &rule;
    d.rule_index = static_cast<int64_t>(i);
    return d;
  }
  return d;
}
void FaultyKernelSet::Impl::count(FaultSite site, FaultKind kind) {
  std::lock_guard<std::mutex> lock(mu);
  ++stats.injections[ix(site)][ix(kind)];
}
void FaultyKernelSet::Impl::record_shape(FaultSite site, int64_t units_total, int64_t tokens) {
  std::lock_guard<std::mutex> lock(mu);
  stats.last_units_total[ix(site)] = units_total;
  stats.last_tokens[ix(site)] = tokens;
}
void FaultyKernelSet::Impl::fail_without_writing(FaultSite site, std::string_view kernel,
                                               const Decision& d) {
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
int64_t FaultyKernelSet::Impl::resolve_native_k(const FaultRule& rule, const Decision& d,
                                              int64_t units_total, int64_t tokens,
                                              TornUnit unit) {
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
std::unique_ptr<DeviceBuffer> FaultyKernelSet::Impl::scratch(DType dtype,
                                                           std::initializer_list<int64_t> shape) {
  RCSIM_REQUIRE(inner.memory != nullptr, "cacheonly needs a memory backend for scratch q/k");
  const std::vector<int64_t> dims(shape);
  return inner.memory->allocate(dtype, dims);
}

}  // namespace rcsim
