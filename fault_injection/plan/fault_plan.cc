// Fault-spec names, validity table, parser, printer, swarm sampling and exhaustive enumeration.
// The parser is a hand-written scanner over one string (no regex) so that every error can name
// the exact column and what was expected there.
#include "fault_injection/plan/fault_plan.h"

#include <array>
#include <cstdlib>
#include <string>

#include <fmt/format.h>

#include "core/check.h"
#include "core/limits.h"

namespace rcsim {
namespace {

// Bounds on numeric parameters: generous, but a typo cannot ask for 2^63 of anything.
constexpr int64_t kUnitCountMax = int64_t{1} << 40;
constexpr int64_t kCallIndexMax = int64_t{1} << 40;
constexpr int64_t kRebuildCostUsMax = int64_t{1} << 40;
constexpr uint64_t kRatioDenominatorMax = uint64_t{1} << 32;
constexpr int64_t kExhaustiveUnitsMax = int64_t{1} << 22;


// Which parameters each kind accepts (besides the call/ratio modifiers every kind accepts).
struct KindParams {
  bool unit = false;  // unit= and tile=
  bool k = false;
  bool p_region = false;
  bool late = false;  // after= and error=
  bool cost = false;
};
KindParams params_of(FaultKind kind) {
  switch (kind) {
    case FaultKind::kTorn:
    case FaultKind::kCacheOnly:
    case FaultKind::kLate:
    case FaultKind::kSticky: {
      KindParams p{.unit = true, .k = true};
      p.late = kind == FaultKind::kLate;
      return p;
    }
    case FaultKind::kGarbage:
    case FaultKind::kNan: return {.unit = true, .k = true, .p_region = true};
    case FaultKind::kPartial: return {.k = true};
    case FaultKind::kRebuild: return {.cost = true};
    default: return {};
  }
}

std::string join_names(std::string_view (*name)(FaultSite)) {
  std::string out;
  for (FaultSite s : all_fault_sites()) out += (out.empty() ? "" : ", ") + std::string(name(s));
  return out;
}
std::string kind_names() {
  std::string out;
  for (FaultKind k : all_fault_kinds()) out += (out.empty() ? "" : ", ") + std::string(fault_kind_name(k));
  return out;
}
std::string kinds_valid_at(FaultSite site) {
  std::string out;
  for (FaultKind k : all_fault_kinds()) {
    if (fault_kind_valid_at(site, k)) out += (out.empty() ? "" : ", ") + std::string(fault_kind_name(k));
  }
  return out;
}
std::string regions_valid_at(FaultSite site) {
  std::string out;
  for (FaultRegion r : all_fault_regions()) {
    if (fault_region_valid_at(site, r)) {
      out += (out.empty() ? "" : ", ") + std::string(fault_region_name(r));
    }
  }
  return out;
}
std::string params_list(FaultKind kind) {
  const KindParams p = params_of(kind);
  std::string out;
  auto add = [&out](std::string_view s) { out += (out.empty() ? "" : ", ") + std::string(s); };
  if (p.unit) add("unit, tile");
  if (p.k) add("k");
  if (p.p_region) add("p, region");
  if (p.late) add("after, error");
  if (p.cost) add("cost_us");
  add("call, ratio");
  return out;
}

// The scanner. Positions are 0-based internally and reported 1-based ("column").
class SpecParser {
 public:
  explicit SpecParser(std::string_view spec) : spec_(spec) {}

