// CUDA-graph capture/replay mode of the simulator (issue 10 item 5). A decode-only step is a graph
// of its padded bucket size: the first sighting of a bucket captures (the layers' dispatch
// records), later sightings replay them. A capture whose step did not complete leaves no graph:
// the next such step runs eagerly and the bucket is captured again at a later sighting. A replay
// runs no dispatcher code and no faulty kernel; it re-runs what the capture recorded.
#pragma once

#include <cstdint>
#include <map>
#include <vector>

#include "core/dispatch/rope_cache_dispatcher.h"
#include "fault_injection/sim/engine.h"
#include "fault_injection/sim/oracle.h"
#include "fault_injection/sim/workload.h"

namespace rcsim::sim {

enum class LayerMode : uint8_t { kEager, kCapture, kReplay };

class GraphCache {
 public:
  explicit GraphCache(bool enabled) : enabled_(enabled) {}

  // The mode of this step; for a replay, records() holds the captured per-layer records.
  LayerMode begin_step(const Step& step);
  const DispatchRecord& captured(int64_t layer) const;
  // A capturing step's layer record, in layer order.
  void record(const DispatchRecord& rec) { capture_pending_.push_back(rec); }
  // Ends the step: a capture whose step completed (not aborted, no late fault armed) becomes the
  // bucket's graph, any other schedules an eager retry; counts graphs and replays into `result`.
  void end_step(bool aborted, bool late_armed, RunResult& result);
  // A fresh process captures anew.
  void reset();

  // A replayed graph re-runs what its capture recorded, with today's inputs: the policy's qkv
  // backup copy when the capture took one (the clone is a captured memcpy: it runs in every
  // replay, even though no failure can be caught any more), the restore copy when the capture
  // restored, then the recorded branch's kernels. The failed fused launch itself was never
  // recorded. The backup is really copied (and the restore copies it back) so a replay costs
  // what it would on a device; the bytes are the dispatcher's own count at capture.
  static RopeCacheResult replay(SimDevice& device, Oracle& oracle, const RopeCacheInputs& sut,
                                const DispatchRecord& captured, RunResult& result);

 private:
  bool enabled_;
  LayerMode mode_ = LayerMode::kEager;
  int64_t bucket_ = 0;
  std::map<int64_t, std::vector<DispatchRecord>> graphs_;
  const std::vector<DispatchRecord>* replaying_ = nullptr;
  std::vector<DispatchRecord> capture_pending_;
  bool retry_eagerly_ = false;
};

}  // namespace rcsim::sim
