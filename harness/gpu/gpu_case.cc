// Differential harness (see gpu_case.h).
#include "harness/gpu/gpu_case.h"

#include <cmath>
#include <cstring>

#include <fmt/format.h>

#include "core/check.h"
#include "core/prng.h"
#include "kernels/cpu/nonfused_reference.h"
#include "kernels/common/numeric.h"

namespace rcsim::gpu {
namespace {

void fill_activation(HostTensor& t, Prng& rng, float lo, float hi) {
  auto bits = t.as<uint16_t>();
  for (auto& b : bits) b = float_to_activation(rng.nonzero_float(lo, hi), t.dtype());
}

// Trained-like RMSNorm weight: 1 + 0.1 * N(0, 1), N(0, 1) as the Irwin-Hall sum of 12 uniforms
// minus 6 (only additions: the same bits on every platform, unlike a libm-based Box-Muller).
void fill_realistic_weight(HostTensor& t, Prng& rng) {
  auto bits = t.as<uint16_t>();
  for (auto& b : bits) {
    float sum = 0.0f;
    for (int i = 0; i < 12; ++i) sum += rng.unit_float();
    b = float_to_activation(1.0f + 0.1f * (sum - 6.0f), t.dtype());
  }
}

int64_t partner_dim(int64_t d, int64_t rot, bool neox) {
  if (d >= rot) return d;
  if (neox) return d < rot / 2 ? d + rot / 2 : d - rot / 2;
  return d % 2 == 0 ? d + 1 : d - 1;
}

// Element index -> readable coordinates for the tensors of a case.
std::string describe_element(const std::string& name, int64_t e, const AttentionConfig& cfg) {
  const int64_t D = cfg.head_dim;
  if (name == "qkv") {
    const int64_t width = cfg.qkv_width();
    const int64_t t = e / width, col = e % width;
    return fmt::format("(token {}, head {}, dim {})", t, col / D, col % D);
  }
  if (name == "k_scale" || name == "v_scale") {
    const int64_t bs = cfg.block_size, h = cfg.num_heads_kv;
    return fmt::format("(block {}, kv head {}, token-in-block {})", e / (h * bs), (e / bs) % h,
                       e % bs);
  }
  const int64_t per_block_head = D * cfg.block_size;
  return fmt::format("(block {}, kv head {}, element {} of the page)", e / (cfg.num_heads_kv * per_block_head),
                     (e / per_block_head) % cfg.num_heads_kv, e % per_block_head);
}

double to_double(uint16_t bits, DType t) { return activation_to_float(bits, t); }

// Distance in representable steps between two activation values (sign-magnitude -> ordered).
int64_t ulp_distance(uint16_t a, uint16_t b) {
  auto ordered = [](uint16_t x) -> int64_t {
    return (x & 0x8000u) ? -static_cast<int64_t>(x & 0x7FFFu) : static_cast<int64_t>(x);
  };
  const int64_t d = ordered(a) - ordered(b);
  return d < 0 ? -d : d;
}

int ulp_bin(int64_t ulp) {
  if (ulp <= 2) return static_cast<int>(ulp);
  if (ulp <= 4) return 3;
  if (ulp <= 8) return 4;
  if (ulp <= 16) return 5;
  if (ulp <= 64) return 6;
  return 7;
}

}  // namespace

std::string CaseShape::describe() const {
  return fmt::format("T={} Hq={} Hkv={} D={} rot={} {} kv={} act={}{}", num_tokens, num_heads_q,
                     num_heads_kv, head_dim, rotary_dim == 0 ? head_dim : rotary_dim,
                     is_neox ? "neox" : "gptj", kv_cache_dtype_name(kv), dtype_name(act),
                     pair_symmetric_weights ? " symmetric-w" : "");
}

namespace {

// The attention config of a case: its shape, 16-token pages, 4096 positions, and pages for the
// tokens (prefill: one partly used page per sequence at most; scattered: the tokens plus spares).
AttentionConfig case_config(const CaseShape& s) {
  AttentionConfig cfg;
  cfg.num_heads_q = s.num_heads_q;
  cfg.num_heads_kv = s.num_heads_kv;
  cfg.head_dim = s.head_dim;
  cfg.rotary_dim = s.rotary_dim == 0 ? s.head_dim : s.rotary_dim;
  cfg.is_neox = s.is_neox;
  cfg.act_dtype = s.act;
  cfg.kv_cache_dtype = s.kv;
  cfg.block_size = 16;
  cfg.max_position = 4096;
  const int64_t spare_slots = s.num_tokens / 4 + 16;
  // Prefill sequences start on fresh pages: at most one partly used page per sequence.
  const int64_t prefill_pages = s.num_tokens + 2;
  cfg.num_blocks = s.num_blocks > 0 ? s.num_blocks
                   : s.slot_layout == SlotLayout::kPrefill
                       ? prefill_pages
                       : (s.num_tokens + spare_slots + cfg.block_size - 1) / cfg.block_size;
  validate_attention_config(cfg);
  return cfg;
}

// q/k RMSNorm weights (realistic or the stress form), then, when the shape asks for it, each
// rotation pair's partner made equal to the lower dim of the pair.
void fill_norm_weights(HostCase& c, const CaseShape& s, Prng& rng) {
  const int64_t D = s.head_dim;
  c.q_weight = HostTensor(s.act, {D});
  c.k_weight = HostTensor(s.act, {D});
  if (s.stress_random_sign_weights) {
    fill_activation(c.q_weight, rng, 0.25f, 2.0f);
    fill_activation(c.k_weight, rng, 0.25f, 2.0f);
  } else {
    fill_realistic_weight(c.q_weight, rng);
    fill_realistic_weight(c.k_weight, rng);
  }
  if (s.pair_symmetric_weights) {
    for (HostTensor* w : {&c.q_weight, &c.k_weight}) {
      auto bits = w->as<uint16_t>();
      for (int64_t d = 0; d < D; ++d) {
        const int64_t p = partner_dim(d, c.cfg.rotary_dim, c.cfg.is_neox);
        if (p > d) bits[static_cast<std::size_t>(p)] = bits[static_cast<std::size_t>(d)];
      }
    }
  }
}

// A real RoPE table, as ATOM builds it: inv_freq = theta^(-2j/rot), angle = p * inv_freq,
// cos | sin rounded to the activation dtype.
HostTensor rope_table(const CaseShape& s, const AttentionConfig& cfg) {
  const int64_t rot = cfg.rotary_dim, half = rot / 2;
  HostTensor cos_sin(s.act, {cfg.max_position, rot});
  auto cs = cos_sin.as<uint16_t>();
  for (int64_t p = 0; p < cfg.max_position; ++p) {
    for (int64_t j = 0; j < half; ++j) {
      const double inv_freq = std::pow(s.rope_theta, -2.0 * static_cast<double>(j) / static_cast<double>(rot));
      const double angle = static_cast<double>(p) * inv_freq;
      cs[static_cast<std::size_t>(p * rot + j)] =
          float_to_activation(static_cast<float>(std::cos(angle)), s.act);
      cs[static_cast<std::size_t>(p * rot + half + j)] =
          float_to_activation(static_cast<float>(std::sin(angle)), s.act);
    }
  }
  return cos_sin;
}

// 0..num_slots-1 in a random order (Fisher-Yates). Drawn for every layout, prefill included, so
// that the draws after it stay where they are.
std::vector<int64_t> shuffled_slots(int64_t num_slots, Prng& rng) {
  std::vector<int64_t> order(static_cast<std::size_t>(num_slots));
  for (int64_t i = 0; i < num_slots; ++i) order[static_cast<std::size_t>(i)] = i;
  for (int64_t i = num_slots - 1; i > 0; --i) {
    const auto j = static_cast<std::size_t>(rng.range(0, i));
    std::swap(order[static_cast<std::size_t>(i)], order[j]);
  }
  return order;
}

// The slot of each token (see SlotLayout): scattered takes distinct slots from the shuffled range;
// about one token in eight (scattered) or sixteen (prefill) is padded with -1.
HostTensor case_slots(const CaseShape& s, const AttentionConfig& cfg, Prng& rng) {
  const int64_t T = s.num_tokens;
  const int64_t num_slots = cfg.num_slots();
  const std::vector<int64_t> order = shuffled_slots(num_slots, rng);
  HostTensor slot_tensor(DType::kI64, {T});
  auto slots = slot_tensor.as<int64_t>();
  RCSIM_ASSERT(T <= num_slots, "case has more tokens than slots");
  if (s.slot_layout == SlotLayout::kPrefill) {
    int64_t page = 0, length = 0, in_seq = 0, next = 0;
    for (int64_t t = 0; t < T; ++t) {
      if (in_seq == length) {  // a new sequence on a fresh page
        page = next;
        length = rng.range(1, 3 * cfg.block_size);
        in_seq = 0;
        next = page + (length + cfg.block_size - 1) / cfg.block_size;
      }
      const int64_t slot = page * cfg.block_size + in_seq++;
      slots[static_cast<std::size_t>(t)] = rng.chance(1, 16) ? -1 : slot;
    }
    RCSIM_ASSERT(next <= cfg.num_blocks, "prefill case needs {} pages, has {}", next, cfg.num_blocks);
  } else {
    for (int64_t t = 0; t < T; ++t) {
      slots[static_cast<std::size_t>(t)] = rng.chance(1, 8) ? -1 : order[static_cast<std::size_t>(t)];
    }
  }
  return slot_tensor;
}

// K and V caches (and fp8 scales) filled with the sentinel, so that untouched memory is checked.
void make_sentinel_caches(HostCase& c, const CaseShape& s) {
  const AttentionConfig& cfg = c.cfg;
  const DType cdt = cfg.cache_storage_dtype();
  const int64_t x = cfg.x(), nb = cfg.num_blocks, h = cfg.num_heads_kv, bs = cfg.block_size;
  const int64_t D = s.head_dim;
  c.k_cache = HostTensor(cdt, {nb, h, D / x, bs, x});
  c.v_cache = HostTensor(cdt, {nb, h, bs / x, D, x});
  c.k_cache.fill_pattern(kCacheSentinelByte);
  c.v_cache.fill_pattern(kCacheSentinelByte);
  if (is_fp8(s.kv)) {
    c.k_scale = HostTensor(DType::kFP32, {nb, h, bs});
    c.v_scale = HostTensor(DType::kFP32, {nb, h, bs});
    c.k_scale.fill_pattern(kCacheSentinelByte);
    c.v_scale.fill_pattern(kCacheSentinelByte);
  }
}

}  // namespace

// The draws from the case's stream come in a fixed order (qkv, weights, positions, slot shuffle,
// slot padding): the same seed gives the same case on every platform.
HostCase make_case(const CaseShape& s, uint64_t seed) {
  HostCase c;
  c.cfg = case_config(s);
  const AttentionConfig& cfg = c.cfg;
  Prng rng = Prng::stream(seed, "gpu-case");
  const int64_t T = s.num_tokens;
  c.qkv = HostTensor(s.act, {T, cfg.qkv_width()});
  fill_activation(c.qkv, rng, 0.05f, 4.0f);
  fill_norm_weights(c, s, rng);
  c.cos_sin = rope_table(s, cfg);
  c.positions = HostTensor(DType::kI64, {T});
  for (auto& p : c.positions.as<int64_t>()) p = rng.range(0, cfg.max_position - 1);
  c.slots = case_slots(s, cfg, rng);
  make_sentinel_caches(c, s);
  return c;
}

namespace {
// The V cache memory seen with the shape its layout declares (same bytes, contiguous).
TensorView v_view_as(const TensorView& v, VCacheLayout layout, const AttentionConfig& cfg) {
  const int64_t nb = cfg.num_blocks, h = cfg.num_heads_kv, bs = cfg.block_size, d = cfg.head_dim,
                x = cfg.x();
  if (layout == VCacheLayout::kShuffle) {
    const std::array<int64_t, 5> shape{nb, h, bs / x, d, x};
    return TensorView::contiguous(v.base, v.dtype, shape, v.device);
  }
  const std::array<int64_t, 4> shape{nb, h, d, bs};
  return TensorView::contiguous(v.base, v.dtype, shape, v.device);
}
}  // namespace

KvCacheViews HostCase::cache_views(VCacheLayout layout) const {
  KvCacheViews v;
  v.k_cache = k_cache.view();
  v.v_cache = v_view_as(v_cache.view(), layout, cfg);
  if (!k_scale.empty()) {
    v.k_scale = k_scale.view();
    v.v_scale = v_scale.view();
  }
  return v;
}

FusedQkNormRopeCacheArgs HostCase::fused_args() const {
  FusedQkNormRopeCacheArgs a;
  a.cfg = cfg;
  a.qkv = qkv.view();
  a.q_weight = q_weight.view();
  a.k_weight = k_weight.view();
  a.cos_sin_cache = cos_sin.view();
  a.positions = positions.view();
  a.slot_mapping = slots.view();
  a.cache = cache_views(VCacheLayout::kShuffle);
  return a;
}

DeviceCase upload_case(const HostCase& h) {
  DeviceCase d;
  d.cfg = h.cfg;
  d.qkv = upload(h.qkv);
  d.q_weight = upload(h.q_weight);
  d.k_weight = upload(h.k_weight);
  d.cos_sin = upload(h.cos_sin);
  d.positions = upload(h.positions);
  d.slots = upload(h.slots);
  d.k_cache = upload(h.k_cache);
  d.v_cache = upload(h.v_cache);
  if (!h.k_scale.empty()) {
    d.k_scale = upload(h.k_scale);
    d.v_scale = upload(h.v_scale);
  }
  return d;
}

KvCacheViews DeviceCase::cache_views(VCacheLayout layout) const {
  KvCacheViews v;
  v.k_cache = k_cache->view();
  v.v_cache = v_view_as(v_cache->view(), layout, cfg);
  if (k_scale) {
    v.k_scale = k_scale->view();
    v.v_scale = v_scale->view();
  }
  return v;
}

FusedQkNormRopeCacheArgs DeviceCase::fused_args() const {
  FusedQkNormRopeCacheArgs a;
  a.cfg = cfg;
  a.qkv = qkv->view();
  a.q_weight = q_weight->view();
  a.k_weight = k_weight->view();
  a.cos_sin_cache = cos_sin->view();
  a.positions = positions->view();
  a.slot_mapping = slots->view();
  a.cache = cache_views(VCacheLayout::kShuffle);
  return a;
}

HostCase DeviceCase::download_all() const {
  HostCase h;
  h.cfg = cfg;
  h.qkv = download(qkv->view());
  h.q_weight = download(q_weight->view());
  h.k_weight = download(k_weight->view());
  h.cos_sin = download(cos_sin->view());
  h.positions = download(positions->view());
  h.slots = download(slots->view());
  h.k_cache = download(k_cache->view());
  h.v_cache = download(v_cache->view());
  if (k_scale) {
    h.k_scale = download(k_scale->view());
    h.v_scale = download(v_scale->view());
  }
  return h;
}

void run_nonfused(const KernelSet& kernels, FallbackOrder order, const AttentionConfig& cfg,
                  const TensorView& qkv, const TensorView& q_weight, const TensorView& k_weight,
                  const TensorView& cos_sin, const TensorView& positions, const TensorView& slots,
                  const KvCacheViews& cache) {
  const QkvViews v = split_qkv(qkv, cfg.num_heads_q, cfg.num_heads_kv, cfg.head_dim);
  cpu::NonFusedArgs a;
  a.cfg = cfg;
  a.q = v.q;
  a.k = v.k;
  a.v = v.v;
  a.q_weight = q_weight;
  a.k_weight = k_weight;
  a.cos_sin_cache = cos_sin;
  a.positions = positions;
  a.slot_mapping = slots;
  a.cache = cache;
  a.v_layout = VCacheLayout::kShuffle;
  cpu::run_nonfused(kernels, order, a);
}

ByteDiff compare_bytes(const HostTensor& got, const HostTensor& want, const std::string& name,
                       const AttentionConfig& cfg) {
  ByteDiff r;
  RCSIM_ASSERT(got.dtype() == want.dtype() && got.numel() == want.numel(),
               "compare_bytes({}): different tensors", name);
  const int64_t esize = dtype_size_bytes(got.dtype());
  if (std::memcmp(got.data(), want.data(), static_cast<std::size_t>(got.bytes())) == 0) return r;
  for (int64_t e = 0; e < got.numel(); ++e) {
    const std::byte* a = got.data() + e * esize;
    const std::byte* b = want.data() + e * esize;
    if (std::memcmp(a, b, static_cast<std::size_t>(esize)) == 0) continue;
    if (r.first_bad_element < 0) {
      uint64_t ga = 0, wb = 0;
      std::memcpy(&ga, a, static_cast<std::size_t>(esize));
      std::memcpy(&wb, b, static_cast<std::size_t>(esize));
      r.first_bad_element = e;
      r.first_bad = fmt::format("{} {}: got 0x{:x} want 0x{:x}", name,
                                describe_element(name, e, cfg), ga, wb);
    }
    ++r.mismatched_elements;
  }
  return r;
}

NumericDiff compare_qk(const HostTensor& got, const HostTensor& want, const AttentionConfig& cfg) {
  NumericDiff r;
  const int64_t T = got.shape()[0], width = cfg.qkv_width(), D = cfg.head_dim;
  const int64_t qk_cols = (cfg.num_heads_q + cfg.num_heads_kv) * D;
  auto g = got.as<uint16_t>();
  auto w = want.as<uint16_t>();
  double dot = 0.0, ng = 0.0, nw = 0.0;
  for (int64_t t = 0; t < T; ++t) {
    for (int64_t col = 0; col < qk_cols; ++col) {
      const auto i = static_cast<std::size_t>(t * width + col);
      const double a = to_double(g[i], cfg.act_dtype), b = to_double(w[i], cfg.act_dtype);
      ++r.elements;
      dot += a * b;
      ng += a * a;
      nw += b * b;
      const bool nan = std::isnan(a) || std::isnan(b);
      const int64_t ulp = nan ? (int64_t{1} << 20) : ulp_distance(g[i], w[i]);
      r.ulp_histogram[static_cast<std::size_t>(ulp_bin(ulp))]++;
      if (g[i] == w[i]) continue;
      ++r.mismatches;
      if (r.first_bad_token < 0) {
        r.first_bad_token = t;
        r.first_bad_head = col / D;
        r.first_bad_dim = col % D;
      }
      r.max_ulp = std::max(r.max_ulp, ulp);
      r.max_abs_error = std::max(r.max_abs_error, nan ? INFINITY : std::fabs(a - b));
    }
  }
  r.cosine_similarity = (ng > 0 && nw > 0) ? dot / std::sqrt(ng * nw) : 0.0;
  return r;
}

const char* ulp_bin_label(int bin) {
  static constexpr const char* kLabels[kUlpHistogramBins] = {"0",    "1",     "2",     "3-4",
                                                            "5-8",  "9-16",  "17-64", ">64"};
  return (bin >= 0 && bin < kUlpHistogramBins) ? kLabels[bin] : "?";
}

}  // namespace rcsim::gpu
