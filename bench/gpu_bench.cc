// GPU benchmarks of issue 8: the fused kernel and each non-fused kernel for the Qwen3 shapes and
// T in {1, 8, 64, 256, 1024, 4096, 32768}, bf16 and fp8 (e4m3fn) caches, against the copy
// bandwidth measured in the same run; and the fallback's cost per policy.
//
// Method (performance.md, METHOD.md): inputs are random non-zero bf16 values and distinct slots;
// every timed call sequence is captured in a CUDA/HIP graph and replayed, device events around the
// replays, median of kRepeats. "warm": the same buffers every call. "cold": calls rotate over
// input sets spanning >= 4x the L2 (distinct qkv rows and cache slots), so data comes from HBM.
// Bytes are the minimal traffic of each kernel (each input read once, each output written once).
// Output: one JSON document (--out) and a table on stdout. Seed printed first.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/dtype.h"
#include "core/errors.h"
#include "core/prng.h"
#include "kernels/common/numeric.h"
#include "kernels/hip/gpu_params.h"
#include "kernels/hip/gpu_runtime.h"

namespace rcsim::bench {
namespace {

using namespace rcsim::gpu;

constexpr int kRepeats = 7;
constexpr int64_t kMaxTokens = 32768;
constexpr int64_t kBlockSize = 16;
constexpr int64_t kMaxPosition = 4096;

struct Shape {
  const char* name;
  int64_t hq, hkv, d;
};
const Shape kShapes[] = {{"qwen3-0.6b", 16, 8, 128},
                         {"qwen3-8b", 32, 8, 128},
                         {"qwen3-32b", 64, 8, 128},
                         {"qwen3-235b-tp8", 8, 1, 128}};
const int64_t kTokens[] = {1, 8, 64, 256, 1024, 4096, 32768};

struct DeviceMem {
  void* p = nullptr;
  int64_t bytes = 0;
  explicit DeviceMem(int64_t b) : p(device_alloc(b)), bytes(b) {}
  ~DeviceMem() { device_free(p); }
  DeviceMem(const DeviceMem&) = delete;
  DeviceMem& operator=(const DeviceMem&) = delete;
};

void upload_random_bf16(void* dst, int64_t count, Prng& rng, float lo, float hi) {
  std::vector<uint16_t> h(static_cast<std::size_t>(count));
  for (auto& b : h) b = numeric::float_to_bf16_bits(rng.nonzero_float(lo, hi));
  copy_to_device(dst, h.data(), count * 2);
}

// Times fn(set) calls: a graph of `sets` calls (one per input set) replayed; returns us per call.
double time_us_per_call(GraphRunner& g, int sets, const std::function<void(int, void*)>& fn) {
  g.begin_capture();
  for (int s = 0; s < sets; ++s) fn(s, g.stream());
  g.end_capture();
  EventTimer timer;
  // At least ~1 ms per measurement so event resolution does not matter.
  g.replay();
  timer.start(g.stream());
  g.replay();
  timer.stop(g.stream());
  const double one_ms = std::max(1e-3, static_cast<double>(timer.elapsed_ms()));
  const int replays = static_cast<int>(std::clamp(1.0 / one_ms, 1.0, 200.0));
  std::vector<double> samples;
  for (int r = 0; r < kRepeats; ++r) {
    timer.start(g.stream());
    for (int i = 0; i < replays; ++i) g.replay();
    timer.stop(g.stream());
    samples.push_back(static_cast<double>(timer.elapsed_ms()) * 1000.0 / (replays * sets));
  }
  std::sort(samples.begin(), samples.end());
  return samples[samples.size() / 2];
}

// Times eager calls (no graph): host work between launches counts, as it does for a policy that
// throws and catches per call. Events around a loop of calls; us per call, median.
double time_us_eager(const std::function<void(int, void*)>& fn) {
  EventTimer timer;
  for (int i = 0; i < 3; ++i) fn(0, nullptr);
  timer.start(nullptr);
  fn(0, nullptr);
  timer.stop(nullptr);
  const double one_ms = std::max(1e-3, static_cast<double>(timer.elapsed_ms()));
  const int calls = static_cast<int>(std::clamp(2.0 / one_ms, 5.0, 400.0));
  std::vector<double> samples;
  for (int r = 0; r < kRepeats; ++r) {
    timer.start(nullptr);
    for (int i = 0; i < calls; ++i) fn(0, nullptr);
    timer.stop(nullptr);
    samples.push_back(static_cast<double>(timer.elapsed_ms()) * 1000.0 / calls);
  }
  std::sort(samples.begin(), samples.end());
  return samples[samples.size() / 2];
}

struct Config {
  Shape shape;
  int64_t tokens;
  bool fp8;
};

// Minimal bytes of each kernel for one call (performance.md's byte model).
struct Bytes {
  double fused, rms_q, rms_k, rotary, cache, nonfused;
};
Bytes min_bytes(const Config& c) {
  const double T = static_cast<double>(c.tokens), D = static_cast<double>(c.shape.d);
  const double hq = static_cast<double>(c.shape.hq), hkv = static_cast<double>(c.shape.hkv);
  const double elt = c.fp8 ? 1.0 : 2.0;
  const double scales = c.fp8 ? 2.0 * hkv * 4.0 : 0.0;
  Bytes b;
  b.fused = T * ((hq + 2 * hkv) * D * 2 + (hq + hkv) * D * 2 + 2 * hkv * D * elt + scales + D * 2 + 16);
  b.rms_q = T * hq * D * 2 * 2;
  b.rms_k = T * hkv * D * 2 * 2;
  b.rotary = T * ((hq + hkv) * D * 2 * 2 + D * 2 + 8);
  b.cache = T * (2 * hkv * D * 2 + 2 * hkv * D * elt + scales + 8);
  b.nonfused = b.rms_q + b.rms_k + b.rotary + b.cache;
  return b;
}

// Slot patterns (issue 13). Prefill: sequences of 32..2048 tokens, each starting on a fresh page,
// its tokens in consecutive slots (as a serving engine lays out a prefill batch). Decode: every
// token its own page (a random permutation of pages) at a random offset in it.
enum class SlotPattern { kPrefill, kDecode };
std::vector<int64_t> prefill_slots(int64_t rows, Prng& rng) {
  std::vector<int64_t> s;
  s.reserve(static_cast<std::size_t>(rows));
  int64_t page = 0;
  while (static_cast<int64_t>(s.size()) < rows) {
    const int64_t len = std::min<int64_t>(rng.range(32, 2048), rows - static_cast<int64_t>(s.size()));
    for (int64_t i = 0; i < len; ++i) s.push_back(page * kBlockSize + i);
    page += (len + kBlockSize - 1) / kBlockSize;
  }
  return s;
}
std::vector<int64_t> decode_slots(int64_t rows, int64_t pages, Prng& rng) {
  std::vector<int64_t> perm(static_cast<std::size_t>(pages));
  for (int64_t i = 0; i < pages; ++i) perm[static_cast<std::size_t>(i)] = i;
  for (int64_t i = pages - 1; i > 0; --i) {
    std::swap(perm[static_cast<std::size_t>(i)], perm[static_cast<std::size_t>(rng.range(0, i))]);
  }
  std::vector<int64_t> s(static_cast<std::size_t>(rows));
  for (int64_t i = 0; i < rows; ++i) {
    s[static_cast<std::size_t>(i)] = perm[static_cast<std::size_t>(i)] * kBlockSize + rng.range(0, kBlockSize - 1);
  }
  return s;
}

// Decode's floor at DRAM sector granularity (32 bytes): a token alone in its page writes partial
// sectors. Its K head is D/x chunks of 16 bytes at a stride of BS*16 bytes (one sector each); its
// V head in the shuffle layout is one element in each of D 16-byte chunks, two chunks per sector
// (D/2 sectors); a per-token scale is a sector of its own; position and slot one sector each. The
// qkv reads, q/k writes and cos/sin row are whole sectors, as in min_bytes().
Bytes sector_floor_bytes(const Config& c) {
  Bytes b = min_bytes(c);
  const double T = static_cast<double>(c.tokens), D = static_cast<double>(c.shape.d);
  const double hq = static_cast<double>(c.shape.hq), hkv = static_cast<double>(c.shape.hkv);
  const double x = c.fp8 ? 16.0 : 8.0;
  const double k_sectors = hkv * (D / x), v_sectors = hkv * (D / 2.0);
  const double scale_sectors = c.fp8 ? 2.0 * hkv : 0.0;
  const double cache = (k_sectors + v_sectors + scale_sectors) * 32.0;
  b.fused = T * ((hq + 2 * hkv) * D * 2 + (hq + hkv) * D * 2 + D * 2 + 64 + cache);
  b.cache = T * (2 * hkv * D * 2 + 32 + cache);
  return b;
}

int run(int argc, char** argv) {
  std::string out_path = "gpu_bench.json";
  bool quick = false;
  bool profile = false;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--out") == 0 && i + 1 < argc) out_path = argv[++i];
    if (std::strcmp(argv[i], "--quick") == 0) quick = true;
    // One eager launch of each kernel at Qwen3-8B, T=32768, bf16 and fp8, for Nsight Compute
    // (bench/run_on_gpu.sh profile): no graphs, no timing.
    if (std::strcmp(argv[i], "--profile") == 0) profile = true;
  }
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
  GraphRunner graph_for_copy;