  FaultPlan parse() {
    RCSIM_REQUIRE(static_cast<int64_t>(spec_.size()) <= limits::kFaultSpecCharsMax,
                  "fault spec: {} characters, at most {} (limits::kFaultSpecCharsMax)",
                  spec_.size(), limits::kFaultSpecCharsMax);
    FaultPlan plan;
    skip_blanks();
    if (at_end()) return plan;
    // Each iteration consumes one rule; the rule count bound also bounds the loop.
    for (int64_t rule_index = 0;; ++rule_index) {
      if (rule_index >= limits::kFaultRulesMax) {
        fail(fmt::format("too many rules: at most {} (limits::kFaultRulesMax)",
                         limits::kFaultRulesMax));
      }
      plan.rules.push_back(parse_rule());
      skip_blanks();
      if (at_end()) break;
      if (peek() != ';') fail(fmt::format("expected ';' or end of spec after a rule, found {}",
                                          found()));
      ++pos_;
      skip_blanks();
      if (at_end()) fail("expected a rule after ';', found end of spec");
    }
    return plan;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const { fail_at(pos_, what); }
  [[noreturn]] void fail_at(std::size_t pos, const std::string& what) const {
    throw InvalidInput(fmt::format("fault spec column {}: {}\n  {}\n  {}^", pos + 1, what, spec_,
                                   std::string(pos, ' ')));
  }
  bool at_end() const { return pos_ >= spec_.size(); }
  char peek() const { return spec_[pos_]; }
  std::string found() const {
    if (at_end()) return "end of spec";
    return fmt::format("'{}'", spec_.substr(pos_, 1));
  }
  void skip_blanks() {
    while (!at_end() && (peek() == ' ' || peek() == '\t' || peek() == '\n')) ++pos_;
  }
  static bool is_word_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '.' || c == '/' || c == '-' || c == '+';
  }
  std::string_view word() {
    const std::size_t start = pos_;
    while (!at_end() && is_word_char(peek())) ++pos_;
    return spec_.substr(start, pos_ - start);
  }

  FaultRule parse_rule() {
    FaultRule rule;
    const std::size_t site_pos = pos_;
    const std::string_view site_word = word();
    if (site_word.empty()) fail(fmt::format("expected a site ({}), found {}",
                                            join_names(fault_site_name), found()));
    const auto site = fault_site_from_name(site_word);
    if (!site) {
      fail_at(site_pos, fmt::format("unknown site '{}' (expected one of {})", site_word,
                                    join_names(fault_site_name)));
    }
    rule.site = *site;
    skip_blanks();
    if (at_end() || peek() != ':') {
      fail(fmt::format("expected ':' after site '{}', found {}", site_word, found()));
    }
    ++pos_;
    skip_blanks();
    const std::size_t kind_pos = pos_;
    const std::string_view kind_word = word();
    if (kind_word.empty()) fail(fmt::format("expected a fault kind ({}), found {}", kind_names(),
                                            found()));
    const auto kind = fault_kind_from_name(kind_word);
    if (!kind) {
      fail_at(kind_pos, fmt::format("unknown kind '{}' (expected one of {})", kind_word,
                                    kind_names()));
    }
    if (!fault_kind_valid_at(rule.site, *kind)) {
      fail_at(kind_pos, fmt::format("kind '{}' is not valid at site '{}' (valid there: {})",
                                    kind_word, site_word, kinds_valid_at(rule.site)));
    }
    rule.kind = *kind;
    skip_blanks();
    if (!at_end() && peek() == '(') {
      ++pos_;
      parse_params(rule);
    }
    return rule;
  }

  void parse_params(FaultRule& rule) {
    const std::string_view kind = fault_kind_name(rule.kind);
    uint32_t seen = 0;  // one bit per parameter name, to reject duplicates
    std::size_t tile_pos = 0;
    bool tile_given = false;
    // At most one iteration per character of the spec: each consumes at least one.
    for (std::size_t guard = 0; guard <= spec_.size(); ++guard) {
      skip_blanks();
      const std::size_t key_pos = pos_;
      const std::string_view key = word();
      if (key.empty()) {
        fail(fmt::format("expected a parameter name of '{}' ({}), found {}", kind,
                         params_list(rule.kind), found()));
      }
      skip_blanks();
      if (at_end() || peek() != '=') {
        fail(fmt::format("expected '=' after parameter '{}', found {}", key, found()));
      }
      ++pos_;
      skip_blanks();
      const std::size_t value_pos = pos_;
      const std::string_view value = word();
      if (value.empty()) {
        fail(fmt::format("expected a value for parameter '{}', found {}", key, found()));
      }
      const int bit = apply_param(rule, key, key_pos, value, value_pos);
      if (seen & (1u << bit)) fail_at(key_pos, fmt::format("parameter '{}' given twice", key));
      seen |= 1u << bit;
      if (key == "tile") {
        tile_given = true;
        tile_pos = key_pos;
      }
      skip_blanks();
      if (at_end()) {
        fail(fmt::format("expected ',' or ')' to continue the parameters of '{}', found end of "
                         "spec (missing ')')",
                         kind));
      }
      if (peek() == ')') {
        ++pos_;
        if (tile_given && rule.unit != TornUnit::kTile) {
          fail_at(tile_pos, "parameter 'tile' needs unit=tile");
        }
        return;
      }
      if (peek() != ',') {
        fail(fmt::format("expected ',' or ')' in the parameters of '{}', found {}", kind,
                         found()));
      }
      ++pos_;
    }
    RCSIM_FAIL("parameter loop exceeded the spec length");
  }

