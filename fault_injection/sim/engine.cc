#include "fault_injection/sim/engine.h"

#include <cmath>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <set>

#include <fmt/format.h>

#include "core/check.h"
#include "core/errors.h"
#include "core/mutants.h"
#include "core/prng.h"
#include "fakes/faults/faulty_kernels.h"
#include "fault_injection/sim/attention_read.h"
#include "fault_injection/sim/digest.h"
#include "fault_injection/sim/workload.h"
#include "kernels/common/cache_layout.h"
#include "kernels/common/numeric.h"
#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/nonfused_reference.h"

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

// Thrown inside the engine when a check fails; caught once in run_simulation.
struct CheckFailure {
  RunVerdict verdict;
  std::string message;
};

// Thrown when a documented policy weakness shows; the run stops and reports it.
struct HazardStop {
  std::string message;
};

[[noreturn]] void fail(RunVerdict verdict, std::string message) {
  throw CheckFailure{verdict, std::move(message)};
}

// The KV cache of one layer: K x-packed, V under a 4-D [NB, Hkv, D, BS] label (the fused kernel
// writes shuffle memory order through it, as ATOM passes it), per-token scales when fp8.
struct LayerCache {
  HostTensor k, v, k_scale, v_scale;

  LayerCache() = default;
  explicit LayerCache(const AttentionConfig& a) {
    const int64_t x = a.x();
    const DType cdt = a.cache_storage_dtype();
    k = HostTensor(cdt, {a.num_blocks, a.num_heads_kv, a.head_dim / x, a.block_size, x});
    v = HostTensor(cdt, {a.num_blocks, a.num_heads_kv, a.head_dim, a.block_size});
    // Sentinel: every byte of memory no slot was written to must still hold it at the end.
    k.fill_pattern(0xA5);
    v.fill_pattern(0x5A);
    if (is_fp8(a.kv_cache_dtype)) {
      k_scale = HostTensor(DType::kFP32, {a.num_blocks, a.num_heads_kv, a.block_size});
      v_scale = HostTensor(DType::kFP32, {a.num_blocks, a.num_heads_kv, a.block_size});
      k_scale.fill_pattern(0xC3);
      v_scale.fill_pattern(0x3C);
    }
  }
  KvCacheViews views() const {
    KvCacheViews out{k.view(), v.view(), {}, {}};
    if (!k_scale.empty()) {
      out.k_scale = k_scale.view();
      out.v_scale = v_scale.view();
    }
    return out;
  }
};

// What a cache element index belongs to, for failure messages and write-set checks.
struct CacheCoord {
  int64_t block, head, token, dim;
};
enum class CachePart : uint8_t { kK, kV, kKScale, kVScale };
std::string_view part_name(CachePart p) {
  switch (p) {
    case CachePart::kK: return "k_cache";
    case CachePart::kV: return "v_cache";
    case CachePart::kKScale: return "k_scale";
    case CachePart::kVScale: return "v_scale";
  }
  return "?";
}

CacheCoord unravel(const AttentionConfig& a, CachePart part, VCacheLayout v_layout, int64_t e) {
  const int64_t h = a.num_heads_kv, d = a.head_dim, bs = a.block_size, x = a.x();
  CacheCoord c{};
  switch (part) {
    case CachePart::kK: {  // [NB, H, D/x, BS, x]
      const int64_t xi = e % x;
      e /= x;
      c.token = e % bs;
      e /= bs;
      const int64_t dx = e % (d / x);
      e /= d / x;
      c.head = e % h;
      c.block = e / h;
      c.dim = dx * x + xi;
      break;
    }
    case CachePart::kV:
      if (v_layout == VCacheLayout::kShuffle) {  // [NB, H, BS/x, D, x]
        const int64_t xi = e % x;
        e /= x;
        c.dim = e % d;
        e /= d;
        const int64_t tx = e % (bs / x);
        e /= bs / x;
        c.head = e % h;
        c.block = e / h;
        c.token = tx * x + xi;
      } else {  // [NB, H, D, BS]
        c.token = e % bs;
        e /= bs;
        c.dim = e % d;
        e /= d;
        c.head = e % h;
        c.block = e / h;
      }
      break;
    case CachePart::kKScale:
    case CachePart::kVScale:  // [NB, H, BS]
      c.token = e % bs;
      e /= bs;
      c.head = e % h;
      c.block = e / h;
      c.dim = -1;
      break;
  }
  return c;
}

// First differing element of two same-shape tensors, in element units; -1 if equal.
int64_t first_difference(const HostTensor& a, const HostTensor& b, int64_t from = 0) {
  const int64_t esize = dtype_size_bytes(a.dtype());
  const auto* pa = reinterpret_cast<const unsigned char*>(a.data());
  const auto* pb = reinterpret_cast<const unsigned char*>(b.data());
  const int64_t n = a.numel();
  // Fast path: memcmp of the remaining bytes, then locate.
  if (std::memcmp(pa + from * esize, pb + from * esize,
                  static_cast<std::size_t>((n - from) * esize)) == 0) {
    return -1;
  }
  for (int64_t i = from; i < n; ++i) {
    if (std::memcmp(pa + i * esize, pb + i * esize, static_cast<std::size_t>(esize)) != 0) return i;
  }
  return -1;
}

uint64_t element_bits(const HostTensor& t, int64_t i) {
  uint64_t bits = 0;
  const int64_t esize = dtype_size_bytes(t.dtype());
  std::memcpy(&bits, t.data() + i * esize, static_cast<std::size_t>(esize));
  return bits;
}

