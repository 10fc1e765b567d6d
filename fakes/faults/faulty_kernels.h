// Fault-injecting decorators for every kernel of a KernelSet (the CPU reference now, the GPU
// backend later). They never re-implement math: a torn write is the real kernel run with a
// WorkLimit of k units; garbage and NaN payloads are written into the footprint of units the real
// kernel did not process; "cacheonly" redirects the q/k outputs to scratch buffers so qkv stays
// intact while the cache writes happen. Which fault fires on which call comes from a FaultPlan
// (fault_injection/plan/fault_plan.h) and one seed; every random choice goes through Prng streams
// derived from (seed, site, call index), so the same seed and call sequence give the same bytes.
//
// Unit footprints (what garbage / nan may touch; shared read-only inputs such as weights,
// cos/sin, positions and slots are never touched):
//  - fused, unit (t, h): the head's slice of qkv (Q, K or V: the kernel works in place on the
//    whole of qkv), q_out/k_out rows when set, and for K/V heads of tokens with slot >= 0 the cache
//    slot and per-token scale. Regions: q, k, v, cache.
//  - rope_cache, unit (t, hq): q[t, hq]; for the first q head of a GQA group also k[t, kvh] and
//    (slot >= 0) the K/V cache slots (v is only read). Regions: q, k, cache.
//  - fallback.rope, unit: q[t, h, :rotary_dim] or k[t, h, :rotary_dim]. Regions: q, k.
//  - fallback.norm, unit (t, h): output[t, h]. Region: out.
//  - fallback.cache: reshape_and_cache unit t = every head's K/V slot; per-token unit (t, h) =
//    that head's K/V slot and scales. Region: cache.
// Garbage / NaN payloads are written from the host and need host-resident views; on other
// devices those kinds throw InvalidInput (not yet supported).
//
// Thread safety: calls may come from several threads; decisions and stats are serialised.
// Read stats() only while no call is in flight.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string_view>

#include "core/kernel_interfaces.h"
#include "fault_injection/plan/fault_plan.h"
#include "fault_injection/plan/fault_stats.h"

namespace rcsim {

class FaultyKernelSet {
 public:
  // `inner` must outlive this object. A null kernel in `inner` stays null in kernels().
  FaultyKernelSet(KernelSet inner, FaultPlan plan, uint64_t seed);
  ~FaultyKernelSet();
  FaultyKernelSet(const FaultyKernelSet&) = delete;
  FaultyKernelSet& operator=(const FaultyKernelSet&) = delete;

  // The decorated kernels; pointers stay valid for this object's lifetime.
  KernelSet kernels();
  const FaultStats& stats() const;
  const FaultPlan& plan() const;
  uint64_t seed() const;

  // Receives the error line each `rebuild` attempt logs (the loading layer's JIT traceback, which
  // bypasses the dispatcher's once-only warning). Without a sink the lines are only counted.
  void set_log_sink(std::function<void(std::string_view line)> sink);
  // True after a sticky fault (or a late fault surfacing as sticky): every call now fails.
  bool device_poisoned() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace rcsim
