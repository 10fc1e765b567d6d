// Budget, seed, regression replay and reporting for every RCSIM_PROP (see prop_harness.h).
#include "property_tests/harness/prop_harness.h"

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>
#include <unordered_map>
#include <vector>

#include <rapidcheck/detail/Configuration.h>

#include "core/check.h"
#include "core/limits.h"
#include "core/mutants.h"
#include "core/prng.h"

#ifndef RCSIM_PROPERTY_REGRESSIONS_FILE
#error "the build must define RCSIM_PROPERTY_REGRESSIONS_FILE (property_tests/CMakeLists.txt)"
#endif

namespace rcsim::props {
namespace {

int64_t parse_env_int(const char* name, int64_t fallback, int64_t lo, int64_t hi, bool* found) {
  const char* text = std::getenv(name);
  *found = false;
  if (text == nullptr || *text == '\0') return fallback;
  char* end = nullptr;
  const long long v = std::strtoll(text, &end, 0);
  RCSIM_ASSERT(end != nullptr && *end == '\0' && v >= lo && v <= hi,
               "{}='{}' must be an integer in [{}, {}]", name, text, lo, hi);
  *found = true;
  return static_cast<int64_t>(v);
}

// Where regressions.txt is: $RCSIM_REGRESSIONS_DIR/regressions.txt when set (it must exist),
// else the source tree's copy compiled in, else property_tests/regressions.txt under the current
// directory or one of its parents (the repository root of a checkout whose path differs from the
// build's: a GPU machine running carried binaries). Never silently empty: a stored counterexample
// that is not replayed is a test that stopped testing, so no file found aborts with the places
// tried.
std::string regressions_path() {
  namespace fs = std::filesystem;
  constexpr const char* kFileName = "regressions.txt";
  if (const char* dir = std::getenv("RCSIM_REGRESSIONS_DIR"); dir != nullptr && *dir != '\0') {
    const fs::path configured = fs::path(dir) / kFileName;
    RCSIM_ASSERT(fs::is_regular_file(configured),
                 "RCSIM_REGRESSIONS_DIR='{}' has no {} (the stored property counterexamples); "
                 "point it at the repository's property_tests/",
                 dir, kFileName);
    return configured.string();
  }
  std::vector<std::string> tried = {RCSIM_PROPERTY_REGRESSIONS_FILE};
  if (fs::is_regular_file(RCSIM_PROPERTY_REGRESSIONS_FILE)) return RCSIM_PROPERTY_REGRESSIONS_FILE;
  std::error_code ec;
  fs::path dir = fs::current_path(ec);
  for (int depth = 0; !ec && depth < 16 && !dir.empty(); ++depth) {  // bounded walk to the root
    const fs::path candidate = dir / "property_tests" / kFileName;
    tried.push_back(candidate.string());
    if (fs::is_regular_file(candidate)) return candidate.string();
    if (dir == dir.parent_path()) break;
    dir = dir.parent_path();
  }
  std::string places;
  for (const std::string& t : tried) places += "\n  " + t;
  RCSIM_FAIL("property regressions file {} not found; set RCSIM_REGRESSIONS_DIR to the "
             "repository's property_tests/ (tried:{})",
             kFileName, places);
}

// Stored failures: every `reproduce=...` line of regressions.txt, merged, keyed by property id.
const std::unordered_map<std::string, rc::detail::Reproduce>& stored_regressions() {
  static const auto map = [] {
    std::unordered_map<std::string, rc::detail::Reproduce> out;
    const std::string path = regressions_path();
    std::ifstream in(path);
    RCSIM_ASSERT(in.good(), "cannot read the property regressions file {}", path);
    std::printf("property regressions: %s\n", path.c_str());
    std::string line;
    int64_t line_number = 0;
    while (line_number < 10000 && std::getline(in, line)) {  // bounded: a sane file is short
      ++line_number;
      if (line.empty() || line[0] == '#') continue;
      try {
        const auto cfg = rc::detail::configFromString(line);
        for (const auto& [id, rep] : cfg.reproduce) out[id] = rep;
      } catch (const std::exception& e) {
        RCSIM_FAIL("{}:{}: unreadable reproduce line: {}", path, line_number, e.what());
      }
    }
    return out;
  }();
  return map;
}

std::string reproduce_string(const std::string& id, const rc::detail::Reproduce& rep) {
  rc::detail::Configuration cfg;
  cfg.reproduce[id] = rep;
  return rc::detail::configToMinimalString(cfg);
}

std::string unquote(std::string s) {
  if (s.size() >= 2 && s.front() == '"' && s.back() == '"') return s.substr(1, s.size() - 2);
  return s;
}

// Per-dimension marginals of RapidCheck's tag-combination distribution (tags are "dim=value").
void print_marginals(const std::string& id, const rc::detail::Distribution& dist, int cases) {
  std::map<std::string, std::map<std::string, int>> tables;
  for (const auto& [tags, count] : dist) {
    for (const std::string& raw : tags) {
      const std::string tag = unquote(raw);
      const auto eq = tag.find('=');
      const std::string dim = eq == std::string::npos ? std::string("tag") : tag.substr(0, eq);
      const std::string value = eq == std::string::npos ? tag : tag.substr(eq + 1);
      tables[dim][value] += count;
    }
  }
  if (tables.empty()) return;
  std::ostringstream os;
  os << "classification of " << cases << " passing cases of " << id << ":\n";
  for (const auto& [dim, rows] : tables) {
    os << "  " << dim << ":";
    for (const auto& [value, count] : rows) {
      os << "  " << value << " " << (100 * count + cases / 2) / (cases > 0 ? cases : 1) << "%";
    }
    os << "\n";
  }
  std::cout << os.str() << std::flush;
}

// Counts shrink steps so a report can say how far RapidCheck shrank; prints nothing itself.
class CountingListener final : public rc::detail::TestListener {
 public:
  void onTestCaseFinished(const rc::detail::CaseDescription&) override {}
  void onShrinkTried(const rc::detail::CaseDescription&, bool accepted) override {
    ++tried;
    if (accepted) ++accepted_count;
  }
  void onTestFinished(const rc::detail::TestMetadata&, const rc::detail::TestResult&) override {}
  int tried = 0;
  int accepted_count = 0;
};

// A falsified property: the shrunk counterexample, how shrinking went, and the seeds and
// command that reproduce it (style.md 3: a one-line repro on failure).
void report_failure(const std::string& id, const rc::detail::FailureResult& bad,
                    const CountingListener& listener, uint64_t seed, Outcome& out,
                    std::ostringstream& report) {
  out.num_success = bad.numSuccess;
  out.description = bad.description;
  out.counterexample = bad.counterExample;
  out.reproduce = reproduce_string(id, bad.reproduce);
  report << "[" << id << "] FALSIFIED after " << bad.numSuccess << " passing cases"
         << (out.from_regression ? " (stored regression)" : "") << "\n";
  report << "  shrunk counterexample:\n";
  for (const auto& [type, value] : bad.counterExample) {
    report << "    " << type << ": " << value << "\n";
  }
  report << "  failure: " << bad.description << "\n";
  report << "  shrinking: " << listener.accepted_count << " steps accepted of "
         << listener.tried << " tried\n";
  out.shrink_steps = listener.accepted_count;
  report << "  project seed: " << seed << "   mutant: " << mutant_name(active_mutant())
         << "\n";
  report << "  reproduce: " << out.reproduce << "\n";
  report << "  repro: RCSIM_SEED=" << seed << " RC_PARAMS=\"" << out.reproduce
         << "\" <test binary> --gtest_filter=" << id << "\n";
}

}  // namespace

const Budget& budget() {
  static const Budget b = [] {
    Budget out;
    bool found = false;
    out.cases = static_cast<int>(parse_env_int("RCSIM_PROPERTY_CASES", kCasesDefault, 1,
                                               kCasesMax, &found));
    out.from_env_cases = found;
    out.seed = static_cast<uint64_t>(
        parse_env_int("RCSIM_SEED", static_cast<int64_t>(kSeedDefault), 0, INT64_MAX, &found));
    out.from_env_seed = found;
    // CI keeps the AITER grid's large token counts (513 .. 1257) out unless asked for; nightly
    // raises the cap (docs/properties.md). The default scales with the case count so that a
    // nightly run with many cases also covers the big shapes.
    const int64_t tokens_default = out.cases >= 500 ? 1257 : 127;
    out.tokens_max = parse_env_int("RCSIM_PROPERTY_TOKENS_MAX", tokens_default, 1,
                                   limits::kTokensPerBatchMax, &found);
    std::printf("rcsim properties: seed %llu (RCSIM_SEED%s), cases %d (RCSIM_PROPERTY_CASES%s), "
                "tokens_max %lld, mutant %s\n",
                static_cast<unsigned long long>(out.seed), out.from_env_seed ? "" : " default",
                out.cases, out.from_env_cases ? "" : " default",
                static_cast<long long>(out.tokens_max),
                std::string(mutant_name(active_mutant())).c_str());
    return out;
  }();
  return b;
}

std::string current_test_id() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  if (info == nullptr) return "no-test";
  return std::string(info->test_suite_name()) + "/" + info->name();
}

