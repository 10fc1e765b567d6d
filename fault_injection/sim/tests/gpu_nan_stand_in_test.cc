// Goal: `campaign --cross-backend` gives one digest per seed even when the device under test makes
// NaNs the way an NVIDIA GPU does (every arithmetic NaN is the canonical +NaN: bf16/fp16 0x7FFF,
// fp32 0x7FFFFFFF, e4m3fn 0x7F; measured on an H200, where the CPU reference gives 0xFFC0), and
// its checkers still pass: the NaN class of core/nan_class.h, end to end, without a GPU.
// Method: a stand-in "gpu" device (ScopedGpuStandIn) runs the CPU reference kernels and then
// rewrites every NaN in what each kernel *computed* (units it completed: normed/rotated q and k
// rows, rotated dims only for RoPE, the K cache of its slots, fp8 codes and scales), never in what
// it copied (V, a bf16 V cache, RoPE's pass-through dims). The campaign seeds include the three
// the H200 run found (874, 1104, 1334). The test also counts the NaNs the stand-in rewrote, so it
// cannot pass vacuously; with the digest's canonicalisation removed it fails (checked by hand).
#include <cstdint>
#include <cstring>
#include <memory>
#include <utility>

#include <gtest/gtest.h>

#include "core/nan_class.h"
#include "fault_injection/sim/campaign.h"
#include "fault_injection/sim/sim_device.h"
#include "kernels/common/cache_layout.h"

