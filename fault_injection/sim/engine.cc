// The engine's step loop and simulated-process lifecycle (see engine.h for what a run checks).
// The parts live apart: layer_state.* (caches, weights, inputs), oracle.* (expected and shadow
// runs), graph_mode.* (capture/replay), checkers/ (one file per checker, each reading the
// dispatch record), sim_device.* (the memory and kernels everything runs on), run_inputs.* (the
// attention shape and requests a run is fed).
#include "fault_injection/sim/engine.h"

#include <map>
#include <memory>
#include <optional>

#include <fmt/format.h>

#include "core/check.h"
#include "core/errors.h"
#include "core/mutants.h"
#include "core/prng.h"
#include "core/rope_table.h"
#include "fakes/faults/faulty_kernels.h"
#include "fault_injection/plan/fault_plan.h"
#include "fault_injection/sim/checkers/attention_checker.h"
#include "fault_injection/sim/checkers/cache_coords.h"
#include "fault_injection/sim/checkers/check_failure.h"
#include "fault_injection/sim/checkers/data_checker.h"
#include "fault_injection/sim/checkers/log_checker.h"
#include "fault_injection/sim/checkers/record_checker.h"
#include "fault_injection/sim/checkers/shadow_cache_checker.h"
#include "fault_injection/sim/checkers/write_set_checker.h"
#include "fault_injection/sim/digest.h"
#include "fault_injection/sim/graph_mode.h"
#include "fault_injection/sim/layer_state.h"
#include "fault_injection/sim/oracle.h"
#include "fault_injection/sim/run_inputs.h"
#include "fault_injection/sim/sim_device.h"
#include "fault_injection/sim/workload.h"

namespace rcsim::sim {

std::string_view verdict_name(RunVerdict v) {
  switch (v) {
    case RunVerdict::kPass: return "pass";
    case RunVerdict::kCorrectness: return "correctness";
    case RunVerdict::kLiveness: return "liveness";
    case RunVerdict::kCrash: return "crash";
  }
  return "?";
}

namespace {

class Engine {
 public:
  explicit Engine(const SimConfig& cfg)
      : cfg_((validate_sim_config(cfg), cfg)),
        attn_(run_attention(cfg_)),
        plan_(parse_fault_plan(cfg_.faults)),
        device_(make_sim_device(cfg_.backend)),
        oracle_device_(cfg_.backend == "cpu" ? nullptr : make_cpu_sim_device()),
        rope_table_(build_cos_sin_table(attn_.max_position, attn_.rotary_dim, attn_.act_dtype,
                                        model_by_name(cfg_.model)->rope_theta,
                                        RopeTableMath::kFp32)),
        cos_sin_(device_->upload_new(rope_table_)),
        cos_sin_oracle_(oracle_device_ ? oracle_device_->upload_new(rope_table_) : nullptr),
        oracle_(oracle_dev(), attn_, fallback_order_of(cfg_.policy),
                (cos_sin_oracle_ ? cos_sin_oracle_ : cos_sin_)->view()),
        replayer_(*device_, attn_, fallback_order_of(cfg_.policy), cos_sin_->view()),
        graphs_(cfg_.graph_mode == GraphMode::kCaptureReplay) {
    for (int64_t l = 0; l < cfg_.layers; ++l) build_layer(l);
    start_process();
  }

  RunResult run(const RunHooks& hooks);

 private:
  struct LayerOutcome {
    bool aborted = false;
    bool fused = false;
    bool replayed_fallback = false;
  };

  // The CPU device the oracle runs on (the run's own device with --backend cpu).
  SimDevice& oracle_dev() { return oracle_device_ ? *oracle_device_ : *device_; }
  void release_host_views() {
    device_->release_host_views();
    if (oracle_device_) oracle_device_->release_host_views();
  }
  CheckContext context(int64_t layer) { return CheckContext{cfg_, attn_, result_, current_step_, layer}; }
  void build_layer(int64_t l);
  void start_process();
  void retire_device();
  void restart_process();
  void begin_liveness();
  void finish_liveness();
  bool faulty_call_allowed() const {
    if (in_liveness_) return false;
    return cfg_.faulty_calls_max < 0 || faulty_calls_made_ < cfg_.faulty_calls_max;
  }
  int64_t log_line_count() const { return static_cast<int64_t>(process_->log_lines().size()); }

