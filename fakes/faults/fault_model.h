// The fault model the decorators execute: where a fault fires (sites), what it does (kinds),
// what its k counts (units, resolved per call), which part of a unit's footprint it may hit, and
// which kinds and regions are valid at which site. A FaultPlan is a list of such rules. The
// grammar that reads and prints plans, swarm sampling and exhaustive enumeration live in
// fault_injection/plan/ and build on this header; nothing here depends on them.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/prng.h"

namespace rcsim {

// Where a fault fires: one site per kernel the dispatcher calls, plus its two memory operations.
enum class FaultSite : uint8_t {
  kFused,          // fused_qk_norm_rope_cache_quant_shuffle (branch A)
  kRopeCache,      // fused_qk_rope_reshape_and_cache (branch B)
  kFallbackRope,   // rotary embedding of branch C
  kFallbackNorm,   // q/k RMSNorm of branch C
  kFallbackCache,  // reshape_and_cache and reshape_and_cache_with_pertoken_quant
  kBackup,         // MemoryBackend::allocate (the qkv backup, scratch outputs)
  kRestore,        // MemoryBackend::copy out of a buffer the backend allocated (restore, commit)
};
inline constexpr int kFaultSiteCount = 7;

// What happens when a rule fires. Every exception thrown is a KernelError with injected = true.
enum class FaultKind : uint8_t {
  kUnavailable,  // throw "unavailable" before writing anything (module not built)
  kLaunch,       // transient launch failure, nothing written ("throw" is an alias)
  kTorn,         // the real kernel completes exactly the first k units, then throw
  kGarbage,      // first k units real, then seeded random bits into not-yet-processed units, throw
  kCacheOnly,    // qkv left intact, the first k units' cache writes happen, then throw
  kNan,          // like garbage, but the payload is the dtype's quiet NaN, limited to `region`
  kSticky,       // sticky device error: this call and every later call on the device fail
  kOom,          // allocation failure (backup, or the fused kernel's own workspace)
  kPartial,      // restore copy stops after k elements, then throws
  kAbort,        // std::abort(): uncatchable (the op's argument checks since aiter #3159)
  kLate,         // the kernel writes k units and returns "success"; the error surfaces later
  kRebuild,      // a missing module re-attempting its JIT build per call: cost + log + unavailable
  kInvalid,      // API drift: the op rejects its arguments (invalid_argument)
};
inline constexpr int kFaultKindCount = 13;

// The granularity `k` counts in. Each maps onto a prefix of the kernel's own unit order.
enum class TornUnit : uint8_t {
  kHead,   // the kernel's native unit ((token, head) for the fused kernel; see each kernel)
  kToken,  // k * (N / T) native units
  kTile,   // k tiles of `tile` tokens: k * tile * (N / T) native units, capped at N
};

// Which part of a unit's footprint garbage / NaN may hit. kAll = everything the unit owns.
enum class FaultRegion : uint8_t { kAll, kQ, kK, kV, kCache, kOut };
inline constexpr int kFaultRegionCount = 6;

// The k of torn / garbage / nan / cacheonly / late / partial / sticky.
struct UnitCount {
  enum class Mode : uint8_t { kNumber, kMid, kLast, kAll, kSeed };
  Mode mode = Mode::kNumber;
  int64_t number = 0;  // for kNumber; a k above N is clamped to N (and counted in the stats)
  // k for a call of `units_total` units at the rule's granularity. kSeed draws from `prng`.
  int64_t resolve(int64_t units_total, Prng& prng) const;
  bool operator==(const UnitCount&) const = default;
};

// An integer ratio a/b with 0 <= a <= b, b >= 1 (probabilities are never floats: runs replay).
struct Ratio {
  uint64_t numerator = 1;
  uint64_t denominator = 1;
  bool always() const { return numerator == denominator; }
  bool operator==(const Ratio&) const = default;
};

// Which failure class a late fault surfaces as.
enum class LateError : uint8_t { kSticky, kLaunch };

struct FaultRule {
  FaultSite site = FaultSite::kFused;
  FaultKind kind = FaultKind::kLaunch;
  // Kind parameters (only those the kind accepts are printed / parsed).
  TornUnit unit = TornUnit::kHead;
  int64_t tile_tokens = 4;
  std::optional<UnitCount> k;  // unset = the kind's default (docs/fault-spec.md)
  Ratio p;                     // garbage / nan: share of not-yet-processed units hit
  FaultRegion region = FaultRegion::kAll;
  int64_t late_after_calls = 1;  // late: surfaces on the n-th later call (any site)
  LateError late_error = LateError::kSticky;
  int64_t rebuild_cost_us = 0;
  // Modifiers, valid for every kind: fire only on the n-th call at this site (1-based; 0 = any),
  // and/or with an integer ratio per call.
  int64_t on_call = 0;
  Ratio ratio;

  // The k used when the spec gave none.
  UnitCount k_or_default() const;
  bool operator==(const FaultRule&) const = default;
};

struct FaultPlan {
  std::vector<FaultRule> rules;
  bool empty() const { return rules.empty(); }
  bool operator==(const FaultPlan&) const = default;
};

// Names as they appear in specs.
std::string_view fault_site_name(FaultSite s);
std::string_view fault_kind_name(FaultKind k);
std::string_view torn_unit_name(TornUnit u);
std::string_view fault_region_name(FaultRegion r);
std::optional<FaultSite> fault_site_from_name(std::string_view name);
std::optional<FaultKind> fault_kind_from_name(std::string_view name);  // accepts "throw"
std::span<const FaultSite> all_fault_sites();
std::span<const FaultKind> all_fault_kinds();
std::span<const FaultRegion> all_fault_regions();
// Whether `kind` may be used at `site` (e.g. oom only at backup and fused, partial only at restore).
bool fault_kind_valid_at(FaultSite site, FaultKind kind);
// Whether `region` is meaningful for a garbage / nan fault at `site`.
bool fault_region_valid_at(FaultSite site, FaultRegion region);

// The number of units a call of `native_units_total` kernel units over `tokens` tokens has at
// `unit` granularity (the N that exhaustive enumeration and UnitCount::resolve use).
int64_t units_at_granularity(TornUnit unit, int64_t tile_tokens, int64_t native_units_total,
                             int64_t tokens);
// The native unit count that completes `k` units at `unit` granularity (a prefix of the kernel's
// order), capped at native_units_total.
int64_t native_units_for(TornUnit unit, int64_t tile_tokens, int64_t k,
                         int64_t native_units_total, int64_t tokens);

}  // namespace rcsim