// Compares two [T, H, D] views of 16-bit elements bit for bit; returns the first mismatch.
std::optional<std::string> compare_heads(const TensorView& got, const TensorView& want,
                                         std::string_view what) {
  RCSIM_ASSERT(got.rank == 3 && want.rank == 3, "compare_heads ranks");
  if (got.size(0) != want.size(0) || got.size(1) != want.size(1) || got.size(2) != want.size(2)) {
    return fmt::format("{}: shape {} but expected {}", what, got.describe(), want.describe());
  }
  const auto* pg = got.data_as<const uint16_t>();
  const auto* pw = want.data_as<const uint16_t>();
  for (int64_t t = 0; t < got.size(0); ++t) {
    for (int64_t h = 0; h < got.size(1); ++h) {
      for (int64_t d = 0; d < got.size(2); ++d) {
        const uint16_t g = pg[t * got.stride(0) + h * got.stride(1) + d * got.stride(2)];
        const uint16_t w = pw[t * want.stride(0) + h * want.stride(1) + d * want.stride(2)];
        if (g != w) {
          return fmt::format("{} differs at (token {}, head {}, dim {}): got 0x{:04x} expected 0x{:04x}",
                             what, t, h, d, g, w);
        }
      }
    }
  }
  return std::nullopt;
}

TensorView row_view(const TensorView& heads, int64_t token) {
  // [T, H, D] -> [H, D] of one token.
  TensorView v = heads;
  v.rank = 2;
  v.shape = {heads.size(1), heads.size(2), 0, 0, 0, 0};
  v.strides = {heads.stride(1), heads.stride(2), 0, 0, 0, 0};
  v.offset = heads.offset + token * heads.stride(0);
  return v;
}

bool policy_backs_up(FallbackPolicy p) { return p != FallbackPolicy::kOutOfPlace; }

class Engine {
 public:
  explicit Engine(const SimConfig& cfg) : cfg_(cfg) {
    validate_sim_config(cfg_);
    const ModelShape* model = model_by_name(cfg_.model);
    attn_.num_heads_q = model->num_heads_q;
    attn_.num_heads_kv = model->num_heads_kv;
    attn_.head_dim = model->head_dim;
    attn_.rotary_dim = model->head_dim;
    attn_.is_neox = true;
    attn_.eps = 1e-6f;
    attn_.act_dtype = DType::kBF16;
    attn_.kv_cache_dtype = cfg_.kv_cache_dtype;
    attn_.block_size = cfg_.block_size;
    attn_.num_blocks = cfg_.num_blocks + kLivenessRequests * pages_per_request();
    attn_.max_position = cfg_.max_position;
    validate_attention_config(attn_);
    plan_ = parse_fault_plan(cfg_.faults);
    build_rope_table(model->rope_theta);
    for (int64_t l = 0; l < cfg_.layers; ++l) build_layer(l);
    start_process();
  }

  RunResult run(const RunHooks& hooks) {
    BlockManager blocks(cfg_.seed, attn_.num_blocks);
    WorkloadShape shape;
    shape.requests = cfg_.requests;
    shape.prompt_tokens_max = cfg_.prompt_tokens_max;
    shape.output_tokens_max = cfg_.output_tokens_max;
    shape.arrival_spread_steps = std::max<int64_t>(1, cfg_.steps / 2);
    std::vector<Request> requests = generate_requests(cfg_.seed, shape);
    // The liveness phase needs work: a few requests arrive when the faults stop.
    WorkloadShape live_shape = shape;
    live_shape.requests = kLivenessRequests;
    live_shape.arrival_spread_steps = 1;
    std::vector<Request> live = generate_requests(mix_seed(cfg_.seed, 1), live_shape);
    for (Request& r : live) {
      r.id += cfg_.requests;
      r.arrival_step = cfg_.steps;
      requests.push_back(r);
    }
    SchedulerConfig sched_cfg;
    sched_cfg.token_budget = cfg_.token_budget;
    sched_cfg.block_size = cfg_.block_size;
    Scheduler scheduler(sched_cfg, std::move(requests), blocks);
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
    digest_.value(result_.graphs_captured);
    digest_.value(result_.graph_replays);
    for (int64_t l = 0; l < cfg_.layers; ++l) {
      const LayerCache& c = layers_[static_cast<std::size_t>(l)].sut;
      digest_.bytes(c.k.data(), static_cast<std::size_t>(c.k.bytes()));
      digest_.bytes(c.v.data(), static_cast<std::size_t>(c.v.bytes()));
      if (!c.k_scale.empty()) {
        digest_.bytes(c.k_scale.data(), static_cast<std::size_t>(c.k_scale.bytes()));
        digest_.bytes(c.v_scale.data(), static_cast<std::size_t>(c.v_scale.bytes()));
      }
    }
    digest_.value(result_.faults.injection_count_total());
    digest_.value(static_cast<int64_t>(result_.verdict));
    result_.digest = digest_.result();
    return result_;
  }

 private:
  static constexpr int64_t kLivenessRequests = 2;
  enum class LayerMode : uint8_t { kEager, kCapture, kReplay };

  struct Layer {
    LayerSpec spec;
    HostTensor q_weight, k_weight;
    LayerCache sut;       // what the system under test wrote
    LayerCache expected;  // committed expected state (end of the last completed step)
    LayerCache scratch;   // expected state of the step in flight
    LayerCache shadow;    // fault-free all-fused run
    std::unique_ptr<RopeCacheDispatcher> faulty;
    std::unique_ptr<RopeCacheDispatcher> clean;
  };

  int64_t pages_per_request() const {
    return (cfg_.prompt_tokens_max + cfg_.output_tokens_max + cfg_.block_size - 1) /
           cfg_.block_size;
  }

  void build_rope_table(double theta) {
    const int64_t half = attn_.rotary_dim / 2;
    cos_sin_ = HostTensor(DType::kBF16, {attn_.max_position, attn_.rotary_dim});
    auto out = cos_sin_.as<uint16_t>();
    for (int64_t p = 0; p < attn_.max_position; ++p) {
      for (int64_t j = 0; j < half; ++j) {
        // inv_freq and freqs in fp32, cos/sin then rounded to bf16 (semantics.md 1.1).
        const auto inv_freq = static_cast<float>(
            1.0 / std::pow(theta, static_cast<double>(2 * j) / static_cast<double>(attn_.rotary_dim)));
        const float freq = static_cast<float>(p) * inv_freq;
        out[static_cast<std::size_t>(p * attn_.rotary_dim + j)] = numeric::float_to_bf16_bits(std::cos(freq));
        out[static_cast<std::size_t>(p * attn_.rotary_dim + half + j)] =
            numeric::float_to_bf16_bits(std::sin(freq));
      }
    }
  }