  // ---- copy bandwidth: 2 GiB device-to-device, read + write bytes --------------------------
  double copy_gbps = 0.0;
  {
    const int64_t bytes = int64_t{2} << 30;
    DeviceMem a(bytes), b(bytes);
    fill_device_bytes(a.p, 0x3C, bytes, nullptr);
    synchronize();
    EventTimer t;
    std::vector<double> s;
    for (int r = 0; r < kRepeats; ++r) {
      t.start(nullptr);
      copy_device_to_device(b.p, a.p, bytes, nullptr);
      t.stop(nullptr);
      s.push_back(2.0 * static_cast<double>(bytes) / (static_cast<double>(t.elapsed_ms()) * 1e6));
    }
    std::sort(s.begin(), s.end());
    copy_gbps = s[s.size() / 2];
    std::printf("copy bandwidth (2 GiB D2D, read+write): %.0f GB/s\n", copy_gbps);
  }
  report["copy_gbps"] = copy_gbps;
  report["rows"] = nlohmann::json::array();

  const int64_t cold_span_bytes = 4 * info.l2_cache_bytes + (64 << 20);
  Prng rng = Prng::stream(seed, "bench");
  std::printf("%-15s %6s %4s %-5s %-22s %10s %8s %6s\n", "shape", "T", "kv", "L2", "kernel",
              "us/call", "GB/s", "%copy");
  for (const Shape& sh : kShapes) {
    if ((quick || profile) && std::strcmp(sh.name, "qwen3-8b") != 0) continue;
    const int64_t width = (sh.hq + 2 * sh.hkv) * sh.d;
    // One big qkv, cos/sin, positions and slots per shape; smaller T use row windows of it.
    // Rows beyond kMaxTokens give cold sets their own memory.
    const int64_t rows_total = kMaxTokens * 2;
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
    // One page per row is enough for both slot patterns (decode uses a page per token).
    const int64_t num_blocks = rows_total;
    const std::vector<int64_t> prefill_h = prefill_slots(rows_total, rng);
    const std::vector<int64_t> decode_h = decode_slots(rows_total, num_blocks, rng);
    DeviceMem pos(rows_total * 8), prefill_dev(rows_total * 8), decode_dev(rows_total * 8);
    copy_to_device(pos.p, pos_h.data(), rows_total * 8);
    copy_to_device(prefill_dev.p, prefill_h.data(), rows_total * 8);
    copy_to_device(decode_dev.p, decode_h.data(), rows_total * 8);
    for (bool fp8 : {false, true}) {
      const int64_t elt = fp8 ? 1 : 2;
      const int64_t cache_elems = num_blocks * sh.hkv * sh.d * kBlockSize;
      DeviceMem kc(cache_elems * elt), vc(cache_elems * elt);
      DeviceMem ks(num_blocks * sh.hkv * kBlockSize * 4), vs(num_blocks * sh.hkv * kBlockSize * 4);
      CacheParams cache;
      cache.k_cache = kc.p;
      cache.v_cache = vc.p;
      cache.k_scale = static_cast<float*>(ks.p);
      cache.v_scale = static_cast<float*>(vs.p);
      cache.num_blocks = num_blocks;
      cache.block_size = kBlockSize;
      cache.x = 16 / elt;
      cache.type = fp8 ? CacheType::kFp8E4M3FN : CacheType::kActivation;
      cache.v_shuffle = true;
      for (int64_t T : kTokens) {
      if (profile && T != kMaxTokens) continue;
      for (const SlotPattern pattern : {SlotPattern::kPrefill, SlotPattern::kDecode}) {
        const bool decode = pattern == SlotPattern::kDecode;
        // Decode slots: Qwen3-8B at T = 4096 and 32768 (issue 13's row), fused and cache writer.
        if (decode && (std::strcmp(sh.name, "qwen3-8b") != 0 || T < 4096)) continue;
        const DeviceMem& slots = decode ? decode_dev : prefill_dev;
        const char* pattern_name = decode ? "decode" : "prefill";
        const Config cfg{sh, T, fp8};
        const Bytes bytes = decode ? sector_floor_bytes(cfg) : min_bytes(cfg);
        const int64_t set_bytes = static_cast<int64_t>(bytes.fused);
        const int64_t sets_cold = std::clamp<int64_t>(cold_span_bytes / std::max<int64_t>(set_bytes, 1) + 1, 1,
                                                      rows_total / T);
        auto qkv_at = [&](int s) {
          return static_cast<uint16_t*>(qkv.p) + static_cast<int64_t>(s) * T * width;
        };
        auto fused_params = [&](int s) {
          FusedParams p;
          p.qkv = qkv_at(s);
          p.q_weight = qw.p;
          p.k_weight = kw.p;
          p.cos_sin = cos_sin.p;
          p.positions = static_cast<int64_t*>(pos.p) + s * T;
          p.slots = static_cast<int64_t*>(slots.p) + s * T;
          p.cache = cache;
          p.num_tokens = T;
          p.num_heads_q = sh.hq;
          p.num_heads_kv = sh.hkv;
          p.head_dim = sh.d;
          p.rotary_dim = sh.d;
          return p;
        };
        auto heads = [&](int s, int64_t head0) {
          return HeadsView{qkv_at(s) + head0 * sh.d, width, sh.d};
        };
        auto rms = [&](int s, bool q, void* st) {
          RmsNormParams p;
          p.in = p.out = heads(s, q ? 0 : sh.hq);
          p.weight = q ? qw.p : kw.p;
          p.num_tokens = T;
          p.num_heads = q ? sh.hq : sh.hkv;
          p.head_dim = sh.d;
          launch_rms_norm(p, st);
        };
        auto rotary = [&](int s, void* st) {
          RotaryParams p;
          p.q = heads(s, 0);
          p.k = heads(s, sh.hq);
          p.cos_sin = cos_sin.p;
          p.positions = static_cast<int64_t*>(pos.p) + s * T;
          p.num_tokens = T;
          p.num_heads_q = sh.hq;
          p.num_heads_kv = sh.hkv;
          p.head_dim = sh.d;
          p.rotary_dim = sh.d;
          launch_rotary(p, st);
        };
        auto cache_write = [&](int s, void* st) {
          if (fp8) {
            PerTokenQuantParams p;
            p.key = heads(s, sh.hq);
            p.value = heads(s, sh.hq + sh.hkv);
            p.slots = static_cast<int64_t*>(slots.p) + s * T;
            p.cache = cache;
            p.num_tokens = T;
            p.num_heads_kv = sh.hkv;
            p.head_dim = sh.d;
            launch_per_token_quant_cache(p, st);
          } else {
            ReshapeCacheParams p;
            p.key = heads(s, sh.hq);
            p.value = heads(s, sh.hq + sh.hkv);
            p.slots = static_cast<int64_t*>(slots.p) + s * T;
            p.cache = cache;
            p.num_tokens = T;
            p.num_heads_kv = sh.hkv;
            p.head_dim = sh.d;
            launch_reshape_and_cache(p, st);
          }
        };
        auto nonfused = [&](int s, void* st) {
          rms(s, true, st);
          rms(s, false, st);
          rotary(s, st);
          cache_write(s, st);
        };
        struct Kernel {
          const char* name;
          double bytes;
          std::function<void(int, void*)> fn;
          bool eager = false;  // timed without a graph (host work per call included), warm only
        };
        std::vector<Kernel> kernels = {
            {"fused", bytes.fused, [&](int s, void* st) { launch_fused_qk_norm_rope_cache(fused_params(s), st); }},
            {fp8 ? "per_token_quant_cache" : "reshape_and_cache", bytes.cache, cache_write},
        };
        if (!decode) {
          kernels.push_back({"rms_norm_q", bytes.rms_q, [&](int s, void* st) { rms(s, true, st); }});
          kernels.push_back({"rms_norm_k", bytes.rms_k, [&](int s, void* st) { rms(s, false, st); }});
          kernels.push_back({"rotary", bytes.rotary, rotary});
          kernels.push_back({"nonfused_chain", bytes.nonfused, nonfused});
        }
        if (T >= 1024) {
          // AITER's own thread mapping (the reference-mapping kernel), same bits, for the ratio.
          kernels.push_back({"fused_reference_mapping", bytes.fused, [&](int s, void* st) {
                               FusedParams p = fused_params(s);
                               p.mapping = KernelMapping::kReference;
                               launch_fused_qk_norm_rope_cache(p, st);
                             }});
        }
        // Fallback policies once the fused kernel is known to fail (Qwen3-8B only; issue 8).
        const bool policies = !decode && std::strcmp(sh.name, "qwen3-8b") == 0;
        const int64_t qkv_bytes = T * width * 2;
        const int64_t qk_row_bytes = (sh.hq + sh.hkv) * sh.d * 2;
        auto failed_attempt = [] {
          // What the fused op costs when it is unavailable: it raises before launching.
          try {
            throw KernelError(FailureClass::kUnavailable, "fused_qk_norm_rope_cache_quant_shuffle",
                              "module not built (CK-free)", true);
          } catch (const KernelError&) {
          }
        };
        if (policies) {
          kernels.push_back({"policy_nonfused_alone", bytes.nonfused, nonfused, true});
          kernels.push_back({"policy_pr279", bytes.nonfused, [&](int s, void* st) {
                               copy_device_to_device(qkv_backup.p, qkv_at(s), qkv_bytes, st);
                               failed_attempt();
                               copy_device_to_device(qkv_at(s), qkv_backup.p, qkv_bytes, st);
                               nonfused(s, st);
                             }, true});
          bool sticky_failed = false;  // sticky: the first failure is remembered, no retries
          kernels.push_back({"policy_sticky", bytes.nonfused, [&, sticky_failed](int s, void* st) mutable {
                               if (!sticky_failed) {
                                 failed_attempt();
                                 sticky_failed = true;
                               }
                               nonfused(s, st);
                             }, true});
          kernels.push_back({"policy_qk_slice_backup", bytes.nonfused, [&](int s, void* st) {
                               copy_device_2d(qkv_backup.p, qk_row_bytes, qkv_at(s), width * 2,
                                              qk_row_bytes, T, st);
                               failed_attempt();
                               copy_device_2d(qkv_at(s), width * 2, qkv_backup.p, qk_row_bytes,
                                              qk_row_bytes, T, st);
                               nonfused(s, st);
                             }, true});
          kernels.push_back({"policy_out_of_place", bytes.nonfused, [&](int s, void* st) {
                               failed_attempt();
                               nonfused(s, st);
                             }, true});
          kernels.push_back({"healthy_pr279_backup_plus_fused", bytes.fused, [&](int s, void* st) {
                               copy_device_to_device(qkv_backup.p, qkv_at(s), qkv_bytes, st);
                               launch_fused_qk_norm_rope_cache(fused_params(s), st);
                             }, true});
          kernels.push_back({"healthy_fused_eager", bytes.fused, [&](int s, void* st) {
                               launch_fused_qk_norm_rope_cache(fused_params(s), st);
                             }, true});
        }
        if (profile) {
          for (const Kernel& k : kernels) {
            if (k.eager) continue;
            std::printf("profile launch: %s %s %s\n", k.name, fp8 ? "fp8" : "bf16", pattern_name);
            k.fn(0, nullptr);
          }
          synchronize();
          continue;
        }
        for (const Kernel& k : kernels) {
          for (bool cold : {false, true}) {
            if (k.eager && cold) continue;
            if (k.eager) {
              const double us = time_us_eager(k.fn);
              const double gbps = k.bytes / (us * 1e3);
              report["rows"].push_back({{"shape", sh.name}, {"tokens", T}, {"kv", fp8 ? "fp8_e4m3fn" : "bf16"},
                                        {"slots", pattern_name},
                                        {"kernel", k.name}, {"cold", false}, {"eager", true},
                                        {"us_per_call", us}, {"min_bytes", k.bytes}, {"gbps", gbps},
                                        {"fraction_of_copy", gbps / copy_gbps}});
              std::printf("%-15s %6lld %4s %-5s %-22s %10.2f %8.0f %5.0f%% (eager)\n", sh.name,
                          static_cast<long long>(T), fp8 ? "fp8" : "bf16", "warm", k.name, us, gbps,
                          100.0 * gbps / copy_gbps);
              continue;
            }
            const int sets = cold ? static_cast<int>(std::min<int64_t>(sets_cold, 64)) : 1;
            const int calls = cold ? sets : 8;  // warm: 8 calls on one set per graph
            GraphRunner g;
            const double us = time_us_per_call(g, calls, [&](int s, void* st) { k.fn(cold ? s : 0, st); });
            const double gbps = k.bytes / (us * 1e3);
            nlohmann::json row = {{"shape", sh.name}, {"tokens", T}, {"kv", fp8 ? "fp8_e4m3fn" : "bf16"},
                                  {"slots", pattern_name},
                                  {"kernel", k.name}, {"cold", cold}, {"sets", sets},
                                  {"us_per_call", us}, {"min_bytes", k.bytes}, {"gbps", gbps},
                                  {"fraction_of_copy", gbps / copy_gbps}};
            report["rows"].push_back(row);
            std::printf("%-15s %6lld %4s %-5s %-7s %-24s %10.2f %8.0f %5.0f%%\n", sh.name,
                        static_cast<long long>(T), fp8 ? "fp8" : "bf16", cold ? "cold" : "warm",
                        pattern_name, k.name, us, gbps, 100.0 * gbps / copy_gbps);
          }
        }
      }
      }
    }
    std::fflush(stdout);
  }
  std::FILE* f = std::fopen(out_path.c_str(), "w");
  if (f == nullptr) return 1;
  const std::string text = report.dump(1);
  std::fwrite(text.data(), 1, text.size(), f);
  std::fclose(f);
  std::printf("wrote %s\n", out_path.c_str());
  return 0;
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