  // Applies one key=value; returns the parameter's bit for duplicate detection.
  int apply_param(FaultRule& rule, std::string_view key, std::size_t key_pos,
                  std::string_view value, std::size_t value_pos) {
    const KindParams accepts = params_of(rule.kind);
    auto refuse = [&]() {
      fail_at(key_pos, fmt::format("kind '{}' takes no parameter '{}' (it takes {})",
                                   fault_kind_name(rule.kind), key, params_list(rule.kind)));
    };
    if (key == "call") {
      rule.on_call = parse_int(value, value_pos, key, 1, kCallIndexMax);
      return 0;
    }
    if (key == "ratio") {
      rule.ratio = parse_ratio(value, value_pos, key);
      return 1;
    }
    if (key == "unit") {
      if (!accepts.unit) refuse();
      if (value == "head") rule.unit = TornUnit::kHead;
      else if (value == "token") rule.unit = TornUnit::kToken;
      else if (value == "tile") rule.unit = TornUnit::kTile;
      else fail_at(value_pos, fmt::format("expected head, token or tile for 'unit', found '{}'",
                                          value));
      return 2;
    }
    if (key == "tile") {
      if (!accepts.unit) refuse();
      rule.tile_tokens = parse_int(value, value_pos, key, 1, limits::kTokensPerBatchMax);
      return 3;
    }
    if (key == "k") {
      if (!accepts.k) refuse();
      rule.k = parse_unit_count(value, value_pos);
      return 4;
    }
    if (key == "p") {
      if (!accepts.p_region) refuse();
      rule.p = parse_ratio(value, value_pos, key);
      return 5;
    }
    if (key == "region") {
      if (!accepts.p_region) refuse();
      std::optional<FaultRegion> region;
      for (FaultRegion r : all_fault_regions()) {
        if (fault_region_name(r) == value) region = r;
      }
      if (!region || !fault_region_valid_at(rule.site, *region)) {
        fail_at(value_pos, fmt::format("expected a region valid at site '{}' ({}), found '{}'",
                                       fault_site_name(rule.site), regions_valid_at(rule.site),
                                       value));
      }
      rule.region = *region;
      return 6;
    }
    if (key == "after") {
      if (!accepts.late) refuse();
      rule.late_after_calls = parse_int(value, value_pos, key, 1, limits::kSimStepsMax);
      return 7;
    }
    if (key == "error") {
      if (!accepts.late) refuse();
      if (value == "sticky") rule.late_error = LateError::kSticky;
      else if (value == "launch") rule.late_error = LateError::kLaunch;
      else fail_at(value_pos, fmt::format("expected sticky or launch for 'error', found '{}'",
                                          value));
      return 8;
    }
    if (key == "cost_us") {
      if (!accepts.cost) refuse();
      rule.rebuild_cost_us = parse_int(value, value_pos, key, 0, kRebuildCostUsMax);
      return 9;
    }
    fail_at(key_pos, fmt::format("unknown parameter '{}' (kind '{}' takes {})", key,
                                 fault_kind_name(rule.kind), params_list(rule.kind)));
  }

  int64_t parse_int(std::string_view text, std::size_t at, std::string_view key, int64_t lo,
                    int64_t hi) const {
    int64_t v = 0;
    if (text.empty() || text.size() > 18) {
      fail_at(at, fmt::format("expected a number in [{}, {}] for '{}', found '{}'", lo, hi, key,
                              text));
    }
    for (char c : text) {
      if (c < '0' || c > '9') {
        fail_at(at, fmt::format("expected a number in [{}, {}] for '{}', found '{}'", lo, hi,
                                key, text));
      }
      v = v * 10 + (c - '0');
    }
    if (v < lo || v > hi) {
      fail_at(at, fmt::format("'{}' = {} is out of range [{}, {}]", key, v, lo, hi));
    }
    return v;
  }

