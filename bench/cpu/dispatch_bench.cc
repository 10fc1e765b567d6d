// CPU-side benchmarks of issue 8: how many rope_cache calls per second one core makes through the
// dispatcher on the CPU backend (Qwen3-0.6B per-rank shape 16/8/128, one layer, T <= 16), per
// policy, when the fused kernel works and when it is unavailable; and how many simulator steps
// per second the engine runs. Ratios between rows of one run are the claims (BENCHMARKS.md).
//
// Inputs are random, non-zero, from the project PRNG (seed printed in the context); the fused
// kernel normalises qkv in place on every iteration, which keeps values finite and the work equal.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/dispatch/rope_cache_dispatcher.h"
#include "core/prng.h"
#include "fakes/faults/faulty_kernels.h"
#include "fault_injection/plan/fault_plan.h"
#include "fault_injection/sim/engine.h"
#include "fault_injection/sim/sim_config.h"
#include "kernels/cpu/cpu_backend.h"

namespace rcsim {
namespace {

constexpr uint64_t kSeed = 0xBE7C0001ull;

// One layer of host tensors for T tokens of the Qwen3-0.6B per-rank shape.
struct BenchLayer {
  AttentionConfig cfg;
  HostTensor qkv, positions, slots, cos_sin, q_weight, k_weight, k_cache, v_cache;

  explicit BenchLayer(int64_t tokens) {
    cfg.num_heads_q = 16;
    cfg.num_heads_kv = 8;
    cfg.head_dim = 128;
    cfg.rotary_dim = 128;
    cfg.block_size = 16;
    cfg.num_blocks = 64;
    cfg.max_position = 4096;
    Prng rng = Prng::stream(kSeed, "bench-layer", tokens);
    auto fill = [&](HostTensor& t) {
      for (uint16_t& e : t.as<uint16_t>()) {
        e = float_to_activation(rng.nonzero_float(0.25f, 2.0f), cfg.act_dtype);
      }
    };
    qkv = HostTensor(cfg.act_dtype, {tokens, cfg.qkv_width()});
    cos_sin = HostTensor(cfg.act_dtype, {cfg.max_position, cfg.rotary_dim});
    q_weight = HostTensor(cfg.act_dtype, {cfg.head_dim});
    k_weight = HostTensor(cfg.act_dtype, {cfg.head_dim});
    fill(qkv);
    fill(cos_sin);
    fill(q_weight);
    fill(k_weight);
    positions = HostTensor(DType::kI64, {tokens});
    slots = HostTensor(DType::kI64, {tokens});
    for (int64_t i = 0; i < tokens; ++i) {
      positions.as<int64_t>()[static_cast<std::size_t>(i)] = rng.range(0, cfg.max_position - 1);
      slots.as<int64_t>()[static_cast<std::size_t>(i)] = i * 3;  // distinct, crossing pages
    }
    const int64_t x = cfg.x();
    k_cache = HostTensor(cfg.cache_storage_dtype(),
                         {cfg.num_blocks, cfg.num_heads_kv, cfg.head_dim / x, cfg.block_size, x});
    // ATOM's 4-D label of the V cache; the bytes are written in the shuffle order (semantics 1.1).
    v_cache = HostTensor(cfg.cache_storage_dtype(),
                         {cfg.num_blocks, cfg.num_heads_kv, cfg.head_dim, cfg.block_size});
    k_cache.fill_pattern(0xA5);
    v_cache.fill_pattern(0xA5);
  }

