#include "fault_injection/sim/graph_mode.h"

#include <algorithm>

#include "core/check.h"

namespace rcsim::sim {

LayerMode GraphCache::begin_step(const Step& step) {
  mode_ = LayerMode::kEager;
  replaying_ = nullptr;
  bucket_ = static_cast<int64_t>(step.rows.size());
  if (enabled_ && step.prefill_tokens == 0) {
    if (retry_eagerly_) {
      retry_eagerly_ = false;
    } else if (const auto it = graphs_.find(bucket_); it != graphs_.end()) {
      mode_ = LayerMode::kReplay;
      replaying_ = &it->second;
    } else {
      mode_ = LayerMode::kCapture;
      capture_pending_.clear();
    }
  }
  return mode_;
}

const DispatchRecord& GraphCache::captured(int64_t layer) const {
  RCSIM_ASSERT(replaying_ != nullptr, "replay without a captured record");
  return (*replaying_)[static_cast<std::size_t>(layer)];
}

void GraphCache::end_step(bool aborted, bool late_armed, RunResult& result) {
  if (mode_ == LayerMode::kCapture) {
    // A capture whose step did not complete (surfaced error, late error at the sync) leaves
    // no graph: the step is retried eagerly and the bucket captured again at a later sighting.
    if (aborted || late_armed) {
      ++result.graph_capture_failures;
      retry_eagerly_ = true;
    } else {
      graphs_[bucket_] = capture_pending_;
      ++result.graphs_captured;
    }
  } else if (mode_ == LayerMode::kReplay && !aborted) {
    ++result.graph_replays;
  }
}

void GraphCache::reset() {
  graphs_.clear();
  retry_eagerly_ = false;
}

RopeCacheResult GraphCache::replay(SimDevice& device, Oracle& oracle, const RopeCacheInputs& sut,
                                  const DispatchRecord& captured, RunResult& result) {
  if (captured.backup_taken) {
    // The clone covers the first backup_bytes of qkv (its flat prefix, in elements).
    const int64_t elem = dtype_size_bytes(sut.qkv.dtype);
    const int64_t units = std::min<int64_t>(captured.backup_bytes, sut.qkv.span_bytes()) / elem;
    TensorView prefix = sut.qkv;
    prefix.rank = 1;
    prefix.shape = {units, 0, 0, 0, 0, 0};
    prefix.strides = {1, 0, 0, 0, 0, 0};
    const int64_t shape[] = {units};
    const DeviceTensor backup = device.allocate(sut.qkv.dtype, shape, 0);
    device.copy(prefix, backup->view());
    ++result.graph_replay_backup_copies;
    result.graph_replay_backup_bytes += captured.backup_bytes;
    if (captured.restored) {
      device.copy(backup->view(), prefix);
      ++result.graph_replay_restore_copies;
    }
  }
  oracle.run_branch(captured, sut);
  RopeCacheResult out;
  out.record = captured;
  out.q = sut.q;
  out.k = sut.k;
  out.v = sut.v;
  return out;
}

}  // namespace rcsim::sim