  void build_layer(int64_t l) {
    Layer layer;
    layer.spec.attn = attn_;
    layer.spec.logic = DecisionLogic::kPr279;
    layer.spec.policy = cfg_.policy;
    layer.spec.layer_index = l;
    layer.spec.sliding_window = cfg_.sliding_window;
    const int64_t d = attn_.head_dim;
    layer.q_weight = HostTensor(DType::kBF16, {d});
    layer.k_weight = HostTensor(DType::kBF16, {d});
    Prng rng = Prng::stream(cfg_.seed, "norm-weights", l);
    for (HostTensor* w : {&layer.q_weight, &layer.k_weight}) {
      auto bits = w->as<uint16_t>();
      for (int64_t i = 0; i < d; ++i) {
        // Trained-checkpoint-like positive weights; asymmetric across NeoX pairs unless asked.
        const bool mirror = cfg_.symmetric_weights && i >= d / 2;
        bits[static_cast<std::size_t>(i)] =
            mirror ? bits[static_cast<std::size_t>(i - d / 2)]
                   : numeric::float_to_bf16_bits(0.5f + rng.unit_float());
      }
    }
    layer.sut = LayerCache(attn_);
    layer.expected = LayerCache(attn_);
    layer.scratch = LayerCache(attn_);
    layer.shadow = LayerCache(attn_);
    layers_.push_back(std::move(layer));
  }

  // A fresh simulated process: DispatchProcess, device (fault decorators) and dispatchers.
  void start_process() {
    process_ = std::make_unique<DispatchProcess>();
    faulty_ = std::make_unique<FaultyKernelSet>(backend_.kernels(), plan_,
                                                mix_seed(cfg_.seed, label_hash("device"),
                                                         static_cast<uint64_t>(result_.process_restarts)));
    faulty_->set_log_sink([this](std::string_view line) {
      // Only the rebuild fault logs through the sink (its own error line per attempt).
      digest_.text(line);
      ++result_.log_lines;
      ++result_.rebuild_log_lines;
    });
    for (Layer& layer : layers_) {
      layer.faulty = std::make_unique<RopeCacheDispatcher>(layer.spec, faulty_->kernels(), *process_);
      layer.clean = std::make_unique<RopeCacheDispatcher>(layer.spec, backend_.kernels(), *process_);
    }
    warnings_by_class_.fill(0);
  }

