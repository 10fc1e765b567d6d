// The deterministic simulated serving engine (issue 6). One run = one SimConfig: requests drawn
// from the seed are scheduled into steps (chunked prefill + decode, CUDA-graph padding with slot
// -1); every step runs rope_cache on L layers, each its own RopeCacheDispatcher sharing one
// DispatchProcess, through fault-injecting kernels; then the step is checked against
//   * the expected state: the same inputs run fault-free through the branch the dispatcher
//     reported (fused kernel, or the non-fused composition in the policy's order) on clean,
//     unmutated kernels: q/k/v, the whole KV cache with its untouched slots, and the scales
//     bit-exact;
//   * the dispatch record and log lines against what the policy promises (branch, restore,
//     injected-only failures, one warning per failure class and process);
//   * an attention read over each scheduled request's cached K/V with the step's q: bit-exact
//     against the expected cache (catches reader/writer layout disagreement), and against the
//     fault-free all-fused shadow run (model-order fallbacks: within a bf16 tolerance; the PR
//     order with asymmetric norm weights: measured and reported).
// A safety phase with faults is followed by a liveness phase without: policies that retry must
// be back on the fused path within `liveness_steps` steps. A DispatchError is a correct outcome
// when it comes from an injected fault: the step is aborted and accounted, the engine rolls the
// step back (after checking nothing outside the step's write set changed) and retries it; a
// poisoned device restarts the simulated process.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "fakes/faults/fault_stats.h"
#include "fault_injection/sim/sim_config.h"

namespace rcsim::sim {

enum class RunVerdict : uint8_t { kPass, kCorrectness, kLiveness, kCrash };
std::string_view verdict_name(RunVerdict v);

struct RunResult {
  RunVerdict verdict = RunVerdict::kPass;
  std::string failure;      // first failure, naming step, layer and the first bad element
  int64_t failure_step = -1;
  int64_t steps_run = 0;
  int64_t steps_aborted = 0;       // a DispatchError surfaced (or an async error at the sync)
  int64_t steps_late_tainted = 0;  // aborted at the step-end sync because a late fault was armed
  int64_t process_restarts = 0;    // poisoned device: fresh DispatchProcess and device
  int64_t calls = 0;               // rope_cache calls
  int64_t calls_fused = 0;
  int64_t fallbacks = 0;
  int64_t restores = 0;
  int64_t surfaced_errors = 0;
  std::array<int64_t, 5> fallbacks_by_class{};  // DispatchProcess counters, summed over restarts
  std::array<int64_t, 5> surfaced_by_class{};
  int64_t checks_passed = 0;
  int64_t log_lines = 0;           // dispatcher lines + rebuild lines
  int64_t liveness_steps_to_fused = -1;  // -1: never needed / not reached
  bool liveness_exempt = false;    // the policy promised never to retry (sticky after unavailable)
  // Fallback vs fused-shadow attention difference (the PR-order hazard), over all reads.
  int64_t attention_reads = 0;
  int64_t attention_reads_differing = 0;
  double attention_max_abs_diff = 0.0;
  // A documented weakness of the policy showed up (e.g. a backup that does not cover V, an
  // out-of-place policy without any backup, when a faulty kernel scribbles outside its outputs).
  // The run stops there; the campaign counts it per policy instead of failing.
  std::string hazard;
  // Rebuild cost (issue 10 item 3): fused attempts (dispatched calls that tried the fused
  // kernel, surfaced ones included), the error lines the rebuild faults emitted, and the most
  // rebuild attempts any one simulated process made (sticky: at most 1; pr279: one per call).
  int64_t fused_attempts = 0;
  int64_t rebuild_log_lines = 0;
  int64_t rebuild_attempts_max_per_process = 0;
  // The same for the fused kernel's site alone: sticky caches only the fused kernel's
  // `unavailable`; a rebuild at a fallback site is a recovery-path failure under every policy.
  int64_t fused_rebuild_attempts_max_per_process = 0;
  int64_t processes = 1;  // process_restarts + 1
  // CUDA-graph capture/replay (issue 10 item 5; zero in eager mode). Counted per step (graphs)
  // and per layer (replayed kernel sequences).
  int64_t graphs_captured = 0;
  int64_t graph_capture_failures = 0;  // the capture step aborted: retried eagerly, recaptured later
  int64_t graph_replays = 0;                 // steps replayed
  int64_t graph_replayed_fallback_layers = 0;  // replayed layer sequences that are the fallback
  int64_t graph_replay_backup_copies = 0;    // the policy's qkv backup, re-run by every replay
  int64_t graph_replay_backup_bytes = 0;
  int64_t graph_replay_restore_copies = 0;   // the restore copy captured after a failed attempt
  // Requests (per layer) whose cache holds both paths' writes, checked bit-identical against the
  // all-fused shadow under a model-order fallback with an auto cache.
  int64_t mixed_prefill_fused_decode_fallback = 0;
  int64_t mixed_prefill_fallback_decode_fused = 0;
  // Live (request, layer, position) cache entries compared with the all-fused shadow after each
  // committed step (auto cache, no sliding window), and those that differed: always 0 under a
  // model-order fallback (enforced), measured under the PR order.
  int64_t shadow_cache_positions_checked = 0;
  int64_t shadow_cache_positions_differing = 0;
  FaultStats faults;  // summed over the run's devices
  uint64_t digest = 0;
};

struct RunHooks {
  // Called after every step (for a progress line); may be empty.
  std::function<void(int64_t step, int64_t steps_total, const RunResult& so_far)> on_step;
};

RunResult run_simulation(const SimConfig& cfg, const RunHooks& hooks = {});

}  // namespace rcsim::sim