  Ratio parse_ratio(std::string_view text, std::size_t at, std::string_view key) const {
    const std::size_t slash = text.find('/');
    if (slash == std::string_view::npos) {
      fail_at(at, fmt::format("expected an integer ratio a/b for '{}', found '{}'", key, text));
    }
    const auto max = static_cast<int64_t>(kRatioDenominatorMax);
    const int64_t num = parse_int(text.substr(0, slash), at, key, 0, max);
    const int64_t den = parse_int(text.substr(slash + 1), at + slash + 1, key, 1, max);
    if (num > den) {
      fail_at(at, fmt::format("ratio '{}' for '{}' is above 1 (need a <= b)", text, key));
    }
    return {static_cast<uint64_t>(num), static_cast<uint64_t>(den)};
  }

  UnitCount parse_unit_count(std::string_view text, std::size_t at) const {
    if (text == "mid") return {UnitCount::Mode::kMid, 0};
    if (text == "last") return {UnitCount::Mode::kLast, 0};
    if (text == "all") return {UnitCount::Mode::kAll, 0};
    if (text == "seed") return {UnitCount::Mode::kSeed, 0};
    for (char c : text) {
      if (c < '0' || c > '9') {
        fail_at(at, fmt::format("expected a number, mid, last, all or seed for 'k', found '{}'",
                                text));
      }
    }
    return {UnitCount::Mode::kNumber, parse_int(text, at, "k", 0, kUnitCountMax)};
  }

