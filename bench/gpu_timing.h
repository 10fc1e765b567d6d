// Device timing for the GPU benchmarks (bench/gpu_bench.cc): an owned device buffer, graph-
// replayed and eager timing of a call sequence (median of kRepeats, each measurement long enough
// for event resolution not to matter), and the copy bandwidth every kernel is compared against.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "kernels/hip/gpu_runtime.h"

namespace rcsim::bench {

inline constexpr int kRepeats = 7;

// A device allocation freed with its owner.
struct DeviceMem {
  void* p = nullptr;
  int64_t bytes = 0;
  explicit DeviceMem(int64_t b) : p(gpu::device_alloc(b)), bytes(b) {}
  ~DeviceMem() { gpu::device_free(p); }
  DeviceMem(const DeviceMem&) = delete;
  DeviceMem& operator=(const DeviceMem&) = delete;
};

// Puts the inputs back as drawn, untimed, before every measurement: the kernels timed here write
// q and k back in place, and repeated calls on the same rows drift the values (gpu_bench.cc,
// ShapeInputs::qkv_drawn). Must leave the device idle (synchronized).
using ResetInputs = std::function<void()>;

// Times fn(set) calls: a graph of `sets` calls (one per input set) replayed; returns us per call.
// reset() runs before each measurement, so a row is called at most `replays` times per
// measurement before it is restored.
double time_us_per_call(gpu::GraphRunner& g, int sets, const std::function<void(int, void*)>& fn,
                        const ResetInputs& reset);

// Times eager calls (no graph): host work between launches counts, as it does for a policy that
// throws and catches per call. Events around a loop of calls, us per call. Several call
// sequences are timed against each other: each of `rounds` rounds takes one sample of every fn,
// round r starting at fn r mod n (reset() before each sample). Why: the policies are compared as
// ratios of eager times that the host's launch path dominates at small T, and timing one policy's
// samples after another's let the host's drift between them enter the ratio (sticky / alone was
// 1.039 at T=64 in the seventh pass's run, for the same device work).
struct EagerTimes {
  std::vector<double> us;  // each fn's median sample, us per call
  // Each fn's median over rounds of its sample / the first fn's sample of the same round: a
  // paired ratio. A slow spell of the host longer than a sample lifts one fn's samples more than
  // another's; the ratio of the medians above keeps that, a paired ratio only sees what differs
  // within one round. H200, four runs of one binary (thirteenth pass): sticky / alone 0.951-1.112
  // as a ratio of medians, 0.955-1.044 paired (the 1.112 row: 0.982).
  std::vector<double> ratio_to_first;
};
EagerTimes time_us_eager_rounds(const std::vector<std::function<void(int, void*)>>& fns,
                                const ResetInputs& reset, int rounds);

// 2 GiB device-to-device, read + write bytes, median of kRepeats copies; printed and returned.
double measure_copy_gbps();

}  // namespace rcsim::bench
