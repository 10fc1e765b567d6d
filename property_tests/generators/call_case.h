// One rope_cache call as a RapidCheck value: the layer configuration, the batch (token count,
// positions, slot mapping) and the classes of its data, plus a seed from which the tensors are
// built with rcsim::Prng. RapidCheck shrinks the structural choices (shape, head dim, dtypes,
// token count, patterns, classes) towards the small and simple; the data seed does not shrink
// (any seed is as simple as any other), so a shrunk case is small AND rebuilds bit for bit.
//
// Generators are constructive: every generated case is valid by construction (head counts from
// the supported tables, T distinct slots inside the cache, positions inside the cos/sin table),
// so no property discards cases. Invalid input is a separate, deliberate generator where needed.
#pragma once

#include <rapidcheck.h>

#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "core/attention_config.h"
#include "core/dtype.h"
#include "core/kernel_interfaces.h"
#include "core/tensor.h"

namespace rcsim::props {

enum class WeightClass : uint8_t {
  kAsymmetric,     // w[d] random around 1 (trained Qwen3 norms are not pair-symmetric)
  kPairSymmetric,  // w[d] == w[partner(d)] for every rotation pair: rope and norm commute
};
enum class InputClass : uint8_t {
  kRandomNonZero,  // every element a random non-zero value
  kSpecialValues,  // a few elements NaN / +-Inf / -0 / subnormal
  kZeroHead,       // one token's K and V heads all +0 (fp8: 0/0 without the amax floor)
  kEdgeMagnitudes,  // one token: a Q and a K head of |x| ~ 1e-3 (mean square near eps), its V
                    // head at the fp8 max and just above, or with amax at the 1e-8 scale floor
};
enum class SlotPattern : uint8_t {
  kRandomSubset,     // T distinct random slots of the free ones
  kRunAcrossPage,    // consecutive slots starting just before a page boundary
  kTrailingPadding,  // random subset, the last tokens -1 (CUDA-graph padding)
};
enum class PositionPattern : uint8_t {
  kRandom,      // uniform in [0, max_position)
  kPrefillRun,  // start .. start+T-1
  kBoundary,    // each 0 or max_position-1
};
enum class TokenClass : uint8_t {
  kOne,           // T = 1 (decode)
  kSmall,         // 2 .. 16
  kPageBoundary,  // a multiple of the block size, +-1
  kAiterGrid,     // {3, 127, 513, 778, 1024, 1257}, capped by the budget
};

std::string_view weight_class_name(WeightClass c);
std::string_view input_class_name(InputClass c);
std::string_view slot_pattern_name(SlotPattern p);
std::string_view position_pattern_name(PositionPattern p);
std::string_view token_class_name(TokenClass c);

struct CallCase {
  AttentionConfig cfg;
  std::string shape_family;
  TokenClass token_class = TokenClass::kOne;
  int64_t num_tokens = 1;
  SlotPattern slot_pattern = SlotPattern::kRandomSubset;
  PositionPattern position_pattern = PositionPattern::kRandom;
  std::vector<int64_t> positions;  // [T]
  std::vector<int64_t> slots;      // [T], distinct where >= 0
  WeightClass weight_class = WeightClass::kAsymmetric;
  InputClass input_class = InputClass::kRandomNonZero;
  uint64_t data_seed = 0;

  int64_t mapped_tokens() const;  // tokens with slot >= 0
  std::string describe() const;   // one line, all structural choices
};
void showValue(const CallCase& c, std::ostream& os);

// What a property lets the generator vary.
struct CaseOptions {
  bool allow_fp16 = true;
  bool allow_gptj = true;
  bool allow_partial_rotary = true;  // rotary_dim < head_dim (AITER@HEAD, vLLM grid)
  bool allow_fp8 = true;
  std::optional<KvCacheDtype> kv_cache_dtype;  // force one
  std::optional<WeightClass> weight_class;     // force one
  bool allow_special_inputs = true;
  bool allow_zero_head = true;
  bool allow_edge_magnitudes = true;
  std::optional<bool> amax_floor;  // force; default: both
  std::optional<int64_t> head_dim;  // force one of kHeadDims
  std::optional<int64_t> tokens_max;  // tighter than the budget's cap (many-cell suites)
  bool exclude_head_dim_128 = false;  // only D != 128 (ATOM: use_triton_attn, plain V fallback)
};

rc::Gen<CallCase> gen_call_case(CaseOptions options = {});

// Tags the running RapidCheck case with every dimension of `c` ("dim=value"; see classify()).
void classify_case(const CallCase& c);

// ---- Tensors of one case -------------------------------------------------------------------
// Host tensors built from a CallCase: inputs from rcsim::Prng(data_seed), outputs (caches,
// scales) filled with a sentinel byte so every element a kernel did not write shows.
inline constexpr uint8_t kCacheSentinelByte = 0xA5;

struct CallTensors {
  AttentionConfig cfg;
  HostTensor qkv;        // [T, (Hq+2Hkv)*D]
  HostTensor q_weight;   // [D]
  HostTensor k_weight;   // [D]
  HostTensor cos_sin;    // [max_pos, rotary_dim]
  HostTensor positions;  // [T] i64
  HostTensor slots;      // [T] i64
  HostTensor k_cache;    // [NB, Hkv, D/x, BS, x]
  HostTensor v_cache;    // 4-D label [NB, Hkv, D, BS] (ATOM); bytes in the writer's order
  HostTensor k_scale;    // [NB, Hkv, BS] fp32 (fp8 only; empty for "auto")
  HostTensor v_scale;

  QkvViews split() const;
  KvCacheViews cache_views() const;
};

CallTensors make_call_tensors(const CallCase& c);
// The cos/sin table [max_pos, rotary_dim] (cos half, sin half) with theta = kRopeTheta, computed
// in double and rounded once to the activation dtype, as aiter's table is stored.
HostTensor make_cos_sin_cache(const AttentionConfig& cfg);

FusedQkNormRopeCacheArgs fused_args(const CallTensors& t);

}  // namespace rcsim::props