  std::string_view spec_;
  std::size_t pos_ = 0;
};

std::string ratio_string(Ratio r) { return fmt::format("{}/{}", r.numerator, r.denominator); }

std::string unit_count_string(const UnitCount& k) {
  switch (k.mode) {
    case UnitCount::Mode::kNumber: return std::to_string(k.number);
    case UnitCount::Mode::kMid: return "mid";
    case UnitCount::Mode::kLast: return "last";
    case UnitCount::Mode::kAll: return "all";
    case UnitCount::Mode::kSeed: return "seed";
  }
  return "?";
}

}  // namespace

FaultPlan parse_fault_plan(std::string_view spec) { return SpecParser(spec).parse(); }

std::string to_string(const FaultRule& rule) {
  const KindParams accepts = params_of(rule.kind);
  const FaultRule defaults;
  std::string params;
  auto add = [&params](const std::string& s) { params += (params.empty() ? "" : ",") + s; };
  if (accepts.unit && rule.unit != defaults.unit) {
    add(fmt::format("unit={}", torn_unit_name(rule.unit)));
  }
  if (accepts.unit && rule.unit == TornUnit::kTile && rule.tile_tokens != defaults.tile_tokens) {
    add(fmt::format("tile={}", rule.tile_tokens));
  }
  if (accepts.k && rule.k) add("k=" + unit_count_string(*rule.k));
  if (accepts.p_region && rule.p != defaults.p) add("p=" + ratio_string(rule.p));
  if (accepts.p_region && rule.region != defaults.region) {
    add(fmt::format("region={}", fault_region_name(rule.region)));
  }
  if (accepts.late && rule.late_after_calls != defaults.late_after_calls) {
    add(fmt::format("after={}", rule.late_after_calls));
  }
  if (accepts.late && rule.late_error != defaults.late_error) {
    add(rule.late_error == LateError::kSticky ? "error=sticky" : "error=launch");
  }
  if (accepts.cost && rule.rebuild_cost_us != defaults.rebuild_cost_us) {
    add(fmt::format("cost_us={}", rule.rebuild_cost_us));
  }
  if (rule.on_call != 0) add(fmt::format("call={}", rule.on_call));
  if (rule.ratio != defaults.ratio) add("ratio=" + ratio_string(rule.ratio));
  std::string out = fmt::format("{}:{}", fault_site_name(rule.site), fault_kind_name(rule.kind));
  if (!params.empty()) out += "(" + params + ")";
  return out;
}

std::string to_string(const FaultPlan& plan) {
  std::string out;
  for (const FaultRule& rule : plan.rules) out += (out.empty() ? "" : ";") + to_string(rule);
  return out;
}

std::vector<std::string> unreached_rules(const FaultStats& stats, const FaultPlan& plan) {
  std::vector<std::string> out;
  for (const FaultRule& rule : stats.unreached(plan)) out.push_back(to_string(rule));
  return out;
}

FaultPlan fault_plan_from_env() {
  const char* value = std::getenv("RCSIM_FAULTS");
  if (value == nullptr) return {};
  try {
    return parse_fault_plan(value);
  } catch (const InvalidInput& e) {
    throw InvalidInput(fmt::format("RCSIM_FAULTS: {}", e.what()));
  }
}

FaultPlan sample_swarm_plan(Prng& prng) {
  static constexpr Ratio kRatios[] = {{1, 1}, {1, 2}, {1, 4}, {1, 8}, {1, 16}};
  static constexpr Ratio kShares[] = {{1, 1}, {1, 2}, {1, 8}};
  static constexpr UnitCount::Mode kModes[] = {UnitCount::Mode::kNumber, UnitCount::Mode::kMid,
                                               UnitCount::Mode::kLast, UnitCount::Mode::kAll,
                                               UnitCount::Mode::kSeed};
  static constexpr int64_t kTiles[] = {1, 2, 4, 16};
  static constexpr int64_t kRebuildCostsUs[] = {100, 1000, 50000};
  FaultPlan plan;
  for (FaultKind kind : all_fault_kinds()) {
    if (kind == FaultKind::kAbort) continue;  // kills the process: death tests only
    // Level 1: is this kind active in this run at all?
    if (!prng.chance(1, 4)) continue;
    FaultSite valid[kFaultSiteCount];
    std::size_t valid_count = 0;
    for (FaultSite s : all_fault_sites()) {
      if (fault_kind_valid_at(s, kind)) valid[valid_count++] = s;
    }
    RCSIM_ASSERT(valid_count > 0, "kind {} valid nowhere", fault_kind_name(kind));
    FaultRule rule;
    rule.kind = kind;
    rule.site = prng.pick(valid, valid_count);
    const KindParams accepts = params_of(kind);
    if (accepts.unit) {
      rule.unit = static_cast<TornUnit>(prng.below(3));
      if (rule.unit == TornUnit::kTile) rule.tile_tokens = prng.pick(kTiles, std::size(kTiles));
    }
    if (accepts.k) {
      UnitCount k{prng.pick(kModes, std::size(kModes)), 0};
      if (k.mode == UnitCount::Mode::kNumber) k.number = prng.range(0, 1);  // the k=0 / k=1 edges
      rule.k = k;
    }
    if (accepts.p_region) {
      rule.p = prng.pick(kShares, std::size(kShares));
      FaultRegion regions[kFaultRegionCount];
      std::size_t region_count = 0;
      for (FaultRegion r : all_fault_regions()) {
        if (fault_region_valid_at(rule.site, r)) regions[region_count++] = r;
      }
      rule.region = prng.pick(regions, region_count);
    }
    if (accepts.late) {
      rule.late_after_calls = prng.range(1, 4);
      rule.late_error = prng.chance(1, 2) ? LateError::kSticky : LateError::kLaunch;
    }
    if (accepts.cost) rule.rebuild_cost_us = prng.pick(kRebuildCostsUs, std::size(kRebuildCostsUs));
    // Level 2's rate: per hit, fire with this ratio.
    rule.ratio = prng.pick(kRatios, std::size(kRatios));
    plan.rules.push_back(rule);
  }
  return plan;
}

std::vector<FaultPlan> enumerate_fail_at_every_step(const FaultRule& rule, int64_t units_total) {
  RCSIM_REQUIRE(params_of(rule.kind).k, "exhaustive mode: kind '{}' takes no k",
                fault_kind_name(rule.kind));
  RCSIM_REQUIRE(units_total >= 0 && units_total <= kExhaustiveUnitsMax,
                "exhaustive mode: {} units, expected 0..{}", units_total, kExhaustiveUnitsMax);
  std::vector<FaultPlan> plans;
  plans.reserve(static_cast<std::size_t>(units_total + 1));
  for (int64_t k = 0; k <= units_total; ++k) {
    FaultRule r = rule;
    r.k = UnitCount{UnitCount::Mode::kNumber, k};
    if (r.on_call == 0) r.on_call = 1;
    plans.push_back(FaultPlan{{r}});
  }
  return plans;
}

}  // namespace rcsim