  RopeCacheInputs inputs() const {
    RopeCacheInputs in;
    in.qkv = qkv.view();
    const QkvViews v = split_qkv(in.qkv, cfg.num_heads_q, cfg.num_heads_kv, cfg.head_dim);
    in.q = v.q;
    in.k = v.k;
    in.v = v.v;
    in.positions = positions.view();
    in.slot_mapping = slots.view();
    in.cos_sin_cache = cos_sin.view();
    in.q_weight = q_weight.view();
    in.k_weight = k_weight.view();
    in.cache.k_cache = k_cache.view();
    in.cache.v_cache = v_cache.view();
    return in;
  }
};

// Kernels that do no work: the rows that use them isolate the dispatcher's own overhead (decision,
// records, backup allocation and copy through the host memory backend) from the reference math.
struct NoWorkFused final : FusedQkNormRopeCacheKernel {
  KernelRun run(const FusedQkNormRopeCacheArgs& a) override {
    return {a.qkv.size(0), a.qkv.size(0)};
  }
};
struct NoWorkRotary final : RotaryEmbeddingKernel {
  KernelRun run(const RotaryArgs& a) override { return {a.q.size(0), a.q.size(0)}; }
};
struct NoWorkNorm final : RmsNormKernel {
  KernelRun run(const RmsNormArgs& a) override { return {a.input.size(0), a.input.size(0)}; }
};
struct NoWorkCache final : ReshapeAndCacheKernel {
  KernelRun run(const ReshapeAndCacheArgs& a) override { return {a.key.size(0), a.key.size(0)}; }
};

// state.range(0): tokens; range(1): policy index; range(2): 1 = fused unavailable;
// range(3): 1 = no-work kernels (dispatcher overhead only).
void BM_DispatchCpu(benchmark::State& state) {
  const int64_t tokens = state.range(0);
  const FallbackPolicy policy = all_policies()[static_cast<std::size_t>(state.range(1))];
  const bool fused_unavailable = state.range(2) != 0;
  const bool no_work = state.range(3) != 0;
  BenchLayer layer(tokens);
  cpu::CpuBackend backend;
  NoWorkFused no_work_fused;
  NoWorkRotary no_work_rotary;
  NoWorkNorm no_work_norm;
  NoWorkCache no_work_cache;
  KernelSet inner = backend.kernels();
  if (no_work) {
    inner.fused = &no_work_fused;
    inner.rotary = &no_work_rotary;
    inner.rms_norm = &no_work_norm;
    inner.reshape_and_cache = &no_work_cache;
  }
  FaultyKernelSet faulty(inner,
                         parse_fault_plan(fused_unavailable ? "fused:unavailable" : ""), kSeed);
  DispatchProcess process;
  LayerSpec spec;
  spec.attn = layer.cfg;
  spec.policy = policy;
  RopeCacheDispatcher dispatcher(spec, faulty.kernels(), process);
  const RopeCacheInputs in = layer.inputs();
  int64_t fused_calls = 0;
  for (auto _ : state) {
    RopeCacheResult r = dispatcher.rope_cache(in);
    fused_calls += r.record.branch == Branch::kFused ? 1 : 0;
    benchmark::DoNotOptimize(r.q.base);
  }
  // The row is only meaningful if the path it names really ran.
  if ((fused_calls == static_cast<int64_t>(state.iterations())) == fused_unavailable) {
    state.SkipWithError("unexpected branch for this row");
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
  state.SetLabel(std::string(policy_name(policy)) +
                 (fused_unavailable ? " / fused unavailable" : " / fused ok") +
                 (no_work ? " / no-work kernels" : " / cpu reference kernels"));
}

void DispatchArgs(benchmark::internal::Benchmark* b) {
  for (int64_t no_work : {0, 1}) {
    for (int64_t fused_unavailable : {0, 1}) {
      for (int64_t p = 0; p < static_cast<int64_t>(all_policies().size()); ++p) {
        for (int64_t t : {1, 4, 16}) b->Args({t, p, fused_unavailable, no_work});
      }
    }
  }
}
BENCHMARK(BM_DispatchCpu)->Apply(DispatchArgs)->ArgNames({"T", "policy", "unavailable", "nowork"});

// Simulator throughput: one default run (2 layers of Qwen3-0.6B, swarm faults off/on).
void BM_SimulatorSteps(benchmark::State& state) {
  sim::SimOverrides overrides;
  overrides.faults = state.range(0) != 0 ? "swarm" : "none";
  const sim::SimConfig cfg = sim::sample_config(kSeed, overrides);
  int64_t steps = 0;
  for (auto _ : state) {
    const sim::RunResult r = sim::run_simulation(cfg);
    steps += r.steps_run;
    benchmark::DoNotOptimize(r.steps_run);
  }
  state.counters["steps_per_s"] =
      benchmark::Counter(static_cast<double>(steps), benchmark::Counter::kIsRate);
  state.SetLabel(state.range(0) != 0 ? "swarm faults" : "no faults");
}
BENCHMARK(BM_SimulatorSteps)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace rcsim

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  benchmark::AddCustomContext("rcsim_seed", std::to_string(rcsim::kSeed));
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