  void run_step(int64_t s);
  void commit_step(const Step& step, const std::vector<bool>& fused_by_layer);
  void check_liveness(int64_t s, bool all_fused, bool evidence);
  LayerOutcome run_layer(const Step& step, int64_t l, LayerMode mode);
  void check_call_data(const Step& step, int64_t l, LayerState& layer, const StepInputs& in,
                       const RopeCacheResult& res, const TensorView& sut_qkv,
                       const FaultStats& before, const FaultStats& after);
  LayerOutcome surfaced(int64_t l, const DispatchError& e, const FaultStats& before,
                        int64_t log_before);
  void rollback_layer(const Step& step, int64_t l);
  void check_live_cache(int64_t s);
  void digest_record(const DispatchRecord& r);
  void digest_final_state();

  SimConfig cfg_;
  AttentionConfig attn_;
  FaultPlan plan_;
  std::unique_ptr<SimDevice> device_;         // the system under test's (--backend)
  std::unique_ptr<SimDevice> oracle_device_;  // CPU; null when device_ is the CPU already
  HostTensor rope_table_;
  DeviceTensor cos_sin_;
  DeviceTensor cos_sin_oracle_;
  Oracle oracle_;
  Oracle replayer_;  // graph replays: the recorded branch on the system under test's memory
  GraphCache graphs_;
  std::vector<LayerState> layers_;
  std::unique_ptr<DispatchProcess> process_;
  std::unique_ptr<FaultyKernelSet> faulty_;
  Scheduler* scheduler_ = nullptr;
  Digest digest_;
  RunResult result_;
  LogChecker log_checker_;
  int64_t faulty_calls_made_ = 0;
  int64_t current_step_ = 0;
  bool in_liveness_ = false;
  bool liveness_done_ = false;
  bool liveness_had_work_ = false;
  bool step_late_armed_ = false;
  bool late_restart_pending_ = false;
  // Per (request index, layer): which paths wrote its prefill and decode tokens.
  static constexpr uint8_t kPrefillFused = 1, kPrefillFallback = 2, kDecodeFused = 4,
                           kDecodeFallback = 8;
  std::map<int64_t, uint8_t> path_history_;
};

RunResult Engine::run(const RunHooks& hooks) {
  BlockManager blocks(cfg_.seed, attn_.num_blocks);
  SchedulerConfig sched_cfg;
  sched_cfg.token_budget = cfg_.token_budget;
  sched_cfg.block_size = cfg_.block_size;
  Scheduler scheduler(sched_cfg, run_requests(cfg_), blocks);
  scheduler_ = &scheduler;

  const int64_t total_steps = cfg_.steps + cfg_.liveness_steps;
  try {
    for (int64_t s = 0; s < total_steps; ++s) {
      in_liveness_ = s >= cfg_.steps;
      if (s == cfg_.steps) begin_liveness();
      run_step(s);
      result_.steps_run = s + 1;
      if (hooks.on_step) hooks.on_step(s + 1, total_steps, result_);
    }
    finish_liveness();
  } catch (const HazardStop& h) {
    result_.hazard = h.message;
  } catch (const CheckFailure& f) {
    result_.verdict = f.verdict;
    result_.failure = f.message;
    result_.failure_step = current_step_;
  } catch (const KernelError& e) {
    result_.verdict = RunVerdict::kCorrectness;
    result_.failure = fmt::format("step {}: a KernelError escaped the dispatcher: {}",
                                  current_step_, e.what());
    result_.failure_step = current_step_;
  } catch (const InvalidInput& e) {
    result_.verdict = RunVerdict::kCrash;
    result_.failure = fmt::format("step {}: unexpected InvalidInput: {}", current_step_, e.what());
    result_.failure_step = current_step_;
  }
  retire_device();
  for (const auto& [key, flags] : path_history_) {
    if ((flags & kPrefillFused) && (flags & kDecodeFallback)) {
      ++result_.mixed_prefill_fused_decode_fallback;
    }
    if ((flags & kPrefillFallback) && (flags & kDecodeFused)) {
      ++result_.mixed_prefill_fallback_decode_fused;
    }
  }
  digest_final_state();
  result_.digest = digest_.result();
  return result_;
}

void Engine::digest_final_state() {
  digest_.value(result_.graphs_captured);
  digest_.value(result_.graph_replays);
  for (const LayerState& layer : layers_) {
    const KvCacheViews c = layer.sut.host_views(*device_);
    const std::pair<CachePart, const TensorView*> parts[] = {{CachePart::kK, &c.k_cache},
                                                             {CachePart::kV, &c.v_cache},
                                                             {CachePart::kKScale, &c.k_scale},
                                                             {CachePart::kVScale, &c.v_scale}};
    for (const auto& [part, t] : parts) {
      digest_.elements(*t, cache_part_nan_rule(part, attn_.kv_cache_dtype));
    }
  }
  device_->release_host_views();
  digest_.value(result_.faults.injection_count_total());
  digest_.value(static_cast<int64_t>(result_.verdict));
}

void Engine::build_layer(int64_t l) {
  LayerState layer;
  layer.spec.attn = attn_;
  layer.spec.logic = DecisionLogic::kPr279;
  layer.spec.policy = cfg_.policy;
  layer.spec.layer_index = l;
  layer.spec.sliding_window = cfg_.sliding_window;
  const NormWeights w = norm_weights(cfg_, attn_.head_dim, l);
  layer.q_weight = device_->upload_new(w.q);
  layer.k_weight = device_->upload_new(w.k);
  if (oracle_device_) {
    layer.q_weight_oracle = oracle_device_->upload_new(w.q);
    layer.k_weight_oracle = oracle_device_->upload_new(w.k);
  }
  layer.sut = LayerCache(*device_, attn_);
  layer.expected = LayerCache(oracle_dev(), attn_);
  layer.scratch = LayerCache(oracle_dev(), attn_);
  layer.shadow = LayerCache(oracle_dev(), attn_);
  layers_.push_back(std::move(layer));
}

// A fresh simulated process: DispatchProcess, device (fault decorators) and dispatchers.
void Engine::start_process() {
  process_ = std::make_unique<DispatchProcess>();
  faulty_ = std::make_unique<FaultyKernelSet>(
      device_->kernels(), plan_,
      mix_seed(cfg_.seed, label_hash("device"), static_cast<uint64_t>(result_.process_restarts)));
  // Garbage / NaN payloads reach device memory through download-patch-upload hooks.
  if (DeviceMemoryAccess access = device_->memory_access(); access.download) {
    faulty_->set_device_memory_access(std::move(access));
  }
  faulty_->set_log_sink([this](std::string_view line) {
    // Only the rebuild fault logs through the sink (its own error line per attempt).
    digest_.text(line);
    ++result_.log_lines;
    ++result_.rebuild_log_lines;
  });
  for (LayerState& layer : layers_) {
    layer.faulty = std::make_unique<RopeCacheDispatcher>(layer.spec, faulty_->kernels(), *process_);
    layer.clean = std::make_unique<RopeCacheDispatcher>(layer.spec, device_->kernels(), *process_);
  }
  log_checker_.reset();
}

// Folds the current device's and process's counters into the result before they go away.
void Engine::retire_device() {
  if (!faulty_) return;
  result_.faults.merge(faulty_->stats());
  result_.rebuild_attempts_max_per_process =
      std::max(result_.rebuild_attempts_max_per_process, faulty_->stats().rebuild_attempts);
  result_.fused_rebuild_attempts_max_per_process =
      std::max(result_.fused_rebuild_attempts_max_per_process,
               faulty_->stats().injection_count(FaultSite::kFused, FaultKind::kRebuild));
  for (FailureClass c : kAllFailureClasses) {
    result_.fallbacks_by_class[static_cast<std::size_t>(c)] += process_->fallback_count(c);
  }
  const auto lines = process_->log_lines();
  for (const std::string& line : lines) digest_.text(line);
  result_.log_lines += static_cast<int64_t>(lines.size());
  faulty_.reset();
}

void Engine::restart_process() {
  retire_device();
  ++result_.process_restarts;
  result_.processes = result_.process_restarts + 1;
  // Captured graphs belong to the process (and its device): a fresh one captures anew.
  graphs_.reset();
  start_process();
}

void Engine::begin_liveness() {
  // Faults stop here. A poisoned device cannot serve at all: the liveness phase starts on a
  // fresh one (a restart), otherwise the same process continues (warn-once state kept).
  if (faulty_->device_poisoned() || !process_->device_healthy()) restart_process();
}

void Engine::finish_liveness() {
  if (liveness_done_) return;
  if (!liveness_had_work_) return;  // nothing was scheduled: no evidence either way
  if (process_->fused_disabled()) {
    result_.liveness_exempt = true;
    return;
  }
  fail(RunVerdict::kLiveness,
       fmt::format("liveness: the dispatcher did not return to the fused path within {} "
                   "fault-free steps (policy {})",
                   cfg_.liveness_steps, policy_name(cfg_.policy)));
}

void Engine::run_step(int64_t s) {
  current_step_ = s;
  const Step step = scheduler_->form_step(s);
  digest_.value(s);
  digest_.value(step.real_tokens);
  if (step.real_tokens == 0) return;
  const LayerMode mode = graphs_.begin_step(step);
  digest_.value(static_cast<int>(mode));
  if (in_liveness_ && mode != LayerMode::kReplay) liveness_had_work_ = true;
  step_late_armed_ = false;
  bool all_fused = true;
  bool evidence = false;  // a layer whose branch was decided now (not frozen in a graph)
  bool aborted = false;
  int64_t layers_touched = 0;
  std::vector<bool> fused_by_layer;
  for (int64_t l = 0; l < cfg_.layers && !aborted; ++l) {
    ++layers_touched;
    const LayerOutcome o = run_layer(step, l, mode);
    aborted = o.aborted;
    // A replayed fallback graph is frozen by design (issue 10 item 5): it is counted, and it
    // neither proves nor disproves that the dispatcher went back to the fused path.
    all_fused = all_fused && (o.fused || o.replayed_fallback);
    evidence = evidence || !o.replayed_fallback;
    fused_by_layer.push_back(o.fused);
  }
  if (in_liveness_ && mode == LayerMode::kReplay && evidence) liveness_had_work_ = true;
  graphs_.end_step(aborted, step_late_armed_, result_);
  if (!aborted && step_late_armed_) {
    // The device reports an asynchronous error at the end-of-step synchronisation at the
    // latest: the step's outputs are never returned, the step is retried on a fresh device.
    ++result_.steps_late_tainted;
    aborted = true;
    late_restart_pending_ = true;
  }
  if (aborted) {
    ++result_.steps_aborted;
    for (int64_t l = 0; l < layers_touched; ++l) rollback_layer(step, l);
    if (late_restart_pending_) {
      late_restart_pending_ = false;
      restart_process();
    }
    return;
  }
  commit_step(step, fused_by_layer);
  check_live_cache(s);
  check_liveness(s, all_fused, evidence);
}

void Engine::commit_step(const Step& step, const std::vector<bool>& fused_by_layer) {
  for (LayerState& layer : layers_) std::swap(layer.expected, layer.scratch);
  // Which path wrote each request's prefill and decode tokens, per layer (rows: decode first).
  for (int64_t i = 0; i < step.real_tokens; ++i) {
    const StepRow& row = step.rows[static_cast<std::size_t>(i)];
    const bool decode = i < step.decode_tokens;
    for (int64_t l = 0; l < cfg_.layers; ++l) {
      const bool fused = fused_by_layer[static_cast<std::size_t>(l)];
      path_history_[row.request * cfg_.layers + l] |=
          decode ? (fused ? kDecodeFused : kDecodeFallback)
                 : (fused ? kPrefillFused : kPrefillFallback);
    }
  }
  scheduler_->commit(step);
}

void Engine::check_liveness(int64_t s, bool all_fused, bool evidence) {
  if (in_liveness_ && !liveness_done_) {
    if (all_fused && evidence) {
      liveness_done_ = true;
      result_.liveness_steps_to_fused = s - cfg_.steps;
    }
  } else if (in_liveness_ && liveness_done_ && !all_fused && !process_->fused_disabled()) {
    fail(RunVerdict::kLiveness,
         fmt::format("step {}: left the fused path again without any fault", s));
  }
}

Engine::LayerOutcome Engine::run_layer(const Step& step, int64_t l, LayerMode mode) {
  LayerState& layer = layers_[static_cast<std::size_t>(l)];
  const StepInputs in =
      build_step_inputs(cfg_, attn_, *scheduler_, step, l, *device_, oracle_device_.get());
  const DeviceTensor sut_qkv = device_->upload_new(in.qkv);
  const RopeCacheInputs sut_in = make_dispatch_inputs(attn_, layer, cos_sin_->view(),
                                                      sut_qkv->view(), in, layer.sut, Side::kSut);
  // A replay runs no dispatcher code and no faulty kernel: faults are injected at capture and
  // in eager steps only (a fault inside a replay would be a device error, outside the model).
  const bool faulty = mode != LayerMode::kReplay && faulty_call_allowed();
  RopeCacheDispatcher& dispatcher = faulty ? *layer.faulty : *layer.clean;
  if (faulty) ++faulty_calls_made_;
  const FaultStats before = faulty_->stats();
  const int64_t log_before = log_line_count();
  ++result_.calls;
  std::optional<RopeCacheResult> res;
  if (mode == LayerMode::kReplay) {
    res = GraphCache::replay(*device_, replayer_, sut_in, graphs_.captured(l), result_);
  } else {
    try {
      ScopedMutant mutant(cfg_.mutant);
      res = dispatcher.rope_cache(sut_in);
    } catch (const DispatchError& e) {
      return surfaced(l, e, before, log_before);
    }
  }
  const FaultStats after = faulty_->stats();
  const int64_t injected = after.injection_count_total() - before.injection_count_total();
  if (after.late_armed > before.late_armed) step_late_armed_ = true;
  const DispatchRecord& rec = res->record;
  digest_record(rec);
  if (mode == LayerMode::kReplay) {
    // No dispatcher ran: no new record, no log line may appear.
    const int64_t delta = log_line_count() - log_before;
    if (delta != 0 || injected != 0) {
      fail(RunVerdict::kCorrectness,
           fmt::format("step {} layer {}: a graph replay logged {} lines / injected {} faults",
                       step.index, l, delta, injected));
    }
  } else {
    check_record(context(l), rec, injected, process_->fused_disabled());
    log_checker_.check_call(context(l), rec, log_line_count() - log_before);
    if (rec.fused_attempted) ++result_.fused_attempts;
    if (rec.restored) ++result_.restores;
    if (mode == LayerMode::kCapture) graphs_.record(rec);
  }
  if (rec.branch == Branch::kFused) ++result_.calls_fused;
  if (rec.branch != Branch::kFused) ++result_.fallbacks;
  const bool replayed_fallback = mode == LayerMode::kReplay && rec.branch != Branch::kFused;
  if (replayed_fallback) ++result_.graph_replayed_fallback_layers;
  const LayerOutcome outcome{false, rec.branch == Branch::kFused, replayed_fallback};
  check_call_data(step, l, layer, in, *res, sut_qkv->view(), before, after);
  return outcome;
}

// The expected and shadow runs of one call, then the data and attention checks against them. A
// late fault armed in this step explains a mismatch: the step will be aborted at the step-end
// sync, so nothing wrong is ever returned.
void Engine::check_call_data(const Step& step, int64_t l, LayerState& layer, const StepInputs& in,
                             const RopeCacheResult& res, const TensorView& sut_qkv,
                             const FaultStats& before, const FaultStats& after) {
  const DispatchRecord& rec = res.record;
  const OracleRun expected = oracle_.expected(layer, in, rec);
  const OracleRun shadow = oracle_.shadow(layer, in);
  SimDevice& dev = *device_;
  SimDevice& ref = oracle_dev();
  CallData data;
  data.q_returned = dev.host_view(res.q);
  data.k_returned = dev.host_view(res.k);
  data.v_returned = dev.host_view(res.v);
  data.q_expected = ref.host_view(expected.inputs.q);
  data.k_expected = ref.host_view(expected.inputs.k);
  data.qkv_original = in.qkv.view();
  data.qkv_after = dev.host_view(sut_qkv);
  data.cache_got = layer.sut.host_views(dev);
  data.cache_expected = layer.scratch.host_views(ref);
  const std::vector<std::string> problems = data_problems(attn_, data, rec.v_cache_layout);
  if (!problems.empty()) {
    // RCSIM_DIGEST_DUMP: the returned qkv and the caches of a call that failed its data checks
    // (not hashed), to compare two backends' replays where the run ends before the digest sees them.
    Digest::dump_only("problem_qkv_after", data.qkv_after);
    Digest::dump_only("problem_v_cache", data.cache_got.v_cache);
    Digest::dump_only("problem_v_scale", data.cache_got.v_scale);
    Digest::dump_only("problem_slots", in.slots.view());
    release_host_views();
    if (step_late_armed_) return;
    judge_data_problems(context(l), rec, problems, before, after);
  }
  result_.checks_passed += 5;
  // q and k are computed (NaNs canonicalised, core/nan_class.h); V is the input, bit for bit.
  const QkvViews qkv_after = split_qkv(data.qkv_after, attn_.num_heads_q, attn_.num_heads_kv,
                                       attn_.head_dim);
  digest_.elements(qkv_after.q, NanRule::kNanClass);
  digest_.elements(qkv_after.k, NanRule::kNanClass);
  digest_.elements(qkv_after.v, NanRule::kBitExact);
  AttentionInputs attention;
  attention.q_sut = data.q_returned;
  attention.q_expected = data.q_expected;
  attention.q_shadow = ref.host_view(shadow.inputs.q);
  attention.cache_sut = data.cache_got;
  attention.cache_expected = data.cache_expected;
  attention.cache_shadow = layer.shadow.host_views(ref);
  attention.written_v_layout = rec.v_cache_layout;
  check_attention(context(l), step, scheduler_->requests(), attention, digest_);
  release_host_views();
}

Engine::LayerOutcome Engine::surfaced(int64_t l, const DispatchError& e, const FaultStats& before,
                                      int64_t log_before) {
  const FaultStats& after = faulty_->stats();
  const int64_t injected = after.injection_count_total() - before.injection_count_total();
  digest_record(e.record());
  digest_.text(e.what());
  if (e.record().fused_attempted) ++result_.fused_attempts;
  ++result_.surfaced_errors;
  ++result_.surfaced_by_class[static_cast<std::size_t>(e.failure_class())];
  // Surfacing is correct only for an injected fault; an untagged error is a real bug, and the
  // fault-free liveness phase has no business failing at all.
  if (!e.injected() || injected == 0 || in_liveness_) {
    fail(RunVerdict::kCorrectness,
         fmt::format("step {} layer {}: DispatchError without an injected fault in this call: {}",
                     current_step_, l, e.what()));
  }
  // A sticky fused failure ends the call: no fallback kernel may have been called since (on the
  // poisoned device it would fail with the same class, so the class alone proves nothing) and
  // the process counts no fallback for it.
  if (e.record().failure == FailureClass::kStickyDevice) {
    int64_t fallback_calls = 0;
    for (FaultSite s : {FaultSite::kRopeCache, FaultSite::kFallbackRope, FaultSite::kFallbackNorm,
                        FaultSite::kFallbackCache}) {
      fallback_calls += after.call_count(s) - before.call_count(s);
    }
    const int64_t sticky_fallbacks = process_->fallback_count(FailureClass::kStickyDevice);
    if (fallback_calls != 0 || sticky_fallbacks != 0) {
      fail(RunVerdict::kCorrectness,
           fmt::format("step {} layer {}: a sticky device error surfaced after {} fallback kernel "
                       "call(s) and {} counted sticky fallback(s); it must end the call: {}",
                       current_step_, l, fallback_calls, sticky_fallbacks, e.what()));
    }
  }
  log_checker_.check_surfaced(context(l), e.record(), log_line_count() - log_before);
  result_.checks_passed += 2;
  if (faulty_->device_poisoned() || !process_->device_healthy() ||
      e.failure_class() == FailureClass::kStickyDevice) {
    late_restart_pending_ = true;
  }
  return {true, false, false};
}

// The step was aborted: nothing outside its write set may have changed in layer l's cache;
// then the engine puts the committed state back (the step is retried later).
void Engine::rollback_layer(const Step& step, int64_t l) {
  LayerState& layer = layers_[static_cast<std::size_t>(l)];
  check_write_set(context(l), step, layer.sut.host_views(*device_),
                  layer.expected.host_views(oracle_dev()));
  release_host_views();
  layer.sut.copy_across(*device_, oracle_dev(), layer.expected);
}

void Engine::check_live_cache(int64_t s) {
  std::vector<LayerCachePair> caches;
  caches.reserve(layers_.size());
  for (const LayerState& layer : layers_) {
    caches.push_back({layer.sut.host_views(*device_), layer.shadow.host_views(oracle_dev())});
  }
  CheckContext ctx = context(0);
  ctx.step = s;
  check_live_cache_vs_shadow(ctx, caches, scheduler_->requests());
  release_host_views();
}

void Engine::digest_record(const DispatchRecord& r) {
  digest_.value(r.branch);
  digest_.value(r.fused_attempted);
  digest_.value(r.fused_skipped_by_policy);
  digest_.value(r.failure ? static_cast<int>(*r.failure) + 1 : 0);
  digest_.value(r.failure_injected);
  digest_.value(r.backup_taken);
  digest_.value(r.backup_bytes);
  digest_.value(r.restored);
  digest_.value(r.warning_logged);
  digest_.value(r.error_logged);
}

}  // namespace

RunResult run_simulation(const SimConfig& cfg, const RunHooks& hooks) {
  Engine engine(cfg);
  return engine.run(hooks);
}

}  // namespace rcsim::sim