  // Folds the current device's and process's counters into the result before they go away.
  void retire_device() {
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

  void restart_process() {
    retire_device();
    ++result_.process_restarts;
    result_.processes = result_.process_restarts + 1;
    // Captured graphs belong to the process (and its device): a fresh one captures anew.
    graphs_.clear();
    retry_eagerly_ = false;
    start_process();
  }

  void begin_liveness() {
    // Faults stop here. A poisoned device cannot serve at all: the liveness phase starts on a
    // fresh one (a restart), otherwise the same process continues (warn-once state kept).
    if (faulty_->device_poisoned() || !process_->device_healthy()) restart_process();
  }

  void finish_liveness() {
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

  bool faulty_call_allowed() const {
    if (in_liveness_) return false;
    return cfg_.faulty_calls_max < 0 || faulty_calls_made_ < cfg_.faulty_calls_max;
  }

  // ---- one step ----------------------------------------------------------------------------
  struct StepInputs {
    HostTensor qkv, positions, slots;
  };

  StepInputs build_inputs(const Step& step, int64_t layer) const {
    const int64_t t = static_cast<int64_t>(step.rows.size());
    const int64_t width = attn_.qkv_width();
    StepInputs in{HostTensor(DType::kBF16, {t, width}), HostTensor(DType::kI64, {t}),
                  HostTensor(DType::kI64, {t})};
    auto qkv = in.qkv.as<uint16_t>();
    auto pos = in.positions.as<int64_t>();
    auto slot = in.slots.as<int64_t>();
    const auto& reqs = scheduler_->requests();
    for (int64_t i = 0; i < t; ++i) {
      const StepRow& row = step.rows[static_cast<std::size_t>(i)];
      // Inputs depend on (seed, request, position, layer) only, so a retried step or a shadow
      // run sees the same bytes. Padding rows get their own non-zero values and a stale but
      // in-range position, as CUDA-graph buffers do.
      Prng rng = row.request >= 0
                     ? Prng::stream(cfg_.seed, "qkv", reqs[static_cast<std::size_t>(row.request)].id,
                                    row.position, layer)
                     : Prng::stream(cfg_.seed, "pad", step.index, i, layer);
      pos[static_cast<std::size_t>(i)] =
          row.request >= 0 ? row.position : static_cast<int64_t>(rng.below(static_cast<uint64_t>(attn_.max_position)));
      slot[static_cast<std::size_t>(i)] = row.slot;
      for (int64_t e = 0; e < width; ++e) {
        qkv[static_cast<std::size_t>(i * width + e)] =
            numeric::float_to_bf16_bits(rng.nonzero_float(0.0625f, 2.0f));
      }
    }
    return in;
  }

  RopeCacheInputs dispatch_inputs(const Layer& layer, const HostTensor& qkv, const StepInputs& in,
                                  const LayerCache& cache) const {
    RopeCacheInputs r;
    r.qkv = qkv.view();
    const QkvViews v = split_qkv(r.qkv, attn_.num_heads_q, attn_.num_heads_kv, attn_.head_dim);
    r.q = v.q;
    r.k = v.k;
    r.v = v.v;
    r.positions = in.positions.view();
    r.slot_mapping = in.slots.view();
    r.cos_sin_cache = cos_sin_.view();
    r.q_weight = layer.q_weight.view();
    r.k_weight = layer.k_weight.view();
    r.cache = cache.views();
    return r;
  }

  void run_step(int64_t s) {
    current_step_ = s;
    const Step step = scheduler_->form_step(s);
    digest_.value(s);
    digest_.value(step.real_tokens);
    if (step.real_tokens == 0) return;
    // Graph mode: a decode-only step is a CUDA graph of its padded bucket size. The first
    // sighting captures; a bucket whose capture failed is retried eagerly once, then recaptured.
    LayerMode mode = LayerMode::kEager;
    const auto bucket = static_cast<int64_t>(step.rows.size());
    const std::vector<DispatchRecord>* graph = nullptr;
    if (cfg_.graph_mode == GraphMode::kCaptureReplay && step.prefill_tokens == 0) {
      if (retry_eagerly_) {
        retry_eagerly_ = false;
      } else if (const auto it = graphs_.find(bucket); it != graphs_.end()) {
        mode = LayerMode::kReplay;
        graph = &it->second;
      } else {
        mode = LayerMode::kCapture;
        capture_pending_.clear();
      }
    }
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
      const LayerOutcome o =
          run_layer(step, l, mode, graph ? &(*graph)[static_cast<std::size_t>(l)] : nullptr);
      aborted = o.aborted;
      // A replayed fallback graph is frozen by design (issue 10 item 5): it is counted, and it
      // neither proves nor disproves that the dispatcher went back to the fused path.
      all_fused = all_fused && (o.fused || o.replayed_fallback);
      evidence = evidence || !o.replayed_fallback;
      fused_by_layer.push_back(o.fused);
    }
    if (in_liveness_ && mode == LayerMode::kReplay && evidence) liveness_had_work_ = true;
    if (mode == LayerMode::kCapture) {
      // A capture whose step did not complete (surfaced error, late error at the sync) leaves
      // no graph: the step is retried eagerly and the bucket captured again at a later sighting.
      if (aborted || step_late_armed_) {
        ++result_.graph_capture_failures;
        retry_eagerly_ = true;
      } else {
        graphs_[bucket] = capture_pending_;
        ++result_.graphs_captured;
      }
    } else if (mode == LayerMode::kReplay && !aborted) {
      ++result_.graph_replays;
    }
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
    for (Layer& layer : layers_) std::swap(layer.expected, layer.scratch);
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
    check_live_cache_vs_shadow(s);
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

  struct LayerOutcome {
    bool aborted = false;
    bool fused = false;
    bool replayed_fallback = false;
  };

  LayerOutcome run_layer(const Step& step, int64_t l, LayerMode mode,
                         const DispatchRecord* captured) {
    Layer& layer = layers_[static_cast<std::size_t>(l)];
    const StepInputs in = build_inputs(step, l);
    HostTensor sut_qkv = in.qkv;
    // A replay runs no dispatcher code and no faulty kernel: faults are injected at capture and
    // in eager steps only (a fault inside a replay would be a device error, outside the model).
    const bool faulty = mode != LayerMode::kReplay && faulty_call_allowed();
    RopeCacheDispatcher& dispatcher = faulty ? *layer.faulty : *layer.clean;
    if (faulty) ++faulty_calls_made_;
    const FaultStats before = faulty_->stats();
    const int64_t log_before = static_cast<int64_t>(process_->log_lines().size());
    ++result_.calls;
    std::optional<RopeCacheResult> res;
    if (mode == LayerMode::kReplay) {
      RCSIM_ASSERT(captured != nullptr, "replay without a captured record");
      res = replay_layer(layer, in, sut_qkv, *captured);
    } else {
      try {
        ScopedMutant mutant(cfg_.mutant);
        res = dispatcher.rope_cache(dispatch_inputs(layer, sut_qkv, in, layer.sut));
      } catch (const DispatchError& e) {
        return surfaced(step, l, e, before, log_before);
      }
    }
    const FaultStats after = faulty_->stats();
    const int64_t injected = after.injection_count_total() - before.injection_count_total();
    const bool late_armed_now = after.late_armed > before.late_armed;
    if (late_armed_now) step_late_armed_ = true;
    const DispatchRecord& rec = res->record;
    digest_record(rec);
    if (mode == LayerMode::kReplay) {
      // No dispatcher ran: no new record, no log line may appear.
      const int64_t delta = static_cast<int64_t>(process_->log_lines().size()) - log_before;
      if (delta != 0 || injected != 0) {
        fail(RunVerdict::kCorrectness,
             fmt::format("step {} layer {}: a graph replay logged {} lines / injected {} faults",
                         step.index, l, delta, injected));
      }
    } else {
      check_record(step, l, rec, injected);
      check_log(step, l, rec, log_before);
      if (rec.fused_attempted) ++result_.fused_attempts;
      if (rec.restored) ++result_.restores;
      if (mode == LayerMode::kCapture) capture_pending_.push_back(rec);
    }
    if (rec.branch == Branch::kFused) ++result_.calls_fused;
    if (rec.branch != Branch::kFused) ++result_.fallbacks;
    const bool replayed_fallback = mode == LayerMode::kReplay && rec.branch != Branch::kFused;
    if (replayed_fallback) ++result_.graph_replayed_fallback_layers;

    // Expected state: the branch the dispatcher reports, fault-free, on clean kernels.
    copy_cache(layer.expected, layer.scratch);
    HostTensor exp_qkv = in.qkv;
    const RopeCacheInputs exp_in = dispatch_inputs(layer, exp_qkv, in, layer.scratch);
    const VCacheLayout fallback_v_layout =
        layer.spec.use_triton_attn() ? VCacheLayout::kPlain : VCacheLayout::kShuffle;
    VCacheLayout written_v_layout = VCacheLayout::kShuffle;
    if (rec.branch == Branch::kFused) {
      run_fused(exp_in);
    } else {
      written_v_layout = fallback_v_layout;
      run_fallback(exp_in, fallback_v_layout);
    }
    // Shadow: the fault-free run takes the fused path every time.
    HostTensor shadow_qkv = in.qkv;
    const RopeCacheInputs shadow_in = dispatch_inputs(layer, shadow_qkv, in, layer.shadow);
    run_fused(shadow_in);

    // Data checks. A late fault armed in this step explains a mismatch: the step will be
    // aborted at the step-end sync, so nothing wrong is ever returned.
    std::vector<std::string> problems;
    if (auto m = compare_heads(res->q, exp_in.q, "q")) problems.push_back(*m);
    if (auto m = compare_heads(res->k, exp_in.k, "k")) problems.push_back(*m);
    const QkvViews original = split_qkv(in.qkv.view(), attn_.num_heads_q, attn_.num_heads_kv,
                                        attn_.head_dim);
    if (auto m = compare_heads(res->v, original.v, "v (returned)")) problems.push_back(*m);
    const QkvViews sut_views = split_qkv(sut_qkv.view(), attn_.num_heads_q, attn_.num_heads_kv,
                                         attn_.head_dim);
    if (auto m = compare_heads(sut_views.v, original.v, "V region of qkv (must stay untouched)")) {
      problems.push_back(*m);
    }
    if (auto m = compare_cache(layer.sut, layer.scratch, written_v_layout)) problems.push_back(*m);
    if (!problems.empty()) {
      if (step_late_armed_) return {false, rec.branch == Branch::kFused, replayed_fallback};
      const int64_t scribbles =
          after.injection_count(FaultSite::kFused, FaultKind::kGarbage) +
          after.injection_count(FaultSite::kFused, FaultKind::kNan) -
          before.injection_count(FaultSite::kFused, FaultKind::kGarbage) -
          before.injection_count(FaultSite::kFused, FaultKind::kNan);
      if (scribbles > 0 && rec.failure && (cfg_.policy == FallbackPolicy::kQkSliceBackup ||
                                           cfg_.policy == FallbackPolicy::kOutOfPlace)) {
        // These policies rest on "the fused kernel writes only q/k (or only its scratch)"; a
        // kernel that scribbles over the rest of its footprint breaks that promise. Shown, not
        // failed: it is the policy matrix's finding, not a bug in the code under test.
        throw HazardStop{fmt::format(
            "step {} layer {}: policy {} left corrupted data after a {} fault at the fused kernel: "
            "{}",
            step.index, l, policy_name(cfg_.policy),
            after.injection_count(FaultSite::kFused, FaultKind::kGarbage) >
                    before.injection_count(FaultSite::kFused, FaultKind::kGarbage)
                ? "garbage"
                : "nan",
            problems.front())};
      }
      fail(RunVerdict::kCorrectness,
           fmt::format("step {} layer {}: branch {} (policy {}, failure {}): {}", step.index, l,
                       branch_name(rec.branch), policy_name(cfg_.policy),
                       rec.failure ? failure_class_name(*rec.failure) : "none", problems.front()));
    }
    result_.checks_passed += 5;
    digest_.bytes(sut_qkv.data(), static_cast<std::size_t>(sut_qkv.bytes()));
    attention_checks(step, l, *res, exp_in, shadow_in, written_v_layout);
    return {false, rec.branch == Branch::kFused, replayed_fallback};
  }

  // The non-fused composition C in the policy's order (the fallback's kernels).
  void run_fallback(const RopeCacheInputs& in, VCacheLayout v_layout) {
    cpu::NonFusedArgs n;
    n.cfg = attn_;
    n.q = in.q;
    n.k = in.k;
    n.v = in.v;
    n.q_weight = in.q_weight;
    n.k_weight = in.k_weight;
    n.cos_sin_cache = in.cos_sin_cache;
    n.positions = in.positions;
    n.slot_mapping = in.slot_mapping;
    n.cache = in.cache;
    n.v_layout = v_layout;
    const cpu::NonFusedOrder order = fallback_order_of(cfg_.policy) == FallbackOrder::kRopeThenNorm
                                         ? cpu::NonFusedOrder::kRopeThenNorm
                                         : cpu::NonFusedOrder::kNormThenRope;
    cpu::run_nonfused(backend_.kernels(), order, n);
  }

  // A replayed graph re-runs what its capture recorded, with today's inputs: the policy's qkv
  // backup copy when the capture took one (the clone is a captured memcpy: it runs in every
  // replay, even though no failure can be caught any more), the restore copy when the capture
  // restored, then the recorded branch's kernels. The failed fused launch itself was never
  // recorded. The backup is really copied (and the restore copies it back) so a replay costs
  // what it would on a device; the bytes are the dispatcher's own count at capture.
  RopeCacheResult replay_layer(Layer& layer, const StepInputs& in, HostTensor& sut_qkv,
                               const DispatchRecord& captured) {
    const RopeCacheInputs r = dispatch_inputs(layer, sut_qkv, in, layer.sut);
    if (captured.backup_taken) {
      const auto bytes = std::min<int64_t>(captured.backup_bytes, sut_qkv.bytes());
      replay_backup_.resize(static_cast<std::size_t>(bytes));
      std::memcpy(replay_backup_.data(), sut_qkv.data(), replay_backup_.size());
      ++result_.graph_replay_backup_copies;
      result_.graph_replay_backup_bytes += captured.backup_bytes;
      if (captured.restored) {
        std::memcpy(sut_qkv.data(), replay_backup_.data(), replay_backup_.size());
        ++result_.graph_replay_restore_copies;
      }
    }
    const VCacheLayout fallback_v_layout =
        layer.spec.use_triton_attn() ? VCacheLayout::kPlain : VCacheLayout::kShuffle;
    if (captured.branch == Branch::kFused) {
      run_fused(r);
    } else {
      run_fallback(r, fallback_v_layout);
    }
    RopeCacheResult out;
    out.record = captured;
    out.q = r.q;
    out.k = r.k;
    out.v = r.v;
    return out;
  }

  void run_fused(const RopeCacheInputs& in) {
    FusedQkNormRopeCacheArgs a;
    a.cfg = attn_;
    a.qkv = in.qkv;
    a.q_weight = in.q_weight;
    a.k_weight = in.k_weight;
    a.cos_sin_cache = in.cos_sin_cache;
    a.positions = in.positions;
    a.slot_mapping = in.slot_mapping;
    a.cache = in.cache;
    backend_.kernels().fused->run(a);
  }

  static void copy_cache(const LayerCache& from, LayerCache& to) {
    std::memcpy(to.k.data(), from.k.data(), static_cast<std::size_t>(from.k.bytes()));
    std::memcpy(to.v.data(), from.v.data(), static_cast<std::size_t>(from.v.bytes()));
    if (!from.k_scale.empty()) {
      std::memcpy(to.k_scale.data(), from.k_scale.data(), static_cast<std::size_t>(from.k_scale.bytes()));
      std::memcpy(to.v_scale.data(), from.v_scale.data(), static_cast<std::size_t>(from.v_scale.bytes()));
    }
  }

  std::optional<std::string> compare_cache(const LayerCache& got, const LayerCache& want,
                                           VCacheLayout v_layout) const {
    const std::pair<CachePart, std::pair<const HostTensor*, const HostTensor*>> parts[] = {
        {CachePart::kK, {&got.k, &want.k}},
        {CachePart::kV, {&got.v, &want.v}},
        {CachePart::kKScale, {&got.k_scale, &want.k_scale}},
        {CachePart::kVScale, {&got.v_scale, &want.v_scale}},
    };
    for (const auto& [part, tensors] : parts) {
      if (tensors.first->empty()) continue;
      const int64_t e = first_difference(*tensors.first, *tensors.second);
      if (e < 0) continue;
      const CacheCoord c = unravel(attn_, part, v_layout, e);
      return fmt::format(
          "{} differs at (block {}, kv head {}, token-in-block {}, dim {}) = slot {}: got 0x{:x} "
          "expected 0x{:x}",
          part_name(part), c.block, c.head, c.token, c.dim, c.block * attn_.block_size + c.token,
          element_bits(*tensors.first, e), element_bits(*tensors.second, e));
    }
    return std::nullopt;
  }

  // ---- records and log lines -----------------------------------------------------------------
  void digest_record(const DispatchRecord& r) {
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

  void check_record(const Step& step, int64_t l, const DispatchRecord& r, int64_t injected) {
    auto bad = [&](std::string_view what) {
      fail(RunVerdict::kCorrectness,
           fmt::format("step {} layer {}: dispatch record contradicts policy {}: {} (branch {}, "
                       "failure {}, injected here {})",
                       step.index, l, policy_name(cfg_.policy), what, branch_name(r.branch),
                       r.failure ? failure_class_name(*r.failure) : "none", injected));
    };
    // Qwen3 layers have q_norm and k_norm: after a failed fused attempt PR #279 goes to C, never
    // B (B does not normalise). B is only right for norm-less layers, which the engine has none of.
    if (r.branch == Branch::kRopeCache) bad("branch B taken although q_norm is set");
    if (r.fused_skipped_by_policy) {
      // Only two policies may skip the fused attempt: sticky (after 'unavailable' in this
      // process) and prevalidate (a precondition fails, which the engine's inputs never do).
      if (cfg_.policy != FallbackPolicy::kSticky || !process_->fused_disabled()) {
        bad("fused attempt skipped without the policy's reason");
      }
      if (r.fused_attempted || r.backup_taken) bad("a skipped fused attempt still ran or backed up");
    } else {
      if (r.failure && !r.fused_attempted) bad("a fused failure without a fused attempt");
      if (r.failure && !r.failure_injected) bad("failure not tagged as injected (a real bug)");
      if (r.failure && injected == 0) bad("a failure although no fault fired in this call");
    }
    if (r.failure && r.branch == Branch::kFused) bad("fused branch reported after a failure");
    if (r.branch == Branch::kFused && !r.fused_attempted) bad("fused branch without an attempt");
    if (!r.failure && r.branch != Branch::kFused && !r.fused_skipped_by_policy) {
      bad("fell back without a failure and without a policy skip");
    }
    if (r.fused_attempted && policy_backs_up(cfg_.policy) && !r.backup_taken) {
      bad("fused attempted without the backup the policy promises");
    }
    if (r.failure && r.backup_taken && !r.restored) bad("backup taken but qkv not restored");
    result_.checks_passed += 1;
  }

  void check_log(const Step& step, int64_t l, const DispatchRecord& r, int64_t log_before) {
    if (r.warning_logged) {
      if (!r.failure) {
        fail(RunVerdict::kCorrectness,
             fmt::format("step {} layer {}: a fallback warning without a failure", step.index, l));
      }
      const auto cls = static_cast<std::size_t>(*r.failure);
      if (++warnings_by_class_[cls] > 1) {
        fail(RunVerdict::kCorrectness,
             fmt::format("step {} layer {}: the fallback warning for {} was logged again in the "
                         "same process (PR #279 warns once per process)",
                         step.index, l, failure_class_name(static_cast<FailureClass>(cls))));
      }
    }
    if (r.failure && warnings_by_class_[static_cast<std::size_t>(*r.failure)] == 0 && !r.error_logged) {
      fail(RunVerdict::kCorrectness,
           fmt::format("step {} layer {}: fell back after {} without ever warning", step.index, l,
                       failure_class_name(*r.failure)));
    }
    const int64_t delta = static_cast<int64_t>(process_->log_lines().size()) - log_before;
    const int64_t promised = (r.warning_logged ? 1 : 0) + (r.error_logged ? 1 : 0);
    if (delta != promised) {
      fail(RunVerdict::kCorrectness,
           fmt::format("step {} layer {}: {} log lines for a call whose record promises {}",
                       step.index, l, delta, promised));
    }
    result_.checks_passed += 1;
  }

  // ---- surfaced errors and rollback ----------------------------------------------------------
  LayerOutcome surfaced(const Step& step, int64_t l, const DispatchError& e,
                        const FaultStats& before, int64_t log_before) {
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
                       step.index, l, e.what()));
    }
    const int64_t delta = static_cast<int64_t>(process_->log_lines().size()) - log_before;
    const int64_t promised = (e.record().warning_logged ? 1 : 0) + (e.record().error_logged ? 1 : 0);
    if (delta != promised) {
      fail(RunVerdict::kCorrectness,
           fmt::format("step {} layer {}: {} log lines for a surfaced error whose record promises {}",
                       step.index, l, delta, promised));
    }
    if (e.record().warning_logged && e.record().failure) {
      const auto cls = static_cast<std::size_t>(*e.record().failure);
      if (++warnings_by_class_[cls] > 1) {
        fail(RunVerdict::kCorrectness,
             fmt::format("step {} layer {}: warning for {} logged twice in one process", step.index,
                         l, failure_class_name(*e.record().failure)));
      }
    }
    result_.checks_passed += 2;
    if (faulty_->device_poisoned() || !process_->device_healthy() ||
        e.failure_class() == FailureClass::kStickyDevice) {
      late_restart_pending_ = true;
    }
    return {true, false};
  }