Outcome run_property(const std::string& id, const rc::detail::Property& property,
                     const RunOptions& options) {
  const Budget& b = budget();
  Outcome out;
  out.id = id;
  rc::detail::TestMetadata metadata;
  metadata.id = id;
  metadata.description = id;
  rc::detail::TestParams params = rc::detail::configuration().testParams;
  params.seed = mix_seed(b.seed, label_hash(id));
  out.rc_seed = params.seed;
  params.maxSuccess = std::max(1, b.cases * options.cases_percent / 100);
  params.disableShrinking = options.disable_shrinking;
  // Small sizes first matter more than huge ones here; generators scale with size up to 100.
  params.maxSize = 100;

  // Regressions first: the stored failing cases (and RC_PARAMS' own reproduce key) of this id.
  std::unordered_map<std::string, rc::detail::Reproduce> replay;
  if (options.replay_regressions) {
    const auto& stored = stored_regressions();
    if (auto it = stored.find(id); it != stored.end()) replay.emplace(id, it->second);
  }
  const auto& from_env = rc::detail::configuration().reproduce;
  if (auto it = from_env.find(id); it != from_env.end()) replay[id] = it->second;

  std::optional<rc::detail::TestResult> maybe_result;
  CountingListener listener;
  if (!replay.empty()) {
    maybe_result = rc::detail::checkProperty(property, metadata, params, listener, replay);
    out.from_regression = !maybe_result->template is<rc::detail::SuccessResult>();
    if (!out.from_regression) {
      std::printf("[%s] stored regression replayed: passes now\n", id.c_str());
    }
  }
  if (replay.empty() || !out.from_regression) {
    maybe_result = rc::detail::checkProperty(property, metadata, params, listener, {});
  }
  const rc::detail::TestResult& result = *maybe_result;

  std::ostringstream report;
  if (result.template is<rc::detail::SuccessResult>()) {
    const auto& ok = result.template get<rc::detail::SuccessResult>();
    out.passed = true;
    out.num_success = ok.numSuccess;
    report << "[" << id << "] OK, passed " << ok.numSuccess << " cases (property seed "
           << out.rc_seed << " = mix(project seed " << b.seed << ", id))\n";
    if (!options.quiet) print_marginals(id, ok.distribution, ok.numSuccess);
  } else if (result.template is<rc::detail::FailureResult>()) {
    report_failure(id, result.template get<rc::detail::FailureResult>(), listener, b.seed, out,
                   report);
  } else if (result.template is<rc::detail::GaveUpResult>()) {
    const auto& gave = result.template get<rc::detail::GaveUpResult>();
    out.gave_up = true;
    out.num_success = gave.numSuccess;
    out.description = gave.description;
    report << "[" << id << "] GAVE UP after " << gave.numSuccess << ": " << gave.description
           << " (project seed " << b.seed << ")\n";
  } else {
    out.description = result.template get<rc::detail::Error>().description;
    report << "[" << id << "] ERROR: " << out.description << "\n";
  }
  out.report = report.str();
  return out;
}

void expect_passed(const Outcome& outcome) {
  std::cout << outcome.report << std::flush;
  EXPECT_TRUE(outcome.passed) << outcome.report;
}

void expect_failed(const Outcome& outcome, std::string_view why_it_must_fail) {
  std::cout << outcome.report << std::flush;
  EXPECT_FALSE(outcome.passed) << "the property did not catch the defect (" << why_it_must_fail
                               << "): " << outcome.report;
  EXPECT_FALSE(outcome.gave_up) << outcome.report;
}

void classify(std::string_view dimension, std::string_view value) {
  rc::detail::tag({std::string(dimension) + "=" + std::string(value)});
}

}  // namespace rcsim::props
