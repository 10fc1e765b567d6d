// GPU benchmarks of issue 8: the fused kernel and each non-fused kernel for the Qwen3 shapes and
// T in {1, 8, 64, 256, 1024, 4096, 32768}, bf16 and fp8 (e4m3fn) caches, against the copy
// bandwidth measured in the same run; and the fallback's cost per policy.
//
// Method (performance.md, METHOD.md): inputs are random non-zero bf16 values and distinct slots;
// every timed call sequence is captured in a CUDA/HIP graph and replayed, device events around the
// replays, median of kRepeats. "warm": the same buffers every call. "cold": calls rotate over
// input sets spanning >= 4x the L2 (distinct qkv rows and cache slots), so data comes from HBM.
// Bytes are the minimal traffic of each kernel (each input read once, each output written once).
// Qwen3-8B's fused kernel and non-fused chain are also timed with plain launches (the
// *_plain_launch rows; every other row launches programmatically, FusedParams::programmatic_launch),
// and --draws N times the small-batch fused rows on N more input draws (Options::draws says why).
// Output: one JSON document (--out) and a table on stdout. Seed printed first.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <iterator>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "bench/gpu_bench_model.h"
#include "bench/gpu_bench_options.h"
#include "bench/gpu_timing.h"
#include "core/dtype.h"
#include "core/errors.h"
#include "core/prng.h"
#include "kernels/common/numeric.h"
#include "kernels/hip/gpu_params.h"
#include "kernels/hip/gpu_runtime.h"

namespace rcsim::bench {
namespace {

using namespace rcsim::gpu;

void upload_random_bf16(void* dst, int64_t count, Prng& rng, float lo, float hi) {
  std::vector<uint16_t> h(static_cast<std::size_t>(count));
  for (auto& b : h) b = numeric::float_to_bf16_bits(rng.nonzero_float(lo, hi));
  copy_to_device(dst, h.data(), count * 2);
}

// ---- device buffers of a shape and of a cache dtype ---------------------------------------

// The device inputs of one shape (owned by bench_shape), shared by every T, cache dtype and slot
// pattern: smaller T use row windows of them.
struct ShapeInputs {
  // Rows beyond kMaxTokens give cold sets their own memory.
  static constexpr int64_t kRowsTotal = kMaxTokens * 2;
  // One page per row is enough for both slot patterns (decode uses a page per token).
  static constexpr int64_t kNumBlocks = kRowsTotal;
  int64_t width;
  const DeviceMem &qkv, &qkv_backup, &qw, &kw, &cos_sin, &pos, &prefill_dev, &decode_dev;
  // qkv as drawn, kept: every measurement starts from it (time_kernels). The kernels write q and
  // k back in place; without the restore, each row went through thousands of timed calls over a
  // run, and repeated RMSNorm takes most of a head to zero or subnormal values. Measured on the
  // H200 (bench/results/h200-2026-11-30-stores/, call 4): the same rms_norm kernel took 2.2 us per
  // call at T=1 in a shape's first cache-dtype section and 3.2 us in its second, and the fused fp8
  // kernel 46.2 us at T=4096 on drifted rows against 39.4 us on drawn ones.
  const DeviceMem& qkv_drawn;
};

// The K and V caches (V in the shuffle layout) and per-token scales of one shape, bf16 or fp8.
struct CacheBuffers {
  DeviceMem kc, vc, ks, vs;
  CacheParams params;