namespace rcsim::sim {
namespace {

int64_t g_rewritten = 0;  // NaN elements whose bits the stand-in changed, over the test

// The NVIDIA pattern of a NaN of `dtype` at p (e4m3fnuz has one NaN code: unchanged).
void gpu_nan(DType dtype, std::byte* p) {
  const auto esize = static_cast<std::size_t>(dtype_size_bytes(dtype));
  uint64_t bits = 0;
  std::memcpy(&bits, p, esize);
  if (!is_nan_bits(dtype, bits)) return;
  uint64_t gpu = bits;
  switch (dtype) {
    case DType::kBF16:
    case DType::kFP16: gpu = 0x7FFF; break;
    case DType::kFP32: gpu = 0x7FFFFFFF; break;
    case DType::kFP8E4M3FN: gpu = 0x7F; break;
    default: break;
  }
  if (gpu == bits) return;
  std::memcpy(p, &gpu, esize);
  ++g_rewritten;
}

std::byte* at(const TensorView& v, int64_t element) {
  return v.data() + element * dtype_size_bytes(v.dtype);
}
// Dims [0, dims) of row (t, h) of a [T, H, D] view.
void row(const TensorView& v, int64_t t, int64_t h, int64_t dims) {
  if (v.is_null()) return;
  for (int64_t d = 0; d < dims; ++d) gpu_nan(v.dtype, at(v, v.element_offset({t, h, d})));
}
int64_t slot_of(const TensorView& slots, int64_t t) {
  return slots.data_as<const int64_t>()[t * slots.stride(0)];
}
// Head h of one slot in the cache: K (dims [0, k_dims)), V if `v_computed`, per-token scales.
void cache_slot(const AttentionConfig& cfg, const KvCacheViews& c, VCacheLayout v_layout,
                int64_t slot, int64_t h, int64_t k_dims, bool v_computed) {
  if (slot < 0) return;
  const layout::PagedCacheShape s = cfg.cache_shape();
  const int64_t b = slot / cfg.block_size, tok = slot % cfg.block_size;
  for (int64_t d = 0; d < cfg.head_dim; ++d) {
    if (d < k_dims) gpu_nan(c.k_cache.dtype, at(c.k_cache, layout::k_xpacked_offset(s, b, h, tok, d)));
    if (v_computed) {
      const int64_t vo = v_layout == VCacheLayout::kShuffle ? layout::v_shuffle_offset(s, b, h, tok, d)
                                                            : layout::v_plain_offset(s, b, h, tok, d);
      gpu_nan(c.v_cache.dtype, at(c.v_cache, vo));
    }
  }
  for (const TensorView* scale : {&c.k_scale, &c.v_scale}) {
    if (!scale->is_null() && scale->numel() == layout::scale_elements(s)) {
      gpu_nan(DType::kFP32, at(*scale, layout::scale_offset(s, b, h, tok)));
    }
  }
}

struct NanKernels {
  KernelSet cpu;
  struct Fused final : FusedQkNormRopeCacheKernel {
    NanKernels* k;
    KernelRun run(const FusedQkNormRopeCacheArgs& a) override {
      const KernelRun r = k->cpu.fused->run(a);
      const AttentionConfig& c = a.cfg;
      const QkvViews v = split_qkv(a.qkv, c.num_heads_q, c.num_heads_kv, c.head_dim);
      const TensorView q = a.q_out.is_null() ? v.q : a.q_out;
      const TensorView kk = a.k_out.is_null() ? v.k : a.k_out;
      const int64_t heads = c.num_heads_q + 2 * c.num_heads_kv;
      const bool fp8 = is_fp8(c.kv_cache_dtype);
      for (int64_t g = 0; g < r.units_completed; ++g) {
        const int64_t t = g / heads, h = g % heads;
        if (h < c.num_heads_q) {
          row(q, t, h, c.head_dim);
        } else if (h < c.num_heads_q + c.num_heads_kv) {
          row(kk, t, h - c.num_heads_q, c.head_dim);
          cache_slot(c, a.cache, VCacheLayout::kShuffle, slot_of(a.slot_mapping, t),
                     h - c.num_heads_q, c.head_dim, false);
        } else if (fp8) {
          cache_slot(c, a.cache, VCacheLayout::kShuffle, slot_of(a.slot_mapping, t),
                     h - c.num_heads_q - c.num_heads_kv, 0, true);
        }
      }
      return r;
    }
  } fused;
  struct RopeCache final : RopeReshapeCacheKernel {
    NanKernels* k;
    KernelRun run(const RopeReshapeCacheArgs& a) override {
      const KernelRun r = k->cpu.rope_reshape_cache->run(a);
      const AttentionConfig& c = a.cfg;
      const int64_t group = c.num_heads_q / c.num_heads_kv;
      for (int64_t g = 0; g < r.units_completed; ++g) {
        const int64_t t = g / c.num_heads_q, h = g % c.num_heads_q;
        row(a.q, t, h, c.rotary_dim);
        if (h % group != 0) continue;
        row(a.k, t, h / group, c.rotary_dim);
        // fp8: K and V are divided by the static scale (computed); auto: K's rotated dims only.
        cache_slot(c, a.cache, a.v_layout, slot_of(a.slot_mapping, t), h / group,
                   a.apply_scale ? c.head_dim : c.rotary_dim, a.apply_scale);
      }
      return r;
    }
  } rope_cache;
  struct Rotary final : RotaryEmbeddingKernel {
    NanKernels* k;
    KernelRun run(const RotaryArgs& a) override {
      const KernelRun r = k->cpu.rotary->run(a);
      const int64_t hq = a.q.size(1), tq = a.q.size(0) * hq;
      for (int64_t g = 0; g < r.units_completed; ++g) {
        if (g < tq) {
          row(a.q, g / hq, g % hq, a.rotary_dim);
        } else if (!a.k.is_null()) {
          row(a.k, (g - tq) / a.k.size(1), (g - tq) % a.k.size(1), a.rotary_dim);
        }
      }
      return r;
    }
  } rotary;
  struct Norm final : RmsNormKernel {
    NanKernels* k;
    KernelRun run(const RmsNormArgs& a) override {
      const KernelRun r = k->cpu.rms_norm->run(a);
      const int64_t h = a.output.size(1);
      for (int64_t g = 0; g < r.units_completed; ++g) row(a.output, g / h, g % h, a.output.size(2));
      return r;
    }
  } norm;
  struct Cache final : ReshapeAndCacheKernel {
    NanKernels* k;
    KernelRun run(const ReshapeAndCacheArgs& a) override {
      const KernelRun r = k->cpu.reshape_and_cache->run(a);
      if (!is_fp8(a.cfg.kv_cache_dtype)) return r;  // "auto" copies K and V: bits kept
      for (int64_t t = 0; t < r.units_completed; ++t) {
        for (int64_t h = 0; h < a.cfg.num_heads_kv; ++h) {
          cache_slot(a.cfg, a.cache, a.v_layout, slot_of(a.slot_mapping, t), h, a.cfg.head_dim, true);
        }
      }
      return r;
    }
  } cache;
  struct Quant final : PerTokenQuantCacheKernel {
    NanKernels* k;
    KernelRun run(const PerTokenQuantCacheArgs& a) override {
      const KernelRun r = k->cpu.per_token_quant_cache->run(a);
      const int64_t hkv = a.cfg.num_heads_kv;
      for (int64_t g = 0; g < r.units_completed; ++g) {
        cache_slot(a.cfg, a.cache, a.v_layout, slot_of(a.slot_mapping, g / hkv), g % hkv,
                   a.cfg.head_dim, true);
      }
      return r;
    }
  } quant;