  // The step was aborted: nothing outside its write set may have changed in layer l's cache;
  // then the engine puts the committed state back (the step is retried later).
  void rollback_layer(const Step& step, int64_t l) {
    Layer& layer = layers_[static_cast<std::size_t>(l)];
    std::vector<bool> in_write_set(static_cast<std::size_t>(attn_.num_slots()), false);
    for (int64_t i = 0; i < step.real_tokens; ++i) {
      in_write_set[static_cast<std::size_t>(step.rows[static_cast<std::size_t>(i)].slot)] = true;
    }
    const std::pair<CachePart, std::pair<HostTensor*, HostTensor*>> parts[] = {
        {CachePart::kK, {&layer.sut.k, &layer.expected.k}},
        {CachePart::kV, {&layer.sut.v, &layer.expected.v}},
        {CachePart::kKScale, {&layer.sut.k_scale, &layer.expected.k_scale}},
        {CachePart::kVScale, {&layer.sut.v_scale, &layer.expected.v_scale}},
    };
    for (const auto& [part, tensors] : parts) {
      if (tensors.first->empty()) continue;
      const int64_t n = tensors.first->numel();
      // Either V layout may have been written by the aborted step's branches; an element is in
      // the write set if it belongs to a written slot under the layout that was used, so check
      // both interpretations and accept either.
      for (int64_t e = first_difference(*tensors.first, *tensors.second); e >= 0 && e < n;
           e = first_difference(*tensors.first, *tensors.second, e + 1)) {
        const CacheCoord c = unravel(attn_, part, VCacheLayout::kShuffle, e);
        const CacheCoord c2 = unravel(attn_, part, VCacheLayout::kPlain, e);
        const int64_t slot = c.block * attn_.block_size + c.token;
        const int64_t slot2 = c2.block * attn_.block_size + c2.token;
        const bool ok = in_write_set[static_cast<std::size_t>(slot)] ||
                        (part == CachePart::kV && in_write_set[static_cast<std::size_t>(slot2)]);
        if (!ok) {
          fail(RunVerdict::kCorrectness,
               fmt::format("step {} layer {} (aborted step): {} changed outside the step's write "
                           "set at (block {}, kv head {}, token-in-block {}, dim {}) = slot {}",
                           step.index, l, part_name(part), c.block, c.head, c.token, c.dim, slot));
        }
      }
    }
    result_.checks_passed += 1;
    copy_cache(layer.expected, layer.sut);
  }

