// The one place where rcsim's RapidCheck properties get their budget, their seed and their
// regression replays, and where failures are turned into a reproducible report.
//
// Why not plain RC_GTEST_PROP: RapidCheck takes its case count and seed only from RC_PARAMS, it
// cannot replay a file of stored failures, and it prints neither the project seed nor per-
// dimension classification tables. RCSIM_PROP has the same shape as RC_GTEST_PROP (a GoogleTest
// TEST whose body is the property) and adds exactly those things:
//   - case count: env RCSIM_PROPERTY_CASES (CI default kCasesDefault; nightly runs set more, see
//     docs/properties.md), scaled per property by a weight in percent for the heavy ones;
//   - seed: env RCSIM_SEED (default kSeedDefault) drives every property; each property's
//     RapidCheck seed is mix_seed(project seed, label_hash(property id)), so properties do not
//     share a random stream and one seed replays the whole suite;
//   - regressions: every `reproduce=...` line of property_tests/regressions.txt (and RC_PARAMS'
//     reproduce key) whose id matches is replayed BEFORE the random search;
//   - failure report: RapidCheck's shrunk counterexample, its reproduce string, the project seed
//     and a one-line repro command.
#pragma once

#include <rapidcheck.h>

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

namespace rcsim::props {

inline constexpr int kCasesDefault = 100;          // CI: `ctest -L property` < 3 min on 2 cores
inline constexpr uint64_t kSeedDefault = 20260306;  // the date of ATOM@PR-base, nothing magic
inline constexpr int kCasesMax = 100000;            // a typo in the env var must not run for days

struct Budget {
  int cases = kCasesDefault;  // RCSIM_PROPERTY_CASES
  uint64_t seed = kSeedDefault;  // RCSIM_SEED
  int64_t tokens_max = 0;     // RCSIM_PROPERTY_TOKENS_MAX: larger AITER-grid T are not drawn
  bool from_env_cases = false;
  bool from_env_seed = false;
};
// Read once from the environment; a malformed value aborts with a clear message.
const Budget& budget();

struct RunOptions {
  int cases_percent = 100;        // scales budget().cases (heavy properties run fewer cases)
  bool disable_shrinking = false;  // negative tests only need "it fails", not the minimal case
  bool replay_regressions = true;
  bool quiet = false;  // do not print the distribution (inner runs of meta-properties)
};

struct Outcome {
  std::string id;
  bool passed = false;   // SuccessResult
  bool gave_up = false;  // too many discards
  int num_success = 0;
  uint64_t rc_seed = 0;
  std::string description;      // the failure message of the shrunk case
  std::string reproduce;        // "reproduce=..." for RC_PARAMS / regressions.txt
  std::vector<std::pair<std::string, std::string>> counterexample;  // shown values
  std::string report;           // everything above, printable
  bool from_regression = false;  // the failure came from a stored reproduce string
  int shrink_steps = 0;          // accepted shrinks on the way to the counterexample
};

// Runs `property` (a RapidCheck property: rc::detail::Property) under the budget.
Outcome run_property(const std::string& id, const rc::detail::Property& property,
                     const RunOptions& options = {});

template <typename Testable>
Outcome check(const std::string& id, Testable&& testable, const RunOptions& options = {}) {
  return run_property(id, rc::detail::toProperty(std::forward<Testable>(testable)), options);
}

// The id of the running GoogleTest test, "Suite/Name": the key of regression entries.
std::string current_test_id();

// Fails the running GoogleTest test with the report when the outcome is not a pass.
void expect_passed(const Outcome& outcome);
// For negative tests: the property must FAIL (a mutant is active); prints what it found.
void expect_failed(const Outcome& outcome, std::string_view why_it_must_fail);

// ---- Classification tables --------------------------------------------------------------------
// RC_TAG gives one table of tag *combinations*; with six dimensions per case that table is too
// sparse to read. classify() tags the case with "dimension=value" through RapidCheck's RC_TAG
// machinery, and run_property prints the per-dimension marginals of that distribution.
void classify(std::string_view dimension, std::string_view value);

}  // namespace rcsim::props

// Same shape as RC_GTEST_PROP, run through rcsim::props::check with the suite's budget.
#define RCSIM_PROP_WITH(TestCase, Name, Options, ArgList)                                  \
  void rcsimPropImpl_##TestCase##_##Name ArgList;                                          \
  TEST(TestCase, Name) {                                                                   \
    ::rcsim::props::expect_passed(::rcsim::props::check(                                   \
        ::rcsim::props::current_test_id(), &rcsimPropImpl_##TestCase##_##Name, Options)); \
  }                                                                                        \
  void rcsimPropImpl_##TestCase##_##Name ArgList

#define RCSIM_PROP(TestCase, Name, ArgList) \
  RCSIM_PROP_WITH(TestCase, Name, ::rcsim::props::RunOptions{}, ArgList)
