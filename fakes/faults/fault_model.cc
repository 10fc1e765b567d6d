// Fault-model names, validity tables and unit-count resolution (fault_model.h).
#include "fakes/faults/fault_model.h"

#include <array>

#include "core/check.h"

namespace rcsim {
namespace {

constexpr std::array<FaultSite, kFaultSiteCount> kSites = {
    FaultSite::kFused,        FaultSite::kRopeCache,     FaultSite::kFallbackRope,
    FaultSite::kFallbackNorm, FaultSite::kFallbackCache, FaultSite::kBackup,
    FaultSite::kRestore};
constexpr std::array<FaultKind, kFaultKindCount> kKinds = {
    FaultKind::kUnavailable, FaultKind::kLaunch, FaultKind::kTorn,    FaultKind::kGarbage,
    FaultKind::kCacheOnly,   FaultKind::kNan,    FaultKind::kSticky,  FaultKind::kOom,
    FaultKind::kPartial,     FaultKind::kAbort,  FaultKind::kLate,    FaultKind::kRebuild,
    FaultKind::kInvalid};
constexpr std::array<FaultRegion, kFaultRegionCount> kRegions = {FaultRegion::kAll, FaultRegion::kQ,
                                                 FaultRegion::kK,   FaultRegion::kV,
                                                 FaultRegion::kCache, FaultRegion::kOut};

bool is_kernel_site(FaultSite s) {
  return s == FaultSite::kFused || s == FaultSite::kRopeCache || s == FaultSite::kFallbackRope ||
         s == FaultSite::kFallbackNorm || s == FaultSite::kFallbackCache;
}

}  // namespace

int64_t UnitCount::resolve(int64_t units_total, Prng& prng) const {
  RCSIM_ASSERT(units_total >= 0, "negative unit count {}", units_total);
  switch (mode) {
    case Mode::kNumber: return number < units_total ? number : units_total;
    case Mode::kMid: return units_total / 2;
    case Mode::kLast: return units_total > 0 ? units_total - 1 : 0;
    case Mode::kAll: return units_total;
    case Mode::kSeed: return prng.range(0, units_total);
  }
  return 0;
}

UnitCount FaultRule::k_or_default() const {
  if (k) return *k;
  switch (kind) {
    case FaultKind::kGarbage:
    case FaultKind::kNan:
    case FaultKind::kSticky: return {UnitCount::Mode::kNumber, 0};
    default: return {UnitCount::Mode::kMid, 0};  // torn, cacheonly, late, partial
  }
}

std::string_view fault_site_name(FaultSite s) {
  switch (s) {
    case FaultSite::kFused: return "fused";
    case FaultSite::kRopeCache: return "rope_cache";
    case FaultSite::kFallbackRope: return "fallback.rope";
    case FaultSite::kFallbackNorm: return "fallback.norm";
    case FaultSite::kFallbackCache: return "fallback.cache";
    case FaultSite::kBackup: return "backup";
    case FaultSite::kRestore: return "restore";
  }
  return "?";
}

std::string_view fault_kind_name(FaultKind k) {
  switch (k) {
    case FaultKind::kUnavailable: return "unavailable";
    case FaultKind::kLaunch: return "launch";
    case FaultKind::kTorn: return "torn";
    case FaultKind::kGarbage: return "garbage";
    case FaultKind::kCacheOnly: return "cacheonly";
    case FaultKind::kNan: return "nan";
    case FaultKind::kSticky: return "sticky";
    case FaultKind::kOom: return "oom";
    case FaultKind::kPartial: return "partial";
    case FaultKind::kAbort: return "abort";
    case FaultKind::kLate: return "late";
    case FaultKind::kRebuild: return "rebuild";
    case FaultKind::kInvalid: return "invalid";
  }
  return "?";
}

std::string_view torn_unit_name(TornUnit u) {
  switch (u) {
    case TornUnit::kHead: return "head";
    case TornUnit::kToken: return "token";
    case TornUnit::kTile: return "tile";
  }
  return "?";
}

std::string_view fault_region_name(FaultRegion r) {
  switch (r) {
    case FaultRegion::kAll: return "all";
    case FaultRegion::kQ: return "q";
    case FaultRegion::kK: return "k";
    case FaultRegion::kV: return "v";
    case FaultRegion::kCache: return "cache";
    case FaultRegion::kOut: return "out";
  }
  return "?";
}

std::optional<FaultSite> fault_site_from_name(std::string_view name) {
  for (FaultSite s : kSites) {
    if (fault_site_name(s) == name) return s;
  }
  return std::nullopt;
}

std::optional<FaultKind> fault_kind_from_name(std::string_view name) {
  if (name == "throw") return FaultKind::kLaunch;  // the spelling of a generic failure
  for (FaultKind k : kKinds) {
    if (fault_kind_name(k) == name) return k;
  }
  return std::nullopt;
}

std::span<const FaultSite> all_fault_sites() { return kSites; }
std::span<const FaultKind> all_fault_kinds() { return kKinds; }
std::span<const FaultRegion> all_fault_regions() { return kRegions; }

bool fault_kind_valid_at(FaultSite site, FaultKind kind) {
  const bool kernel = is_kernel_site(site);
  const bool writes_cache = site == FaultSite::kFused || site == FaultSite::kRopeCache;
  switch (kind) {
    case FaultKind::kUnavailable:
    case FaultKind::kTorn:
    case FaultKind::kGarbage:
    case FaultKind::kNan:
    case FaultKind::kAbort:
    case FaultKind::kLate:
    case FaultKind::kRebuild:
    case FaultKind::kInvalid: return kernel;
    case FaultKind::kLaunch: return kernel || site == FaultSite::kRestore;
    case FaultKind::kCacheOnly: return writes_cache;
    case FaultKind::kSticky: return true;
    case FaultKind::kOom: return site == FaultSite::kBackup || site == FaultSite::kFused;
    case FaultKind::kPartial: return site == FaultSite::kRestore;
  }
  return false;
}

bool fault_region_valid_at(FaultSite site, FaultRegion region) {
  if (region == FaultRegion::kAll) return is_kernel_site(site);
  switch (site) {
    case FaultSite::kFused:  // works in place on all of qkv, V heads included
      return region == FaultRegion::kQ || region == FaultRegion::kK || region == FaultRegion::kV ||
             region == FaultRegion::kCache;
    case FaultSite::kRopeCache:  // only reads v
      return region == FaultRegion::kQ || region == FaultRegion::kK || region == FaultRegion::kCache;
    case FaultSite::kFallbackRope: return region == FaultRegion::kQ || region == FaultRegion::kK;
    case FaultSite::kFallbackNorm: return region == FaultRegion::kOut;
    case FaultSite::kFallbackCache: return region == FaultRegion::kCache;
    default: return false;
  }
}
int64_t units_at_granularity(TornUnit unit, int64_t tile_tokens, int64_t native_units_total,
                             int64_t tokens) {
  RCSIM_REQUIRE(native_units_total >= 0 && tokens >= 0 && tile_tokens >= 1,
                "units_at_granularity: N={} T={} tile={}", native_units_total, tokens, tile_tokens);
  if (unit == TornUnit::kHead || tokens == 0) return unit == TornUnit::kHead ? native_units_total : 0;
  RCSIM_REQUIRE(native_units_total % tokens == 0,
                "units_at_granularity: {} units are not a whole number per token of {} tokens",
                native_units_total, tokens);
  if (unit == TornUnit::kToken) return tokens;
  return (tokens + tile_tokens - 1) / tile_tokens;
}

int64_t native_units_for(TornUnit unit, int64_t tile_tokens, int64_t k,
                         int64_t native_units_total, int64_t tokens) {
  RCSIM_REQUIRE(k >= 0 && native_units_total >= 0 && tokens >= 0 && tile_tokens >= 1,
                "native_units_for: k={} N={} T={} tile={}", k, native_units_total, tokens,
                tile_tokens);
  int64_t native = k;
  if (unit != TornUnit::kHead) {
    if (tokens == 0) return 0;
    const int64_t per_token = native_units_total / tokens;
    const int64_t tokens_done = unit == TornUnit::kToken ? k : k * tile_tokens;
    // Compare in tokens first so the product cannot overflow.
    native = tokens_done >= tokens ? native_units_total : tokens_done * per_token;
  }
  return native < native_units_total ? native : native_units_total;
}

}  // namespace rcsim