  // Issue 10 item 5's property, for every step's history of branches: under a model-order
  // fallback with an "auto" cache, the cached K/V of every live request must be bit-identical to
  // the all-fused shadow's, however its prefill and decode tokens were split between the fused
  // path and the fallback. (fp8 differs by the quantisation arithmetic; a sliding window makes
  // the fallback write plain V: those are skipped.) The PR order differs by design: its
  // differing positions are counted (measured, not failed).
  void check_live_cache_vs_shadow(int64_t s) {
    if (is_fp8(attn_.kv_cache_dtype) || cfg_.sliding_window >= 0) return;
    const bool enforce = fallback_order_of(cfg_.policy) == FallbackOrder::kNormThenRope;
    const layout::PagedCacheShape shape = attn_.cache_shape();
    for (int64_t l = 0; l < cfg_.layers; ++l) {
      const Layer& layer = layers_[static_cast<std::size_t>(l)];
      const auto* sut_k = layer.sut.k.as<uint16_t>().data();
      const auto* sh_k = layer.shadow.k.as<uint16_t>().data();
      const auto* sut_v = layer.sut.v.as<uint16_t>().data();
      const auto* sh_v = layer.shadow.v.as<uint16_t>().data();
      for (const Request& r : scheduler_->requests()) {
        if (r.finished || r.processed_tokens == 0) continue;
        for (int64_t p = 0; p < r.processed_tokens; ++p) {
          const int64_t page = r.block_table[static_cast<std::size_t>(p / attn_.block_size)];
          const int64_t tok = p % attn_.block_size;
          ++result_.shadow_cache_positions_checked;
          bool differs = false;
          for (int64_t h = 0; h < attn_.num_heads_kv; ++h) {
            for (int64_t d = 0; d < attn_.head_dim; ++d) {
              const int64_t ko = layout::k_xpacked_offset(shape, page, h, tok, d);
              const int64_t vo = layout::v_shuffle_offset(shape, page, h, tok, d);
              if (sut_k[ko] != sh_k[ko] || sut_v[vo] != sh_v[vo]) differs = true;
              if (enforce && (sut_k[ko] != sh_k[ko] || sut_v[vo] != sh_v[vo])) {
                fail(RunVerdict::kCorrectness,
                     fmt::format("step {} layer {}: request {} position {} (kv head {}, dim {}): "
                                 "the cache after a mixed fused/fallback history differs from "
                                 "the all-fused shadow (K 0x{:04x} vs 0x{:04x}, V 0x{:04x} vs "
                                 "0x{:04x}) under a model-order fallback",
                                 s, l, r.id, p, h, d, sut_k[ko], sh_k[ko], sut_v[vo], sh_v[vo]));
              }
            }
          }
          if (differs) ++result_.shadow_cache_positions_differing;
        }
      }
    }
    if (enforce) result_.checks_passed += 1;
  }

