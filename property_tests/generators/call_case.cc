// Generators and tensor builders for one rope_cache call (see call_case.h).
#include "property_tests/generators/call_case.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <mutex>
#include <tuple>
#include <sstream>

#include "core/check.h"
#include "core/limits.h"
#include "core/prng.h"
#include "core/rope_table.h"
#include "kernels/common/numeric.h"
#include "property_tests/generators/shapes.h"
#include "property_tests/harness/prop_harness.h"

namespace rcsim::props {

std::string_view weight_class_name(WeightClass c) {
  return c == WeightClass::kAsymmetric ? "asymmetric" : "pair-symmetric";
}
std::string_view input_class_name(InputClass c) {
  switch (c) {
    case InputClass::kRandomNonZero: return "random-nonzero";
    case InputClass::kSpecialValues: return "nan-inf-negzero-subnormal";
    case InputClass::kZeroHead: return "zero-head";
    case InputClass::kEdgeMagnitudes: return "edge-magnitudes";
  }
  return "?";
}
std::string_view slot_pattern_name(SlotPattern p) {
  switch (p) {
    case SlotPattern::kRandomSubset: return "random-subset";
    case SlotPattern::kRunAcrossPage: return "run-across-page";
    case SlotPattern::kTrailingPadding: return "trailing-padding";
  }
  return "?";
}
std::string_view position_pattern_name(PositionPattern p) {
  switch (p) {
    case PositionPattern::kRandom: return "random";
    case PositionPattern::kPrefillRun: return "prefill-run";
    case PositionPattern::kBoundary: return "0-or-max";
  }
  return "?";
}
std::string_view token_class_name(TokenClass c) {
  switch (c) {
    case TokenClass::kOne: return "T=1";
    case TokenClass::kSmall: return "T=2..16";
    case TokenClass::kPageBoundary: return "T=page-edge";
    case TokenClass::kAiterGrid: return "T=aiter-grid";
  }
  return "?";
}

int64_t CallCase::mapped_tokens() const {
  return static_cast<int64_t>(std::count_if(slots.begin(), slots.end(),
                                            [](int64_t s) { return s >= 0; }));
}

std::string CallCase::describe() const {
  std::ostringstream os;
  os << shape_family << " Hq=" << cfg.num_heads_q << " Hkv=" << cfg.num_heads_kv
     << " D=" << cfg.head_dim << " rot=" << cfg.rotary_dim << (cfg.is_neox ? " neox" : " gptj")
     << " " << dtype_name(cfg.act_dtype) << " kv=" << kv_cache_dtype_name(cfg.kv_cache_dtype)
     << (cfg.amax_floor ? " amax-floor" : "") << " BS=" << cfg.block_size
     << " NB=" << cfg.num_blocks << " max_pos=" << cfg.max_position << " eps=" << cfg.eps
     << " T=" << num_tokens << " (" << token_class_name(token_class) << ")"
     << " slots=" << slot_pattern_name(slot_pattern) << " positions="
     << position_pattern_name(position_pattern) << " weights=" << weight_class_name(weight_class)
     << " inputs=" << input_class_name(input_class) << " data_seed=" << data_seed;
  // Short batches print in full: a shrunk counterexample must be readable without a debugger.
  if (num_tokens <= 8) {
    os << " pos=[";
    for (std::size_t i = 0; i < positions.size(); ++i) os << (i ? "," : "") << positions[i];
    os << "] slot=[";
    for (std::size_t i = 0; i < slots.size(); ++i) os << (i ? "," : "") << slots[i];
    os << "]";
  }
  return os.str();
}

void showValue(const CallCase& c, std::ostream& os) { os << c.describe(); }

namespace {

// T distinct slots out of [0, total): partial Fisher-Yates over an index vector.
std::vector<int64_t> random_distinct_slots(Prng& prng, int64_t total, int64_t count) {
  RCSIM_ASSERT(count <= total, "{} slots out of {}", count, total);
  std::vector<int64_t> all(static_cast<std::size_t>(total));
  for (int64_t i = 0; i < total; ++i) all[static_cast<std::size_t>(i)] = i;
  for (int64_t i = 0; i < count; ++i) {
    const int64_t j = prng.range(i, total - 1);
    std::swap(all[static_cast<std::size_t>(i)], all[static_cast<std::size_t>(j)]);
  }
  all.resize(static_cast<std::size_t>(count));
  return all;
}

int64_t pick_tokens(TokenClass cls, int64_t block_size, int64_t small_value, int64_t edge_pages,
                    int64_t edge_delta, std::size_t grid_index) {
  switch (cls) {
    case TokenClass::kOne: return 1;
    case TokenClass::kSmall: return small_value;
    case TokenClass::kPageBoundary: return block_size * edge_pages + edge_delta;
    case TokenClass::kAiterGrid: return kAiterGridTokens[grid_index];
  }
  return 1;
}

// Every structural choice goes through these. Uniform at any RapidCheck size, and shrinking
// towards the first entry (the smallest / simplest). Why not the library's helpers:
// rc::gen::element / elementOf / weightedElement do not shrink at all, and rc::gen::inRange scales
// with the size, which starves the big shapes in a short run.
int64_t pick_int(int64_t lo, int64_t hi_exclusive) {
  return *rc::gen::resize(rc::kNominalSize, rc::gen::inRange<int64_t>(lo, hi_exclusive));
}
std::size_t pick_index(std::size_t n) {
  return static_cast<std::size_t>(pick_int(0, static_cast<int64_t>(n)));
}
template <typename T>
T pick(std::initializer_list<T> values) {
  return *(values.begin() + pick_index(values.size()));
}
// Weighted choice: entry i is chosen with weight w_i; shrinks towards the first entry.
template <typename T>
T pick_weighted(std::initializer_list<std::pair<int64_t, T>> entries) {
  int64_t total = 0;
  for (const auto& e : entries) total += e.first;
  int64_t r = pick_int(0, total);
  for (const auto& e : entries) {
    if (r < e.first) return e.second;
    r -= e.first;
  }
  return entries.begin()->second;
}

// The token class and count (draws in the generator's order, so stored regressions replay): the
// AITER grid only up to the budget's cap (the big ones are nightly).
void draw_token_count(const CaseOptions& options, CallCase& c) {
  const AttentionConfig& cfg = c.cfg;
  const int64_t tokens_max =
      options.tokens_max ? std::min(*options.tokens_max, budget().tokens_max) : budget().tokens_max;
  std::size_t grid_allowed = 0;
  while (grid_allowed < kAiterGridTokens.size() &&
         kAiterGridTokens[grid_allowed] <= tokens_max) {
    ++grid_allowed;
  }
  c.token_class =
      grid_allowed > 0
          ? pick_weighted<TokenClass>({{3, TokenClass::kOne},
                                       {4, TokenClass::kSmall},
                                       {2, TokenClass::kPageBoundary},
                                       {2, TokenClass::kAiterGrid}})
          : pick_weighted<TokenClass>(
                {{3, TokenClass::kOne}, {4, TokenClass::kSmall}, {2, TokenClass::kPageBoundary}});
  const int64_t small_value = pick_int(2, 17);
  const int64_t edge_pages = pick_int(1, 3);
  const int64_t edge_delta = pick_int(-1, 2);
  const std::size_t grid_index =
      grid_allowed > 0 ? pick_index(grid_allowed) : 0;
  c.num_tokens = std::min(pick_tokens(c.token_class, cfg.block_size, small_value, edge_pages,
                                      edge_delta, grid_index),
                          std::max<int64_t>(tokens_max, 1));
}

// Positions and slots come from the data seed, not from RapidCheck draws: structure shrinks,
// values replay.
void fill_positions_and_slots(CallCase& c) {
  const AttentionConfig& cfg = c.cfg;
  const int64_t t = c.num_tokens;
  Prng prng = Prng::stream(c.data_seed, "batch");
  c.positions.resize(static_cast<std::size_t>(t));
  const int64_t max_pos = cfg.max_position;
  const int64_t run_start = max_pos >= t ? prng.range(0, max_pos - t) : 0;
  for (int64_t i = 0; i < t; ++i) {
    int64_t p = 0;
    switch (c.position_pattern) {
      case PositionPattern::kRandom: p = prng.range(0, max_pos - 1); break;
      case PositionPattern::kPrefillRun: p = (run_start + i) % max_pos; break;
      case PositionPattern::kBoundary: p = prng.chance(1, 2) ? 0 : max_pos - 1; break;
    }
    c.positions[static_cast<std::size_t>(i)] = p;
  }
  const int64_t total_slots = cfg.num_slots();
  switch (c.slot_pattern) {
    case SlotPattern::kRandomSubset:
      c.slots = random_distinct_slots(prng, total_slots, t);
      break;
    case SlotPattern::kRunAcrossPage: {
      // Start r slots before the end of page k, r in [1, BS-1]: the run crosses into page k+1
      // whenever T > r.
      const int64_t last_page = (total_slots - t) / cfg.block_size;
      const int64_t page = prng.range(1, std::max<int64_t>(1, last_page));
      const int64_t r = prng.range(1, cfg.block_size - 1);
      const int64_t start = std::min(page * cfg.block_size - r, total_slots - t);
      c.slots.resize(static_cast<std::size_t>(t));
      for (int64_t i = 0; i < t; ++i) c.slots[static_cast<std::size_t>(i)] = start + i;
      break;
    }
    case SlotPattern::kTrailingPadding: {
      c.slots = random_distinct_slots(prng, total_slots, t);
      const int64_t pad = prng.range(1, std::max<int64_t>(1, t / 2));
      for (int64_t i = t - pad; i < t; ++i) c.slots[static_cast<std::size_t>(i)] = -1;
      break;
    }
  }
}

}  // namespace

rc::Gen<CallCase> gen_call_case(CaseOptions options) {
  return rc::gen::exec([options]() {
    CallCase c;
    AttentionConfig& cfg = c.cfg;
    const auto& shape = kHeadShapes[pick_index(kHeadShapes.size())];
    c.shape_family = std::string(shape.family);
    cfg.num_heads_q = shape.num_heads_q;
    cfg.num_heads_kv = shape.num_heads_kv;
    if (options.head_dim) {
      cfg.head_dim = *options.head_dim;
    } else if (options.exclude_head_dim_128) {
      cfg.head_dim = pick({int64_t{64}, int64_t{256}});
    } else {
      cfg.head_dim = kHeadDims[pick_index(kHeadDims.size())];
    }
    const int64_t rotary_divisor =
        options.allow_partial_rotary
            ? kRotaryDivisors[pick_index(kRotaryDivisors.size())]
            : 1;
    cfg.rotary_dim = cfg.head_dim / rotary_divisor;
    cfg.is_neox = options.allow_gptj ? pick({true, false}) : true;
    cfg.act_dtype = options.allow_fp16 ? pick({DType::kBF16, DType::kFP16})
                                       : DType::kBF16;
    if (options.kv_cache_dtype) {
      cfg.kv_cache_dtype = *options.kv_cache_dtype;
    } else if (options.allow_fp8) {
      cfg.kv_cache_dtype = pick({KvCacheDtype::kAuto, KvCacheDtype::kFp8E4M3FN,
                                KvCacheDtype::kFp8E4M3FNUZ});
    } else {
      cfg.kv_cache_dtype = KvCacheDtype::kAuto;
    }
    cfg.amax_floor = options.amax_floor ? *options.amax_floor : pick({false, true});
    cfg.eps = pick({1e-6f, 1e-5f});
    cfg.block_size = kBlockSizes[pick_index(kBlockSizes.size())];
    cfg.max_position = kMaxPositions[pick_weighted<std::size_t>({{4, 0}, {4, 1}, {2, 2}, {1, 3}})];

    draw_token_count(options, c);
    const int64_t t = c.num_tokens;

    // Cache big enough for T distinct slots plus at least one free page (so "untouched" exists).
    const int64_t pages_needed = (t + cfg.block_size - 1) / cfg.block_size;
    cfg.num_blocks = pages_needed + pick_int(1, 4);
    RCSIM_ASSERT(cfg.num_blocks <= limits::kBlocksMax, "num_blocks {}", cfg.num_blocks);

    c.slot_pattern = pick({SlotPattern::kRandomSubset, SlotPattern::kRunAcrossPage,
                           SlotPattern::kTrailingPadding});
    c.position_pattern = pick({PositionPattern::kRandom, PositionPattern::kPrefillRun,
                               PositionPattern::kBoundary});
    c.weight_class = options.weight_class
                         ? *options.weight_class
                         : pick({WeightClass::kAsymmetric, WeightClass::kPairSymmetric});
    std::vector<InputClass> inputs = {InputClass::kRandomNonZero};
    if (options.allow_special_inputs) inputs.push_back(InputClass::kSpecialValues);
    if (options.allow_zero_head) inputs.push_back(InputClass::kZeroHead);
    if (options.allow_edge_magnitudes) inputs.push_back(InputClass::kEdgeMagnitudes);
    c.input_class = inputs[pick_index(inputs.size())];
    c.data_seed = *rc::gen::resize(rc::kNominalSize, rc::gen::noShrink(rc::gen::arbitrary<uint64_t>()));

    fill_positions_and_slots(c);
    return c;
  });
}

void classify_case(const CallCase& c) {
  classify("shape", c.shape_family);
  classify("head_dim", std::to_string(c.cfg.head_dim));
  classify("rotary", c.cfg.rotary_dim == c.cfg.head_dim
                         ? "full"
                         : "1/" + std::to_string(c.cfg.head_dim / c.cfg.rotary_dim));
  classify("style", c.cfg.is_neox ? "neox" : "gptj");
  classify("act", dtype_name(c.cfg.act_dtype));
  classify("kv", kv_cache_dtype_name(c.cfg.kv_cache_dtype));
  classify("block", std::to_string(c.cfg.block_size));
  classify("tokens", token_class_name(c.token_class));
  classify("slots", slot_pattern_name(c.slot_pattern));
  classify("positions", position_pattern_name(c.position_pattern));
  classify("weights", weight_class_name(c.weight_class));
  classify("inputs", input_class_name(c.input_class));
}

// ---- Tensors -------------------------------------------------------------------------------

namespace {

uint16_t act_bits(float v, DType act) { return float_to_activation(v, act); }

// A random non-zero activation value: magnitude in [1/16, 4), either sign, rounded to the dtype
// (a value that rounds to zero cannot occur at these magnitudes).
uint16_t random_activation(Prng& prng, DType act) {
  return act_bits(prng.nonzero_float(0.0625f, 4.0f), act);
}

uint16_t special_activation(Prng& prng, DType act) {
  const bool bf16 = act == DType::kBF16;
  switch (prng.below(5)) {
    case 0: return bf16 ? uint16_t{0x7FC0} : uint16_t{0x7E00};  // quiet NaN
    case 1: return bf16 ? uint16_t{0x7F80} : uint16_t{0x7C00};  // +Inf
    case 2: return bf16 ? uint16_t{0xFF80} : uint16_t{0xFC00};  // -Inf
    case 3: return uint16_t{0x8000};                            // -0
    default: return static_cast<uint16_t>(prng.range(1, 0x7F));  // a positive subnormal
  }
}

}  // namespace

namespace {
HostTensor build_cos_sin_cache(const AttentionConfig& cfg) {
  return build_cos_sin_table(cfg.max_position, cfg.rotary_dim, cfg.act_dtype, kRopeTheta,
                             RopeTableMath::kFp64);
}
}  // namespace

HostTensor make_cos_sin_cache(const AttentionConfig& cfg) {
  // A table depends only on (rows, rotary dim, dtype); thousands of cases share a handful, and
  // the 40960-row one costs milliseconds of trig. Memoised (read-only copies handed out).
  static std::mutex mutex;
  static std::map<std::tuple<int64_t, int64_t, int>, HostTensor> memo;
  const auto key = std::make_tuple(cfg.max_position, cfg.rotary_dim, static_cast<int>(cfg.act_dtype));
  std::lock_guard<std::mutex> lock(mutex);
  auto it = memo.find(key);
  if (it == memo.end()) it = memo.emplace(key, build_cos_sin_cache(cfg)).first;
  return it->second;
}

namespace {

// Q, K and V: random non-zero activations from the data seed, then the input class's plant
// (a few special values, a zeroed KV head, or heads at the eps and fp8 edges).
HostTensor make_qkv(const CallCase& c) {
  const AttentionConfig& cfg = c.cfg;
  const int64_t tokens = c.num_tokens;
  const int64_t d = cfg.head_dim;
  const int64_t heads_total = cfg.num_heads_q + 2 * cfg.num_heads_kv;
  Prng values = Prng::stream(c.data_seed, "qkv");
  HostTensor out(cfg.act_dtype, {tokens, cfg.qkv_width()});
  auto qkv = out.as<uint16_t>();
  for (auto& e : qkv) e = random_activation(values, cfg.act_dtype);
  if (c.input_class == InputClass::kSpecialValues) {
    const int64_t count = values.range(1, 4);
    for (int64_t i = 0; i < count; ++i) {
      const auto at = values.below(static_cast<uint64_t>(qkv.size()));
      qkv[static_cast<std::size_t>(at)] = special_activation(values, cfg.act_dtype);
    }
  } else if (c.input_class == InputClass::kZeroHead) {
    const int64_t token = values.range(0, tokens - 1);
    const int64_t kv_head = values.range(0, cfg.num_heads_kv - 1);
    for (int64_t head : {cfg.num_heads_q + kv_head, cfg.num_heads_q + cfg.num_heads_kv + kv_head}) {
      for (int64_t e = 0; e < d; ++e) {
        qkv[static_cast<std::size_t>(token * heads_total * d + head * d + e)] = 0;
      }
    }
  } else if (c.input_class == InputClass::kEdgeMagnitudes) {
    const int64_t token = values.range(0, tokens - 1);
    const int64_t kv_head = values.range(0, cfg.num_heads_kv - 1);
    const int64_t q_head = values.range(0, cfg.num_heads_q - 1);
    auto head_at = [&](int64_t head, int64_t e) -> uint16_t& {
      return qkv[static_cast<std::size_t>(token * heads_total * d + head * d + e)];
    };
    // Q and K heads with mean square near eps (|x| ~ sqrt(eps): 1e-3 for eps 1e-6, 3.2e-3 for
    // 1e-5): the eps placement changes output bits only on heads like these.
    const float tiny = std::sqrt(cfg.eps);
    for (int64_t head : {q_head, cfg.num_heads_q + kv_head}) {
      for (int64_t e = 0; e < d; ++e) {
        head_at(head, e) = act_bits(values.nonzero_float(0.5f * tiny, 2.0f * tiny), cfg.act_dtype);
      }
    }
    // The V head (raw into the cache): at the fp8 max and just above (448/450 or 240/242), the
    // rest of it below; or (bf16: fp16 flushes 1e-8 to zero, the zero-head class) with amax just
    // under or at the 1e-8 floor.
    const int64_t v_head = cfg.num_heads_q + cfg.num_heads_kv + kv_head;
    const float fp8_max = cfg.kv_cache_dtype == KvCacheDtype::kFp8E4M3FNUZ ? 240.0f : 448.0f;
    const bool at_floor = cfg.act_dtype == DType::kBF16 && values.below(2) == 0;
    for (int64_t e = 0; e < d; ++e) {
      const float v = at_floor ? values.nonzero_float(0.25e-8f, 0.9e-8f)
                               : fp8_max * values.nonzero_float(0.5f, 1.0f);
      head_at(v_head, e) = act_bits(v, cfg.act_dtype);
    }
    const int64_t top = values.range(0, d - 1);
    head_at(v_head, top) = act_bits(at_floor ? 1e-8f : fp8_max + 2.0f, cfg.act_dtype);
    head_at(v_head, (top + 1) % d) = act_bits(at_floor ? 0.95e-8f : fp8_max, cfg.act_dtype);
  }
  return out;
}

// The q and k norm weights, from their own stream of the data seed.
void fill_norm_weights(const CallCase& c, CallTensors& t) {
  const AttentionConfig& cfg = c.cfg;
  const int64_t d = cfg.head_dim;
  Prng weights = Prng::stream(c.data_seed, "weights");
  for (HostTensor* w : {&t.q_weight, &t.k_weight}) {
    *w = HostTensor(cfg.act_dtype, {d});
    auto wb = w->as<uint16_t>();
    for (int64_t e = 0; e < d; ++e) {
      // Around 1 like trained norm weights (vLLM's test draws N(1, 0.1)); never zero.
      wb[static_cast<std::size_t>(e)] =
          act_bits(1.0f + weights.nonzero_float(0.01f, 0.5f), cfg.act_dtype);
    }
    if (c.weight_class == WeightClass::kPairSymmetric) {
      // Copy the first member of each rotation pair onto its partner: NeoX (d, d + rot/2),
      // GPT-J (2i, 2i+1). Dims >= rotary_dim do not rotate and keep their own weight.
      for (int64_t e = 0; e < cfg.rotary_dim; ++e) {
        const int64_t partner = cfg.is_neox ? (e < cfg.rotary_dim / 2 ? -1 : e - cfg.rotary_dim / 2)
                                            : (e % 2 == 0 ? -1 : e - 1);
        if (partner >= 0) wb[static_cast<std::size_t>(e)] = wb[static_cast<std::size_t>(partner)];
      }
    }
  }
}

}  // namespace

CallTensors make_call_tensors(const CallCase& c) {
  const AttentionConfig& cfg = c.cfg;
  CallTensors t;
  t.cfg = cfg;
  const int64_t tokens = c.num_tokens;
  const int64_t d = cfg.head_dim;
  t.qkv = make_qkv(c);
  fill_norm_weights(c, t);

  t.cos_sin = make_cos_sin_cache(cfg);
  t.positions = HostTensor(DType::kI64, {tokens});
  t.slots = HostTensor(DType::kI64, {tokens});
  std::copy(c.positions.begin(), c.positions.end(), t.positions.as<int64_t>().begin());
  std::copy(c.slots.begin(), c.slots.end(), t.slots.as<int64_t>().begin());

  const DType cache_dtype = cfg.cache_storage_dtype();
  const int64_t x = cfg.x();
  t.k_cache = HostTensor(cache_dtype, {cfg.num_blocks, cfg.num_heads_kv, d / x, cfg.block_size, x});
  // ATOM's 4-D label view [NB, Hkv, D, BS]; the memory order is what the writer chose (the fused
  // kernel and reshape_and_cache(asm_layout) write the shuffle order into the same bytes).
  t.v_cache = HostTensor(cache_dtype, {cfg.num_blocks, cfg.num_heads_kv, d, cfg.block_size});
  t.k_cache.fill_pattern(kCacheSentinelByte);
  t.v_cache.fill_pattern(kCacheSentinelByte);
  if (is_fp8(cfg.kv_cache_dtype)) {
    t.k_scale = HostTensor(DType::kFP32, {cfg.num_blocks, cfg.num_heads_kv, cfg.block_size});
    t.v_scale = HostTensor(DType::kFP32, {cfg.num_blocks, cfg.num_heads_kv, cfg.block_size});
    t.k_scale.fill_pattern(kCacheSentinelByte);
    t.v_scale.fill_pattern(kCacheSentinelByte);
  }
  return t;
}

QkvViews CallTensors::split() const {
  return split_qkv(qkv.view(), cfg.num_heads_q, cfg.num_heads_kv, cfg.head_dim);
}

KvCacheViews CallTensors::cache_views() const {
  KvCacheViews views;
  views.k_cache = k_cache.view();
  views.v_cache = v_cache.view();
  if (!k_scale.empty()) {
    views.k_scale = k_scale.view();
    views.v_scale = v_scale.view();
  }
  return views;
}

FusedQkNormRopeCacheArgs fused_args(const CallTensors& t) {
  FusedQkNormRopeCacheArgs a;
  a.cfg = t.cfg;
  a.qkv = t.qkv.view();
  a.q_weight = t.q_weight.view();
  a.k_weight = t.k_weight.view();
  a.cos_sin_cache = t.cos_sin.view();
  a.positions = t.positions.view();
  a.slot_mapping = t.slots.view();
  a.cache = t.cache_views();
  return a;
}

}  // namespace rcsim::props
