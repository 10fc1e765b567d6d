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
// Garbage / NaN payloads are written from the host: host views in place; views on another device
// (contiguous ones) through DeviceMemoryAccess hooks (download, patch, upload), which the GPU
// backend provides with gpu::download / gpu::upload_into. Without hooks such a payload throws
// InvalidInput naming the view.
//
// Thread safety: calls may come from several threads; decisions and stats are serialised.
// Read stats() only while no call is in flight.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string_view>

#include "core/kernel_interfaces.h"
#include "core/tensor.h"
#include "fakes/faults/fault_model.h"
#include "fakes/faults/fault_stats.h"

namespace rcsim {

// How the decorators read and write memory the host cannot address (device views): a whole
// contiguous view down to a host tensor, and a host tensor back up into it.
struct DeviceMemoryAccess {
  std::function<HostTensor(const TensorView& device_view)> download;
  std::function<void(const HostTensor& host, const TensorView& device_view)> upload;
};

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
  // Needed only for garbage / nan payloads into non-host views (see above).
  void set_device_memory_access(DeviceMemoryAccess access);
  // True after a sticky fault (or a late fault surfacing as sticky): every call now fails.
  bool device_poisoned() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace rcsim
