// Goal: the fault-spec grammar is exactly what docs/fault-spec.md says. Every example in the doc
// parses and round-trips; malformed specs fail with the column and the expectation named; swarm
// sampling is a pure function of the seed, prints as a replayable spec and reaches every kind
// but abort; exhaustive enumeration yields N + 1 plans with k = 0..N.
// Method: the doc's ```fault-spec block is read from the source tree at run time (so the doc and
// the test cannot drift apart); error cases compare the full column and key phrases.
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "core/check.h"
#include "core/limits.h"
#include "fault_injection/plan/fault_plan.h"
#include "fakes/faults/fault_stats.h"
#include "test_support/seed.h"

namespace rcsim {
namespace {

uint64_t test_seed() {
  static const uint64_t seed = test_support::seed_from_env(0xFA017u);
  return seed;
}

// Printed before any test runs, so a failing run always shows its seed.
const uint64_t kSeedAtStartup = test_seed();

std::vector<std::string> doc_examples() {
  std::ifstream in(RCSIM_SOURCE_DIR "/docs/fault-spec.md");
  EXPECT_TRUE(in.good()) << "cannot read docs/fault-spec.md";
  std::vector<std::string> out;
  std::string line;
  bool inside = false;
  while (std::getline(in, line)) {
    if (line == "```fault-spec") {
      inside = true;
    } else if (inside && line.rfind("```", 0) == 0) {
      inside = false;
    } else if (inside && !line.empty()) {
      out.push_back(line);
    }
  }
  return out;
}

TEST(FaultSpecDoc, EveryExampleParsesAndRoundTrips) {
  const std::vector<std::string> examples = doc_examples();
  // The doc has 37 examples; a broken extractor must not make this test pass vacuously.
  ASSERT_GE(examples.size(), 30u);
  std::set<FaultKind> kinds_seen;
  std::set<FaultSite> sites_seen;
  for (const std::string& spec : examples) {
    SCOPED_TRACE(spec);
    FaultPlan plan;
    ASSERT_NO_THROW(plan = parse_fault_plan(spec));
    ASSERT_FALSE(plan.empty());
    const std::string canonical = to_string(plan);
    EXPECT_EQ(parse_fault_plan(canonical), plan) << "canonical: " << canonical;
    EXPECT_EQ(to_string(parse_fault_plan(canonical)), canonical);
    for (const FaultRule& r : plan.rules) {
      kinds_seen.insert(r.kind);
      sites_seen.insert(r.site);
    }
  }
  EXPECT_EQ(kinds_seen.size(), static_cast<std::size_t>(kFaultKindCount)) << "a kind has no example";
  EXPECT_EQ(sites_seen.size(), static_cast<std::size_t>(kFaultSiteCount)) << "a site has no example";
}

TEST(FaultSpecParse, FieldsOfOneRule) {
  const FaultPlan plan = parse_fault_plan(
      " fused : torn ( unit=tile , tile=16, k=2, call=5, ratio=3/7 ) ; restore:partial(k=last)");
  ASSERT_EQ(plan.rules.size(), 2u);
  const FaultRule& a = plan.rules[0];
  EXPECT_EQ(a.site, FaultSite::kFused);
  EXPECT_EQ(a.kind, FaultKind::kTorn);
  EXPECT_EQ(a.unit, TornUnit::kTile);
  EXPECT_EQ(a.tile_tokens, 16);
  ASSERT_TRUE(a.k.has_value());
  EXPECT_EQ(a.k->mode, UnitCount::Mode::kNumber);
  EXPECT_EQ(a.k->number, 2);
  EXPECT_EQ(a.on_call, 5);
  EXPECT_EQ(a.ratio, (Ratio{3, 7}));
  EXPECT_EQ(to_string(a), "fused:torn(unit=tile,tile=16,k=2,call=5,ratio=3/7)");
  const FaultRule& b = plan.rules[1];
  EXPECT_EQ(b.site, FaultSite::kRestore);
  EXPECT_EQ(b.kind, FaultKind::kPartial);
  EXPECT_EQ(b.k->mode, UnitCount::Mode::kLast);
  EXPECT_EQ(to_string(plan), "fused:torn(unit=tile,tile=16,k=2,call=5,ratio=3/7);restore:partial(k=last)");
  // "throw" is the spelling of a launch failure; it prints canonically.
  EXPECT_EQ(to_string(parse_fault_plan("fallback.rope:throw(call=3)")),
            "fallback.rope:launch(call=3)");
  EXPECT_TRUE(parse_fault_plan("").empty());
  EXPECT_TRUE(parse_fault_plan("  \t ").empty());
}

TEST(FaultSpecParse, DefaultsOfK) {
  EXPECT_EQ(parse_fault_plan("fused:torn").rules[0].k_or_default().mode, UnitCount::Mode::kMid);
  EXPECT_EQ(parse_fault_plan("fused:garbage").rules[0].k_or_default(),
            (UnitCount{UnitCount::Mode::kNumber, 0}));
  EXPECT_EQ(parse_fault_plan("fused:sticky").rules[0].k_or_default(),
            (UnitCount{UnitCount::Mode::kNumber, 0}));
  EXPECT_EQ(parse_fault_plan("restore:partial").rules[0].k_or_default().mode,
            UnitCount::Mode::kMid);
}

struct BadSpec {
  std::string spec;
  int column;
  std::string phrase;
};

TEST(FaultSpecParse, MalformedSpecsNameColumnAndExpectation) {
  std::string too_many;
  for (int64_t i = 0; i <= limits::kFaultRulesMax; ++i) too_many += (i ? ";" : "") + std::string("fused:launch");
  const int too_many_column = static_cast<int>(limits::kFaultRulesMax * 13 + 1);
  const std::vector<BadSpec> cases = {
      {"fusd:launch", 1, "unknown site 'fusd' (expected one of fused, rope_cache"},
      {"fused:tron", 7, "unknown kind 'tron' (expected one of unavailable, launch"},
      {"fused:partial", 7, "kind 'partial' is not valid at site 'fused'"},
      {"backup:torn", 8, "kind 'torn' is not valid at site 'backup'"},
      {"fused:torn(k=x7)", 14, "expected a number, mid, last, all or seed for 'k', found 'x7'"},
      {"fused:torn(k=12a)", 14, "found '12a'"},
      {"fused:launch(call=0)", 19, "'call' = 0 is out of range [1,"},
      {"fused:launch(ratio=3/2)", 20, "is above 1"},
      {"fused:launch(ratio=1/0)", 22, "'ratio' = 0 is out of range [1,"},
      {"fused:launch(ratio=1)", 20, "expected an integer ratio a/b for 'ratio'"},
      {"fused:torn(k=3", 15, "found end of spec (missing ')')"},
      {"fused:torn(k=3;fused:launch", 15, "expected ',' or ')' in the parameters of 'torn', found ';'"},
      {"fused:launch)", 13, "expected ';' or end of spec after a rule, found ')'"},
      {"fused:launch junk", 14, "expected ';' or end of spec after a rule, found 'j'"},
      {"fused:launch;", 14, "expected a rule after ';', found end of spec"},
      {"fused launch", 7, "expected ':' after site 'fused', found 'l'"},
      {"fused:", 7, "expected a fault kind"},
      {"fused:torn(p=1/2)", 12, "kind 'torn' takes no parameter 'p'"},
      {"fused:torn(bogus=1)", 12, "unknown parameter 'bogus'"},
      {"fused:torn(k=1,k=2)", 16, "parameter 'k' given twice"},
      {"fused:torn(tile=8)", 12, "parameter 'tile' needs unit=tile"},
      {"fused:torn(unit=warp)", 17, "expected head, token or tile for 'unit', found 'warp'"},
      {"fallback.norm:nan(region=q)", 26, "expected a region valid at site 'fallback.norm' (all, out), found 'q'"},
      {"rope_cache:garbage(region=v)", 27, "expected a region valid at site 'rope_cache'"},
      {"fused:late(error=boom)", 18, "expected sticky or launch for 'error'"},
      {"fused:torn(k=)", 14, "expected a value for parameter 'k'"},
      {"fused:torn(=3)", 12, "expected a parameter name of 'torn'"},
      {"fused:torn(k=99999999999999999999)", 14, "for 'k'"},
      {too_many, too_many_column, "too many rules: at most 64"},
  };
  for (const BadSpec& c : cases) {
    SCOPED_TRACE(c.spec);
    try {
      parse_fault_plan(c.spec);
      ADD_FAILURE() << "parsed a malformed spec";
    } catch (const InvalidInput& e) {
      const std::string what = e.what();
      EXPECT_EQ(what.rfind("fault spec column " + std::to_string(c.column) + ":", 0), 0u) << what;
      EXPECT_NE(what.find(c.phrase), std::string::npos) << what;
      // The caret line points at the column.
      EXPECT_NE(what.find("\n  " + std::string(static_cast<std::size_t>(c.column - 1), ' ') + "^"),
                std::string::npos)
          << what;
    }
  }
  std::string too_long(static_cast<std::size_t>(limits::kFaultSpecCharsMax + 1), ' ');
  EXPECT_THROW(parse_fault_plan(too_long), InvalidInput);
}

TEST(FaultSpecEnv, ReadsRcsimFaultsAndNamesTheVariable) {
  ASSERT_EQ(unsetenv("RCSIM_FAULTS"), 0);
  EXPECT_TRUE(fault_plan_from_env().empty());
  ASSERT_EQ(setenv("RCSIM_FAULTS", "backup:oom;fused:torn(k=1)", 1), 0);
  EXPECT_EQ(to_string(fault_plan_from_env()), "backup:oom;fused:torn(k=1)");
  ASSERT_EQ(setenv("RCSIM_FAULTS", "fused:nope", 1), 0);
  try {
    fault_plan_from_env();
    ADD_FAILURE() << "accepted a bad RCSIM_FAULTS";
  } catch (const InvalidInput& e) {
    EXPECT_EQ(std::string(e.what()).rfind("RCSIM_FAULTS: fault spec column 7", 0), 0u) << e.what();
  }
  unsetenv("RCSIM_FAULTS");
}

TEST(FaultSwarm, SameSeedSamePlanAndEveryKindButAbortReachable) {
  std::set<FaultKind> kinds;
  std::set<FaultSite> sites;
  std::set<std::string> distinct;
  int64_t empty_plans = 0;
  for (uint64_t run = 0; run < 400; ++run) {
    Prng a = Prng::stream(test_seed(), "swarm", run);
    Prng b = Prng::stream(test_seed(), "swarm", run);
    const FaultPlan pa = sample_swarm_plan(a);
    const FaultPlan pb = sample_swarm_plan(b);
    ASSERT_EQ(pa, pb) << "run " << run;
    const std::string spec = to_string(pa);
    ASSERT_EQ(parse_fault_plan(spec), pa) << spec;  // the printed plan replays
    distinct.insert(spec);
    if (pa.empty()) ++empty_plans;
    for (const FaultRule& r : pa.rules) {
      EXPECT_NE(r.kind, FaultKind::kAbort) << spec;
      EXPECT_TRUE(fault_kind_valid_at(r.site, r.kind)) << spec;
      kinds.insert(r.kind);
      sites.insert(r.site);
    }
  }
  EXPECT_EQ(kinds.size(), static_cast<std::size_t>(kFaultKindCount - 1));
  EXPECT_EQ(sites.size(), static_cast<std::size_t>(kFaultSiteCount));
  // Level one is a 1/4 chance per kind: some runs have no fault at all, most runs differ.
  EXPECT_GT(empty_plans, 0);
  EXPECT_LT(empty_plans, 100);
  EXPECT_GT(distinct.size(), 300u);
}

TEST(FaultExhaustive, YieldsNPlusOnePlansWithEveryBoundary) {
  const FaultRule torn = parse_fault_plan("fused:torn(unit=token)").rules[0];
  for (int64_t n : {0, 1, 7, 64}) {
    const std::vector<FaultPlan> plans = enumerate_fail_at_every_step(torn, n);
    ASSERT_EQ(static_cast<int64_t>(plans.size()), n + 1);
    for (int64_t k = 0; k <= n; ++k) {
      const FaultRule& r = plans[static_cast<std::size_t>(k)].rules.at(0);
      EXPECT_EQ(r.k, (UnitCount{UnitCount::Mode::kNumber, k}));
      EXPECT_EQ(r.on_call, 1);
      EXPECT_EQ(r.unit, TornUnit::kToken);
      EXPECT_EQ(to_string(parse_fault_plan(to_string(plans[static_cast<std::size_t>(k)]))),
                to_string(plans[static_cast<std::size_t>(k)]));
    }
  }
  EXPECT_THROW(enumerate_fail_at_every_step(parse_fault_plan("fused:launch").rules[0], 4),
               InvalidInput);
  EXPECT_THROW(enumerate_fail_at_every_step(torn, -1), InvalidInput);
}

TEST(FaultGranularity, MapsOntoPrefixesOfTheNativeOrder) {
  // Fused kernel: T = 5 tokens, 8 heads each -> N = 40 native units.
  EXPECT_EQ(units_at_granularity(TornUnit::kHead, 4, 40, 5), 40);
  EXPECT_EQ(units_at_granularity(TornUnit::kToken, 4, 40, 5), 5);
  EXPECT_EQ(units_at_granularity(TornUnit::kTile, 2, 40, 5), 3);
  EXPECT_EQ(native_units_for(TornUnit::kHead, 4, 13, 40, 5), 13);
  EXPECT_EQ(native_units_for(TornUnit::kToken, 4, 2, 40, 5), 16);
  EXPECT_EQ(native_units_for(TornUnit::kTile, 2, 2, 40, 5), 32);
  EXPECT_EQ(native_units_for(TornUnit::kTile, 2, 3, 40, 5), 40);  // last tile is short
  EXPECT_EQ(native_units_for(TornUnit::kToken, 4, 9, 40, 5), 40);
  EXPECT_EQ(units_at_granularity(TornUnit::kToken, 4, 0, 0), 0);
  EXPECT_THROW(units_at_granularity(TornUnit::kToken, 4, 41, 5), InvalidInput);
}

TEST(FaultUnitCount, ResolvesEveryMode) {
  Prng prng = Prng::stream(test_seed(), "unit-count");
  EXPECT_EQ((UnitCount{UnitCount::Mode::kNumber, 3}).resolve(10, prng), 3);
  EXPECT_EQ((UnitCount{UnitCount::Mode::kNumber, 30}).resolve(10, prng), 10);
  EXPECT_EQ((UnitCount{UnitCount::Mode::kMid, 0}).resolve(11, prng), 5);
  EXPECT_EQ((UnitCount{UnitCount::Mode::kLast, 0}).resolve(11, prng), 10);
  EXPECT_EQ((UnitCount{UnitCount::Mode::kLast, 0}).resolve(0, prng), 0);
  EXPECT_EQ((UnitCount{UnitCount::Mode::kAll, 0}).resolve(11, prng), 11);
  std::set<int64_t> drawn;
  for (int i = 0; i < 400; ++i) {
    const int64_t k = (UnitCount{UnitCount::Mode::kSeed, 0}).resolve(4, prng);
    ASSERT_GE(k, 0);
    ASSERT_LE(k, 4);
    drawn.insert(k);
  }
  EXPECT_EQ(drawn.size(), 5u);  // both ends reachable
}

TEST(FaultStatsTest, UnreachedRulesAndMerge) {
  const FaultPlan plan = parse_fault_plan("fused:torn(k=1);backup:oom");
  FaultStats s;
  EXPECT_EQ(unreached_rules(s, plan).size(), 2u);
  s.injections[static_cast<std::size_t>(FaultSite::kFused)]
              [static_cast<std::size_t>(FaultKind::kTorn)] = 2;
  s.calls[static_cast<std::size_t>(FaultSite::kFused)] = 3;
  ASSERT_EQ(unreached_rules(s, plan), std::vector<std::string>{"backup:oom"});
  FaultStats t;
  t.merge(s);
  t.merge(s);
  EXPECT_EQ(t.injection_count(FaultSite::kFused, FaultKind::kTorn), 4);
  EXPECT_EQ(t.call_count(FaultSite::kFused), 6);
  EXPECT_TRUE(t.kind_reached(FaultKind::kTorn));
  EXPECT_FALSE(t.kind_reached(FaultKind::kOom));
  EXPECT_NE(t.summary().find("fused: 6 calls, 4 torn"), std::string::npos) << t.summary();
}

}  // namespace
}  // namespace rcsim