  CacheBuffers(const Shape& sh, bool fp8)
      : kc(elements(sh) * elt(fp8)),
        vc(elements(sh) * elt(fp8)),
        ks(ShapeInputs::kNumBlocks * sh.hkv * kBlockSize * 4),
        vs(ShapeInputs::kNumBlocks * sh.hkv * kBlockSize * 4) {
    params.k_cache = kc.p;
    params.v_cache = vc.p;
    params.k_scale = static_cast<float*>(ks.p);
    params.v_scale = static_cast<float*>(vs.p);
    params.num_blocks = ShapeInputs::kNumBlocks;
    params.block_size = kBlockSize;
    params.x = 16 / elt(fp8);
    params.type = fp8 ? CacheType::kFp8E4M3FN : CacheType::kActivation;
    params.v_shuffle = true;
  }
  static int64_t elt(bool fp8) { return fp8 ? 1 : 2; }
  static int64_t elements(const Shape& sh) {
    return ShapeInputs::kNumBlocks * sh.hkv * sh.d * kBlockSize;
  }
};

// ---- one case: its kernel launches on input set s (rows s*T .. s*T+T-1) --------------------

// A shape, T, a cache dtype and a slot pattern; each launcher writes one kernel's params for
// input set s and launches it on stream st (nullptr: the default stream).
struct BenchCase {
  const Shape& sh;
  const ShapeInputs& in;
  const CacheParams& cache;
  const DeviceMem& slots;  // prefill or decode pattern
  int64_t T;
  bool fp8;
  // Every tiled kernel's launch (FusedParams::programmatic_launch); the *_plain_launch rows clear it.
  bool programmatic = true;

