// What the simulator keeps per attention layer: its spec and norm weights, and the four KV
// caches the engine compares (the system under test's, the committed expected state, the
// expected state of the step in flight, and the fault-free all-fused shadow). The system under
// test's cache lives on the run's device (CPU or GPU); the oracle's three always live on the CPU
// device (with --backend cpu the two are one device). Also the per-step inputs of one layer call.
#pragma once

#include <cstdint>
#include <memory>

#include "core/attention_config.h"
#include "core/dispatch/rope_cache_dispatcher.h"
#include "core/tensor.h"
#include "fault_injection/sim/sim_config.h"
#include "fault_injection/sim/sim_device.h"
#include "fault_injection/sim/workload.h"

namespace rcsim::sim {

// The KV cache of one layer: K x-packed, V under a 4-D [NB, Hkv, D, BS] label (the fused kernel
// writes shuffle memory order through it, as ATOM passes it), per-token scales when fp8. Every
// byte starts as a sentinel: memory no slot was written to must still hold it at the end.
struct LayerCache {
  DeviceTensor k, v, k_scale, v_scale;  // scales null unless the cache is fp8

  LayerCache() = default;
  LayerCache(SimDevice& device, const AttentionConfig& a);
  KvCacheViews views() const;                      // device views, for kernels
  KvCacheViews host_views(SimDevice& device) const;  // host-readable, for checkers
  void copy_from(SimDevice& device, const LayerCache& from);
  // this (on `device`) <- from (on `from_device`), across devices through host memory.
  void copy_across(SimDevice& device, SimDevice& from_device, const LayerCache& from);
};

// Which device's copy of a tensor a run reads: the system under test's device or the oracle's.
enum class Side : uint8_t { kSut, kOracle };

struct LayerState {
  LayerSpec spec;
  DeviceTensor q_weight, k_weight;                // on the system under test's device
  DeviceTensor q_weight_oracle, k_weight_oracle;  // on the oracle's (null: the same device)
  LayerCache sut;       // what the system under test wrote
  LayerCache expected;  // committed expected state (end of the last completed step)
  LayerCache scratch;   // expected state of the step in flight
  LayerCache shadow;    // fault-free all-fused run
  std::unique_ptr<RopeCacheDispatcher> faulty;
  std::unique_ptr<RopeCacheDispatcher> clean;
};

// Trained-checkpoint-like positive norm weights of layer l (asymmetric across NeoX pairs unless
// the config asks for symmetric ones), drawn from the seed.
struct NormWeights {
  HostTensor q, k;
};
NormWeights norm_weights(const SimConfig& cfg, int64_t head_dim, int64_t layer);

// One layer call's inputs on the host (the originals the checkers compare with) and on the device.
struct StepInputs {
  HostTensor qkv, positions, slots;
  DeviceTensor positions_dev, slots_dev;        // the system under test's device
  DeviceTensor positions_oracle, slots_oracle;  // the oracle's (null: the same device)
};

// Inputs depend on (seed, request, position, layer) only, so a retried step or a shadow run sees
// the same bytes. Index tensors go to `device` and, unless null, to the oracle's device too.
StepInputs build_step_inputs(const SimConfig& cfg, const AttentionConfig& attn,
                             const Scheduler& scheduler, const Step& step, int64_t layer,
                             SimDevice& device, SimDevice* oracle_device);

// The dispatcher's inputs for one run (system under test, expected or shadow) on `qkv` and
// `cache`, with the layer's weights and the engine's cos/sin table, all from `side`'s device.
RopeCacheInputs make_dispatch_inputs(const AttentionConfig& attn, const LayerState& layer,
                                     const TensorView& cos_sin, const TensorView& qkv,
                                     const StepInputs& in, const LayerCache& cache, Side side);

}  // namespace rcsim::sim