  // ---- attention reads -----------------------------------------------------------------------
  void attention_checks(const Step& step, int64_t l, const RopeCacheResult& res,
                        const RopeCacheInputs& exp_in, const RopeCacheInputs& shadow_in,
                        VCacheLayout written_v_layout) {
    Layer& layer = layers_[static_cast<std::size_t>(l)];
    const int64_t n = attn_.num_heads_q * attn_.head_dim;
    std::vector<float> out_sut(static_cast<std::size_t>(n)), out_exp(out_sut.size()),
        out_shadow(out_sut.size());
    const CacheReadSpec spec{attn_, written_v_layout};
    const CacheReadSpec shadow_spec{attn_, VCacheLayout::kShuffle};
    // Model order: q/k equal the fused path's bit for bit (CPU reference contract), so with an
    // "auto" cache the read must be identical; an fp8 cache may differ by the quantisation
    // arithmetic (divide vs multiply by the reciprocal), up to about one fp8 step. The PR order
    // (even with symmetric weights, which only make it equal up to rounding) is measured only.
    const bool enforce_vs_shadow = fallback_order_of(cfg_.policy) == FallbackOrder::kNormThenRope;
    const float tol = is_fp8(attn_.kv_cache_dtype) ? 0.125f : 0.0f;
    for (const auto& [ri, row] : step.last_row_of_request) {
      const Request& r = scheduler_->requests()[static_cast<std::size_t>(ri)];
      const int64_t ctx = step.rows[static_cast<std::size_t>(row)].position + 1;
      {
        ScopedMutant mutant(cfg_.mutant);  // the reader is part of the system under test
        paged_attention_read(spec, layer.sut.views(), r.block_table, ctx, row_view(res.q, row),
                             out_sut);
      }
      paged_attention_read(spec, layer.scratch.views(), r.block_table, ctx,
                           row_view(exp_in.q, row), out_exp);
      paged_attention_read(shadow_spec, layer.shadow.views(), r.block_table, ctx,
                           row_view(shadow_in.q, row), out_shadow);
      digest_.bytes(out_sut.data(), out_sut.size() * sizeof(float));
      if (std::memcmp(out_sut.data(), out_exp.data(), out_sut.size() * sizeof(float)) != 0) {
        int64_t i = 0;
        while (i < n && out_sut[static_cast<std::size_t>(i)] == out_exp[static_cast<std::size_t>(i)]) ++i;
        fail(RunVerdict::kCorrectness,
             fmt::format("step {} layer {}: attention read of request {} (context {}) differs from "
                         "the expected cache's at (head {}, dim {}): {} vs {}",
                         step.index, l, r.id, ctx, i / attn_.head_dim, i % attn_.head_dim,
                         out_sut[static_cast<std::size_t>(std::min(i, n - 1))],
                         out_exp[static_cast<std::size_t>(std::min(i, n - 1))]));
      }
      // Against the fault-free, all-fused shadow: measured always, enforced for model order.
      double max_diff = 0.0;
      int64_t first_bad = -1;
      for (int64_t i = 0; i < n; ++i) {
        const float a = out_exp[static_cast<std::size_t>(i)];
        const float b = out_shadow[static_cast<std::size_t>(i)];
        const double diff = std::fabs(static_cast<double>(a) - static_cast<double>(b));
        max_diff = std::max(max_diff, diff);
        if (first_bad < 0 && !(diff <= tol + tol * std::fabs(b))) first_bad = i;
      }
      ++result_.attention_reads;
      if (max_diff > 0.0) ++result_.attention_reads_differing;
      result_.attention_max_abs_diff = std::max(result_.attention_max_abs_diff, max_diff);
      if (enforce_vs_shadow && first_bad >= 0 && written_v_layout == VCacheLayout::kShuffle) {
        fail(RunVerdict::kCorrectness,
             fmt::format("step {} layer {}: attention of request {} after a model-order "
                         "fallback differs from the fault-free shadow beyond tolerance {} at "
                         "(head {}, dim {}): {} vs {}",
                         step.index, l, r.id, tol, first_bad / attn_.head_dim,
                         first_bad % attn_.head_dim, out_exp[static_cast<std::size_t>(first_bad)],
                         out_shadow[static_cast<std::size_t>(first_bad)]));
      }
      result_.checks_passed += 2;
    }
  }