  explicit NanKernels(KernelSet base) : cpu(base) {
    fused.k = rope_cache.k = rotary.k = norm.k = cache.k = quant.k = this;
  }
  KernelSet set() {
    KernelSet s = cpu;  // memory (copies, restores): the CPU's, bit for bit
    if (cpu.fused) s.fused = &fused;
    s.rope_reshape_cache = &rope_cache;
    s.rotary = &rotary;
    s.rms_norm = &norm;
    s.reshape_and_cache = &cache;
    s.per_token_quant_cache = &quant;
    return s;
  }
};

// The CPU device with NVIDIA's NaN bits in its kernels' computed outputs.
class NvidiaNanDevice final : public SimDevice {
 public:
  KernelSet kernels() override { return kernels_.set(); }
  DeviceTensor allocate(DType dtype, std::span<const int64_t> shape, uint8_t fill) override {
    return cpu_->allocate(dtype, shape, fill);
  }
  void copy(const TensorView& src, const TensorView& dst) override { cpu_->copy(src, dst); }
  void upload(const TensorView& src, const TensorView& dst) override { cpu_->upload(src, dst); }
  TensorView host_view(const TensorView& v) override { return cpu_->host_view(v); }
  void release_host_views() override { cpu_->release_host_views(); }
  std::string_view backend_name() const override { return "gpu"; }

 private:
  std::unique_ptr<SimDevice> cpu_ = make_cpu_sim_device();
  NanKernels kernels_{cpu_->kernels()};
};

CampaignResult cross_backend_campaign(uint64_t first, uint64_t last) {
  CampaignOptions o;
  o.seed_first = first;
  o.seed_last = last;
  o.budget_seconds = 300;
  o.coverage_gate = false;
  o.cross_backend = true;
  o.overrides.campaign_shape = true;
  o.overrides.faults = "swarm";
  o.overrides.backend = "gpu";
  o.build_id = "test";
  return run_campaign(o);
}

TEST(GpuNanStandIn, CrossBackendDigestsEqualWhenTheDeviceMakesNvidiaNans) {
  const ScopedGpuStandIn stand_in([] { return std::make_unique<NvidiaNanDevice>(); });
  g_rewritten = 0;
  int64_t runs = 0;
  for (auto [first, last] : {std::pair<uint64_t, uint64_t>{874, 874}, {1104, 1104}, {1334, 1334},
                             {0, 29}}) {
    const CampaignResult r = cross_backend_campaign(first, last);
    runs += r.runs;
    EXPECT_EQ(r.cross_checked, r.runs);
    for (const CampaignFailure& f : r.failures) {
      ADD_FAILURE() << "seed " << f.seed << ": " << f.message << "\n  repro (GPU): rcsim replay "
                    << f.token << " --backend gpu";
    }
  }
  EXPECT_EQ(runs, 33);
  // The stand-in really produced NaN bits the CPU does not: otherwise this test proves nothing.
  EXPECT_GT(g_rewritten, 0) << "no computed NaN was rewritten; pick seeds whose faults make NaNs";
  std::printf("stand-in rewrote %lld NaN elements over %lld cross-checked runs\n",
              static_cast<long long>(g_rewritten), static_cast<long long>(runs));
}

}  // namespace
}  // namespace rcsim::sim