  uint16_t* qkv_at(int s) const {
    return static_cast<uint16_t*>(in.qkv.p) + static_cast<int64_t>(s) * T * in.width;
  }
  FusedParams fused_params(int s) const {
    FusedParams p;
    p.qkv = qkv_at(s);
    p.q_weight = in.qw.p;
    p.k_weight = in.kw.p;
    p.cos_sin = in.cos_sin.p;
    p.positions = static_cast<int64_t*>(in.pos.p) + s * T;
    p.slots = static_cast<int64_t*>(slots.p) + s * T;
    p.cache = cache;
    p.num_tokens = T;
    p.num_heads_q = sh.hq;
    p.num_heads_kv = sh.hkv;
    p.head_dim = sh.d;
    p.rotary_dim = sh.d;
    p.programmatic_launch = programmatic;
    return p;
  }
  BenchCase plain_launch() const {
    BenchCase c = *this;
    c.programmatic = false;
    return c;
  }
  HeadsView heads(int s, int64_t head0) const {
    return HeadsView{qkv_at(s) + head0 * sh.d, in.width, sh.d};
  }
  void rms(int s, bool q, void* st) const {
    RmsNormParams p;
    p.in = p.out = heads(s, q ? 0 : sh.hq);
    p.weight = q ? in.qw.p : in.kw.p;
    p.num_tokens = T;
    p.num_heads = q ? sh.hq : sh.hkv;
    p.head_dim = sh.d;
    p.programmatic_launch = programmatic;
    launch_rms_norm(p, st);
  }
  void rotary(int s, void* st) const {
    RotaryParams p;
    p.q = heads(s, 0);
    p.k = heads(s, sh.hq);
    p.cos_sin = in.cos_sin.p;
    p.positions = static_cast<int64_t*>(in.pos.p) + s * T;
    p.num_tokens = T;
    p.num_heads_q = sh.hq;
    p.num_heads_kv = sh.hkv;
    p.head_dim = sh.d;
    p.rotary_dim = sh.d;
    p.programmatic_launch = programmatic;
    launch_rotary(p, st);
  }
  // The per-token fp8 writer and reshape_and_cache take different structs with these same fields.
  template <typename P>
  P cache_write_params(int s) const {
    P p;
    p.key = heads(s, sh.hq);
    p.value = heads(s, sh.hq + sh.hkv);
    p.slots = static_cast<int64_t*>(slots.p) + s * T;
    p.cache = cache;
    p.num_tokens = T;
    p.num_heads_kv = sh.hkv;
    p.head_dim = sh.d;
    p.programmatic_launch = programmatic;
    return p;
  }
  void cache_write(int s, void* st) const {
    if (fp8) {
      launch_per_token_quant_cache(cache_write_params<PerTokenQuantParams>(s), st);
    } else {
      launch_reshape_and_cache(cache_write_params<ReshapeCacheParams>(s), st);
    }
  }
  void nonfused(int s, void* st) const {
    rms(s, true, st);
    rms(s, false, st);
    rotary(s, st);
    cache_write(s, st);
  }
};

// One row family of the report: a kernel (or a policy's call sequence) and its byte model.
struct Kernel {
  const char* name;
  double bytes;
  std::function<void(int, void*)> fn;
  bool eager = false;  // timed without a graph (host work per call included), warm only
  // The same device work as another row, launched another way (*_plain_launch): timed, not
  // profiled, so that --profile's launch order (which the ncu summaries index) stays the kernels'.
  bool launch_variant = false;
};

// Every case: the fused kernel and the cache writer; prefill slots add the other non-fused
// kernels and their chain; from T = 1024, the fused kernel with AITER's own thread mapping.
std::vector<Kernel> case_kernels(const BenchCase& c, const Bytes& bytes, bool decode) {
  std::vector<Kernel> kernels = {
      {"fused", bytes.fused,
       [&c](int s, void* st) { launch_fused_qk_norm_rope_cache(c.fused_params(s), st); }},
      {c.fp8 ? "per_token_quant_cache" : "reshape_and_cache", bytes.cache,
       [&c](int s, void* st) { c.cache_write(s, st); }},
  };
  if (!decode && std::strcmp(c.sh.name, "qwen3-8b") == 0) {
    // The fused kernel and the non-fused chain without programmatic dependent launch
    // (FusedParams::programmatic_launch): what each costs after a kernel that does not let the
    // next launch start early, or on a platform without it.
    kernels.push_back({"fused_plain_launch", bytes.fused,
                       [p = c.plain_launch()](int s, void* st) {
                         launch_fused_qk_norm_rope_cache(p.fused_params(s), st);
                       },
                       false, true});
    kernels.push_back({"nonfused_chain_plain_launch", bytes.nonfused,
                       [p = c.plain_launch()](int s, void* st) { p.nonfused(s, st); }, false,
                       true});
  }
  if (!decode) {
    kernels.push_back({"rms_norm_q", bytes.rms_q, [&c](int s, void* st) { c.rms(s, true, st); }});
    kernels.push_back({"rms_norm_k", bytes.rms_k, [&c](int s, void* st) { c.rms(s, false, st); }});
    kernels.push_back({"rotary", bytes.rotary, [&c](int s, void* st) { c.rotary(s, st); }});
    kernels.push_back(
        {"nonfused_chain", bytes.nonfused, [&c](int s, void* st) { c.nonfused(s, st); }});
    // A device copy of the case's qkv rows (from the drawn values, so it also leaves them as
    // drawn), in the same graph form: what a plain copy of this size reaches, against the 2 GiB
    // copy every row is compared with. It is the size-matched ceiling for the fused rows: a launch
    // of ~100 MB pays its ramp-up and last wave on fewer bytes than one of 2 GiB does.
    const int64_t rows_bytes = c.T * c.in.width * 2;
    kernels.push_back({"copy_qkv_rows", 2.0 * static_cast<double>(rows_bytes),
                       [&c, rows_bytes](int s, void* st) {
                         const auto* drawn = static_cast<const uint8_t*>(c.in.qkv_drawn.p);
                         copy_device_to_device(c.qkv_at(s), drawn + s * rows_bytes, rows_bytes, st);
                       }});
  }
  if (c.T >= 1024) {
    // AITER's own thread mapping (the reference-mapping kernel), same bits, for the ratio.
    kernels.push_back({"fused_reference_mapping", bytes.fused, [&c](int s, void* st) {
                         FusedParams p = c.fused_params(s);
                         p.mapping = KernelMapping::kReference;
                         launch_fused_qk_norm_rope_cache(p, st);
                       }});
  }
  return kernels;
}

// What the fused op costs when it is unavailable: it raises before launching.
void failed_attempt() {
  try {
    throw KernelError(FailureClass::kUnavailable, "fused_qk_norm_rope_cache_quant_shuffle",
                      "module not built (CK-free)", true);
  } catch (const KernelError&) {
  }
}

// Fallback policies once the fused kernel is known to fail (Qwen3-8B only; issue 8), and the
// healthy eager paths they are compared with; all eager.
void add_policy_kernels(std::vector<Kernel>& kernels, const BenchCase& c, const Bytes& bytes) {
  const int64_t T = c.T, width = c.in.width;
  const int64_t qkv_bytes = T * width * 2;
  const int64_t qk_row_bytes = (c.sh.hq + c.sh.hkv) * c.sh.d * 2;
  void* const backup = c.in.qkv_backup.p;
  // First of the eager kernels: the policy table's ratios are paired with its samples.
  kernels.push_back({"policy_nonfused_alone", bytes.nonfused,
                     [&c](int s, void* st) { c.nonfused(s, st); }, true});
  kernels.push_back({"policy_pr279", bytes.nonfused, [&c, backup, qkv_bytes](int s, void* st) {
                       copy_device_to_device(backup, c.qkv_at(s), qkv_bytes, st);
                       failed_attempt();
                       copy_device_to_device(c.qkv_at(s), backup, qkv_bytes, st);
                       c.nonfused(s, st);
                     }, true});
  bool sticky_failed = false;  // sticky: the first failure is remembered, no retries
  kernels.push_back({"policy_sticky", bytes.nonfused, [&c, sticky_failed](int s, void* st) mutable {
                       if (!sticky_failed) {
                         failed_attempt();
                         sticky_failed = true;
                       }
                       c.nonfused(s, st);
                     }, true});
  kernels.push_back({"policy_qk_slice_backup", bytes.nonfused,
                     [&c, backup, qk_row_bytes, width, T](int s, void* st) {
                       copy_device_2d(backup, qk_row_bytes, c.qkv_at(s), width * 2, qk_row_bytes,
                                      T, st);
                       failed_attempt();
                       copy_device_2d(c.qkv_at(s), width * 2, backup, qk_row_bytes, qk_row_bytes,
                                      T, st);
                       c.nonfused(s, st);
                     }, true});
  kernels.push_back({"policy_out_of_place", bytes.nonfused, [&c](int s, void* st) {
                       failed_attempt();
                       c.nonfused(s, st);
                     }, true});
  kernels.push_back({"healthy_pr279_backup_plus_fused", bytes.fused,
                     [&c, backup, qkv_bytes](int s, void* st) {
                       copy_device_to_device(backup, c.qkv_at(s), qkv_bytes, st);
                       launch_fused_qk_norm_rope_cache(c.fused_params(s), st);
                     }, true});
  kernels.push_back({"healthy_fused_eager", bytes.fused, [&c](int s, void* st) {
                       launch_fused_qk_norm_rope_cache(c.fused_params(s), st);
                     }, true});
}

// ---- timing, rows of the report and the table ----------------------------------------------

// What names a row, and the copy bandwidth it is measured against.
struct RowLabels {
  const char* shape;
  int64_t tokens;
  bool fp8;
  const char* slots;
  double copy_gbps;
  int draw;  // 0: the run's own inputs; d >= 1: --draws' draw d
};

// `paired` is the median over rounds of this kernel's sample / `paired_to`'s sample of the same
// round (time_us_eager_rounds): the policy table's ratios.
void report_eager(const Kernel& k, double us, const char* paired_to, double paired,
                  const RowLabels& r, nlohmann::json& report) {
  const double gbps = k.bytes / (us * 1e3);
  report["rows"].push_back({{"shape", r.shape}, {"tokens", r.tokens},
                            {"kv", r.fp8 ? "fp8_e4m3fn" : "bf16"}, {"slots", r.slots},
                            {"kernel", k.name}, {"cold", false}, {"eager", true},
                            {"us_per_call", us}, {"min_bytes", k.bytes}, {"gbps", gbps},
                            {"fraction_of_copy", gbps / r.copy_gbps},
                            {"paired_ratio_to", paired_to}, {"paired_ratio", paired}});
  std::printf("%-15s %6lld %4s %-5s %-22s %10.2f %8.0f %5.0f%% (eager; %.3f x %s, paired)\n",
              r.shape, static_cast<long long>(r.tokens), r.fp8 ? "fp8" : "bf16", "warm", k.name,
              us, gbps, 100.0 * gbps / r.copy_gbps, paired, paired_to);
}

// Warm: 8 calls on one input set per graph. Cold: one call on each of up to 64 input sets.
void time_graphed(const Kernel& k, bool cold, int64_t sets_cold, const RowLabels& r,
                  const ResetInputs& reset, nlohmann::json& report) {
  const int sets = cold ? static_cast<int>(std::min<int64_t>(sets_cold, 64)) : 1;
  const int calls = cold ? sets : 8;  // warm: 8 calls on one set per graph
  GraphRunner g;
  const double us =
      time_us_per_call(g, calls, [&](int s, void* st) { k.fn(cold ? s : 0, st); }, reset);
  const double gbps = k.bytes / (us * 1e3);
  nlohmann::json row = {{"shape", r.shape}, {"tokens", r.tokens},
                        {"kv", r.fp8 ? "fp8_e4m3fn" : "bf16"}, {"slots", r.slots},
                        {"kernel", k.name}, {"cold", cold}, {"sets", sets},
                        {"us_per_call", us}, {"min_bytes", k.bytes}, {"gbps", gbps},
                        {"fraction_of_copy", gbps / r.copy_gbps}, {"draw", r.draw}};
  report["rows"].push_back(row);
  std::printf("%-15s %6lld %4s %-5s %-7s %-24s %10.2f %8.0f %5.0f%%", r.shape,
              static_cast<long long>(r.tokens), r.fp8 ? "fp8" : "bf16", cold ? "cold" : "warm",
              r.slots, k.name, us, gbps, 100.0 * gbps / r.copy_gbps);
  if (r.draw > 0) std::printf(" (draw %d)", r.draw);
  std::printf("\n");
}

// Eager kernels are timed against each other in rounds (time_us_eager_rounds): their ratios are
// what the policy table reports. Six times kRepeats samples each: at small T a call is mostly
// host launch work, whose spread is wider than the 3% the sticky target allows. With 21 rounds,
// sticky / alone ranged 0.979-1.032 over nine runs of the same binary (H200,
// bench/results/h200-2026-11-30-prefetch/), for the same device work.
inline constexpr int kEagerRounds = 6 * kRepeats;

// The graphed kernels in list order, warm then cold, then the eager ones (warm only) in rounds;
// every measurement starts from qkv as drawn (ShapeInputs::qkv_drawn).
void time_kernels(const std::vector<Kernel>& kernels, const ShapeInputs& in, int64_t sets_cold,
                  const RowLabels& r, nlohmann::json& report) {
  const ResetInputs restore_qkv = [&in] {
    copy_device_to_device(in.qkv.p, in.qkv_drawn.p, in.qkv.bytes, nullptr);
    synchronize();
  };
  std::vector<const Kernel*> eager;
  for (const Kernel& k : kernels) {
    if (k.eager) {
      eager.push_back(&k);
      continue;
    }
    for (bool cold : {false, true}) time_graphed(k, cold, sets_cold, r, restore_qkv, report);
  }
  if (eager.empty()) return;
  std::vector<std::function<void(int, void*)>> fns;
  for (const Kernel* k : eager) fns.push_back(k->fn);
  const EagerTimes t = time_us_eager_rounds(fns, restore_qkv, kEagerRounds);
  for (std::size_t i = 0; i < eager.size(); ++i) {
    report_eager(*eager[i], t.us[i], eager[0]->name, t.ratio_to_first[i], r, report);
  }
}

// --profile: one eager launch of each graphed kernel, in list order.
void profile_kernels(const std::vector<Kernel>& kernels, bool fp8, const char* pattern_name) {
  for (const Kernel& k : kernels) {
    if (k.eager || k.launch_variant) continue;
    std::printf("profile launch: %s %s %s\n", k.name, fp8 ? "fp8" : "bf16", pattern_name);
    k.fn(0, nullptr);
  }
  synchronize();
}

// ---- the run: shapes, cache dtypes, T, slot patterns ---------------------------------------

// What every case of a run shares.
struct RunSettings {
  bool profile = false;
  int64_t profile_tokens = kMaxTokens;  // --profile launches this T only
  double copy_gbps = 0.0;
  int64_t cold_span_bytes = 0;  // cold input sets together span at least this many bytes
  std::vector<bool> kv_fp8;     // cache dtypes of each shape, in order (Options::kv_fp8)
  // --draws: which draw these inputs are (0: the run's own), and its narrower set of rows.
  int draw = 0;
  int64_t max_tokens = kMaxTokens;
  bool fused_rows_only = false;  // the fused kernel and its plain-launch row, prefill
};

// One case: its kernels launched once each (--profile), or timed and reported.
void bench_case(const Shape& sh, const ShapeInputs& in, const CacheParams& cache, bool fp8,
                int64_t T, SlotPattern pattern, const RunSettings& run, nlohmann::json& report) {
  const bool decode = pattern == SlotPattern::kDecode;
  const DeviceMem& slots = decode ? in.decode_dev : in.prefill_dev;
  const char* pattern_name = decode ? "decode" : "prefill";
  const Config cfg{sh, T, fp8};
  const Bytes bytes = decode ? sector_floor_bytes(cfg) : min_bytes(cfg);
  const int64_t set_bytes = static_cast<int64_t>(bytes.fused);
  const int64_t sets_cold = std::clamp<int64_t>(
      run.cold_span_bytes / std::max<int64_t>(set_bytes, 1) + 1, 1, ShapeInputs::kRowsTotal / T);
  const BenchCase c{sh, in, cache, slots, T, fp8};
  std::vector<Kernel> kernels = case_kernels(c, bytes, decode);
  if (run.fused_rows_only) {
    std::erase_if(kernels, [](const Kernel& k) {
      return std::strcmp(k.name, "fused") != 0 && std::strcmp(k.name, "fused_plain_launch") != 0;
    });
  } else if (!decode && std::strcmp(sh.name, "qwen3-8b") == 0) {
    add_policy_kernels(kernels, c, bytes);
  }
  if (run.profile) {
    profile_kernels(kernels, fp8, pattern_name);
    return;
  }
  time_kernels(kernels, in, sets_cold,
               RowLabels{sh.name, T, fp8, pattern_name, run.copy_gbps, run.draw}, report);
}

// One cache dtype of a shape: every T, prefill slots, then decode slots where measured.
void bench_cache_dtype(const Shape& sh, const ShapeInputs& in, bool fp8, const RunSettings& run,
                       nlohmann::json& report) {
  const CacheBuffers cache(sh, fp8);
  for (int64_t T : kTokens) {
    if (run.profile && T != run.profile_tokens) continue;
    if (T > run.max_tokens) continue;
    for (const SlotPattern pattern : {SlotPattern::kPrefill, SlotPattern::kDecode}) {
      // Decode slots: Qwen3-8B at T = 4096 and 32768 (issue 13's row), fused and cache writer.
      const bool decode = pattern == SlotPattern::kDecode;
      if (decode && (std::strcmp(sh.name, "qwen3-8b") != 0 || T < 4096 || run.fused_rows_only)) {
        continue;
      }
      bench_case(sh, in, cache.params, fp8, T, pattern, run, report);
    }
  }
}

// One big qkv, cos/sin, positions and slots per shape, then each cache dtype. The draws from rng
// come in one fixed order (qkv, q weight, k weight, cos/sin, positions, prefill and decode slots).
void bench_shape(const Shape& sh, Prng& rng, const RunSettings& run, nlohmann::json& report) {
  const int64_t width = (sh.hq + 2 * sh.hkv) * sh.d;
  const int64_t rows_total = ShapeInputs::kRowsTotal;
  DeviceMem qkv(rows_total * width * 2);
  upload_random_bf16(qkv.p, rows_total * width, rng, 0.05f, 4.0f);
  DeviceMem qkv_backup(kMaxTokens * width * 2);
  DeviceMem qw(sh.d * 2), kw(sh.d * 2);
  upload_random_bf16(qw.p, sh.d, rng, 0.25f, 2.0f);
  upload_random_bf16(kw.p, sh.d, rng, 0.25f, 2.0f);
  DeviceMem cos_sin(kMaxPosition * sh.d * 2);
  upload_random_bf16(cos_sin.p, kMaxPosition * sh.d, rng, 0.01f, 1.0f);
  std::vector<int64_t> pos_h(static_cast<std::size_t>(rows_total));
  for (auto& p : pos_h) p = rng.range(0, kMaxPosition - 1);
  const std::vector<int64_t> prefill_h = prefill_slots(rows_total, rng);
  const std::vector<int64_t> decode_h = decode_slots(rows_total, ShapeInputs::kNumBlocks, rng);
  DeviceMem pos(rows_total * 8), prefill_dev(rows_total * 8), decode_dev(rows_total * 8);
  copy_to_device(pos.p, pos_h.data(), rows_total * 8);
  copy_to_device(prefill_dev.p, prefill_h.data(), rows_total * 8);
  copy_to_device(decode_dev.p, decode_h.data(), rows_total * 8);
  DeviceMem qkv_drawn(rows_total * width * 2);
  copy_device_to_device(qkv_drawn.p, qkv.p, rows_total * width * 2, nullptr);
  const ShapeInputs in{width,       qkv, qkv_backup,  qw,        kw,
                       cos_sin,     pos, prefill_dev, decode_dev, qkv_drawn};
  for (const bool fp8 : run.kv_fp8) bench_cache_dtype(sh, in, fp8, run, report);
  std::fflush(stdout);
}

// --draws: Qwen3-8B's small-batch fused rows on `draws` fresh input draws, draw d from the run's
// seed and the label "draw" with index d (the run's own inputs come from the label "bench").
void bench_draws(int draws, uint64_t seed, RunSettings run, nlohmann::json& report) {
  run.max_tokens = kDrawsMaxTokens;
  run.fused_rows_only = true;
  for (int d = 1; d <= draws; ++d) {
    run.draw = d;
    Prng rng = Prng::stream(seed, "draw", static_cast<uint64_t>(d));
    for (const Shape& sh : kShapes) {
      if (std::strcmp(sh.name, "qwen3-8b") == 0) bench_shape(sh, rng, run, report);
    }
  }
  report["draws"] = draws;
}

int write_report(const nlohmann::json& report, const std::string& out_path) {
  std::FILE* f = std::fopen(out_path.c_str(), "w");
  if (f == nullptr) return 1;
  const std::string text = report.dump(1);
  std::fwrite(text.data(), 1, text.size(), f);
  std::fclose(f);
  std::printf("wrote %s\n", out_path.c_str());
  return 0;
}

int run(int argc, char** argv) {
  const Options opt = parse_options(argc, argv);
  const uint64_t seed = 0xBE7C4ull;
  std::printf("rcsim gpu_bench: seed 0x%llx\n", static_cast<unsigned long long>(seed));
  const DeviceInfo info = query_device();
  if (info.device_count == 0) {
    std::fprintf(stderr, "gpu_bench: no device\n");
    return 1;
  }
  std::printf("device: %s, L2 %lld MB, %d SMs\n", info.name.c_str(),
              static_cast<long long>(info.l2_cache_bytes >> 20), info.multiprocessor_count);
  nlohmann::json report;
  report["device"] = info.name;
  report["platform"] = info.platform;
  report["l2_bytes"] = info.l2_cache_bytes;
  report["seed"] = seed;
  RunSettings settings;
  settings.profile = opt.profile;
  settings.profile_tokens = opt.profile_tokens;
  settings.kv_fp8 = opt.kv_fp8;
  settings.copy_gbps = measure_copy_gbps();
  report["copy_gbps"] = settings.copy_gbps;
  report["rows"] = nlohmann::json::array();
  settings.cold_span_bytes = 4 * info.l2_cache_bytes + (64 << 20);
  Prng rng = Prng::stream(seed, "bench");
  std::printf("%-15s %6s %4s %-5s %-22s %10s %8s %6s\n", "shape", "T", "kv", "L2", "kernel",
              "us/call", "GB/s", "%copy");
  for (const Shape& sh : kShapes) {
    if ((opt.quick || opt.profile) && std::strcmp(sh.name, "qwen3-8b") != 0) continue;
    bench_shape(sh, rng, settings, report);
  }
  if (!opt.profile) bench_draws(opt.draws, seed, settings, report);
  return write_report(report, opt.out_path);
}

}  // namespace
}  // namespace rcsim::bench

int main(int argc, char** argv) {
  try {
    return rcsim::bench::run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "gpu_bench: %s\n", e.what());
    return 1;
  }
}