  SimConfig cfg_;
  AttentionConfig attn_;
  FaultPlan plan_;
  cpu::CpuBackend backend_;
  HostTensor cos_sin_;
  std::vector<Layer> layers_;
  std::unique_ptr<DispatchProcess> process_;
  std::unique_ptr<FaultyKernelSet> faulty_;
  Scheduler* scheduler_ = nullptr;
  Digest digest_;
  RunResult result_;
  std::array<int64_t, 5> warnings_by_class_{};
  int64_t faulty_calls_made_ = 0;
  int64_t current_step_ = 0;
  bool in_liveness_ = false;
  bool liveness_done_ = false;
  bool liveness_had_work_ = false;
  bool step_late_armed_ = false;
  bool late_restart_pending_ = false;
  // Graph mode: the captured per-layer records of each bucket, the capture in flight, and
  // whether the next decode step must run eagerly (its capture failed).
  std::map<int64_t, std::vector<DispatchRecord>> graphs_;
  std::vector<DispatchRecord> capture_pending_;
  bool retry_eagerly_ = false;
  std::vector<unsigned char> replay_backup_;
  // Per (request index, layer): which paths wrote its prefill and decode tokens.
  static constexpr uint8_t kPrefillFused = 1, kPrefillFallback = 2, kDecodeFused = 4,
                           kDecodeFallback = 8;
  std::map<int64_t, uint8_t> path_history_;
};

}  // namespace

RunResult run_simulation(const SimConfig& cfg, const RunHooks& hooks) {
  Engine engine(cfg);
  return engine.run(hooks);
}

}  // namespace rcsim::sim
