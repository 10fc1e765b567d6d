#include "fault_injection/sim/campaign.h"

#include <algorithm>
#include <chrono>
#include <functional>
#include <optional>

#include <fmt/format.h>
#include <xxhash.h>

#include "core/check.h"
#include "core/prng.h"
#include "fault_injection/plan/fault_plan.h"

namespace rcsim::sim {
namespace {

// Sites and kinds the campaign must reach. Branch B's site (rope_cache) is excluded: Qwen3
// layers have q_norm, so PR #279 never takes B (the engine asserts that it does not); abort is
// excluded because it kills the process (a death test covers it).
bool site_gated(FaultSite s) { return s != FaultSite::kRopeCache; }
bool kind_gated(FaultKind k) { return k != FaultKind::kAbort; }
// The field-failure kinds of issue 10 (late device errors, per-call rebuilds, API drift, OOM),
// named explicitly so that narrowing kind_gated() can never drop them from the gate silently.
constexpr FaultKind kGatedFieldKinds[] = {FaultKind::kLate, FaultKind::kRebuild,
                                          FaultKind::kInvalid, FaultKind::kOom};
// Fallback reasons the dispatcher must have fallen back for (DispatchProcess counters).
constexpr FailureClass kGatedFallbackReasons[] = {FailureClass::kUnavailable,
                                                  FailureClass::kLaunchFailure};

SimConfig campaign_config(const CampaignOptions& o, uint64_t seed) {
  SimOverrides ov = o.overrides;
  if (!ov.policy) ov.policy = campaign_policy_of_seed(seed);
  if (!ov.graph_mode) ov.graph_mode = campaign_graph_mode_of_seed(seed);
  return sample_config(seed, ov);
}

// Seeds of [0, n) with i % count == index.
int64_t seeds_in_shard(uint64_t n, int64_t index, int64_t count) {
  const auto c = static_cast<uint64_t>(count);
  const auto i = static_cast<uint64_t>(index);
  return static_cast<int64_t>(n / c + (i < n % c ? 1 : 0));
}

uint64_t run_digest_term(uint64_t seed, uint64_t run_digest) {
  const uint64_t words[2] = {seed, run_digest};
  return XXH3_64bits(words, sizeof words);
}

// Keeps the first `kHazardExamplesMax` hazards in seed order.
constexpr std::size_t kHazardExamplesMax = 8;

std::optional<RunVerdict> verdict_from_name(std::string_view name) {
  for (RunVerdict v : {RunVerdict::kPass, RunVerdict::kCorrectness, RunVerdict::kLiveness,
                       RunVerdict::kCrash}) {
    if (verdict_name(v) == name) return v;
  }
  return std::nullopt;
}

nlohmann::json options_json(const CampaignOptions& o) {
  const SimOverrides& ov = o.overrides;
  nlohmann::json j = nlohmann::json::object();
  j["faults"] = ov.faults ? *ov.faults : "swarm";
  j["mutant"] = std::string(mutant_name(ov.mutant ? *ov.mutant : Mutant::kNone));
  j["policy"] = ov.policy ? std::string(policy_name(*ov.policy)) : "by seed";
  j["graph_mode"] = ov.graph_mode ? std::string(graph_mode_name(*ov.graph_mode)) : "by seed";
  if (ov.model) j["model"] = *ov.model;
  if (ov.layers) j["layers"] = *ov.layers;
  if (ov.steps) j["steps"] = *ov.steps;
  if (ov.kv_cache_dtype) j["kv_cache"] = std::string(kv_cache_dtype_name(*ov.kv_cache_dtype));
  if (ov.sliding_window) j["sliding_window"] = *ov.sliding_window;
  j["recheck_one_in"] = o.recheck_one_in;
  j["backend"] = ov.backend.value_or("cpu");
  j["cross_backend"] = o.cross_backend;
  return j;
}

}  // namespace

FallbackPolicy campaign_policy_of_seed(uint64_t seed) {
  const auto policies = all_policies();
  return policies[mix_seed(seed, label_hash("campaign policy")) % policies.size()];
}

GraphMode campaign_graph_mode_of_seed(uint64_t seed) {
  return mix_seed(seed, label_hash("campaign graph mode")) % 2 == 1 ? GraphMode::kCaptureReplay
                                                                    : GraphMode::kEager;
}

void PolicyTotals::add(const RunResult& run) {
  ++runs;
  processes += run.processes;
  calls += run.calls;
  fused_attempts += run.fused_attempts;
  rebuild_attempts += run.faults.rebuild_attempts;
  rebuild_cost_us += run.faults.rebuild_cost_us;
  rebuild_log_lines += run.rebuild_log_lines;
  rebuild_attempts_max_per_process =
      std::max(rebuild_attempts_max_per_process, run.rebuild_attempts_max_per_process);
  fused_rebuild_attempts_max_per_process = std::max(fused_rebuild_attempts_max_per_process,
                                                    run.fused_rebuild_attempts_max_per_process);
  graphs_captured += run.graphs_captured;
  graph_capture_failures += run.graph_capture_failures;
  graph_replays += run.graph_replays;
  graph_replayed_fallback_layers += run.graph_replayed_fallback_layers;
  graph_replay_backup_copies += run.graph_replay_backup_copies;
  graph_replay_backup_bytes += run.graph_replay_backup_bytes;
}

nlohmann::json policy_totals_json(const PolicyTotals& t) {
  return {{"runs", t.runs},
          {"processes", t.processes},
          {"calls", t.calls},
          {"fused_attempts", t.fused_attempts},
          {"rebuild_attempts", t.rebuild_attempts},
          {"rebuild_simulated_cost_us", t.rebuild_cost_us},
          {"rebuild_log_lines", t.rebuild_log_lines},
          {"rebuild_attempts_max_per_process", t.rebuild_attempts_max_per_process},
          {"fused_rebuild_attempts_max_per_process", t.fused_rebuild_attempts_max_per_process},
          {"graphs_captured", t.graphs_captured},
          {"graph_capture_failures", t.graph_capture_failures},
          {"graph_replays", t.graph_replays},
          {"graph_replayed_fallback_layers", t.graph_replayed_fallback_layers},
          {"graph_replay_backup_copies", t.graph_replay_backup_copies},
          {"graph_replay_backup_bytes", t.graph_replay_backup_bytes}};
}

void PolicyTotals::merge(const PolicyTotals& o) {
  runs += o.runs;
  processes += o.processes;
  calls += o.calls;
  fused_attempts += o.fused_attempts;
  rebuild_attempts += o.rebuild_attempts;
  rebuild_cost_us += o.rebuild_cost_us;
  rebuild_log_lines += o.rebuild_log_lines;
  rebuild_attempts_max_per_process =
      std::max(rebuild_attempts_max_per_process, o.rebuild_attempts_max_per_process);
  fused_rebuild_attempts_max_per_process =
      std::max(fused_rebuild_attempts_max_per_process, o.fused_rebuild_attempts_max_per_process);
  graphs_captured += o.graphs_captured;
  graph_capture_failures += o.graph_capture_failures;
  graph_replays += o.graph_replays;
  graph_replayed_fallback_layers += o.graph_replayed_fallback_layers;
  graph_replay_backup_copies += o.graph_replay_backup_copies;
  graph_replay_backup_bytes += o.graph_replay_backup_bytes;
}

namespace {

void validate_campaign_options(const CampaignOptions& o) {
  RCSIM_REQUIRE(o.seed_first <= o.seed_last, "--seeds A:B needs A <= B");
  RCSIM_REQUIRE(o.seed_last - o.seed_first < kCampaignSeedsMax, "--seeds: more than {} seeds",
                kCampaignSeedsMax);
  RCSIM_REQUIRE(o.shard_count >= 1 && o.shard_index >= 0 && o.shard_index < o.shard_count,
                "--shard i/n needs 0 <= i < n");
  RCSIM_REQUIRE(o.budget_seconds > 0, "--budget must be positive");
  RCSIM_REQUIRE(o.recheck_one_in >= 1, "recheck_one_in must be >= 1");
  RCSIM_REQUIRE(!o.cross_backend || o.overrides.backend.value_or("cpu") != "cpu",
                "--cross-backend compares a backend with the CPU: it needs --backend gpu");
}

// One run's counts added to the campaign's totals (per policy, faults, hazards, digest).
void add_run_totals(CampaignResult& r, const SimConfig& cfg, uint64_t seed, const RunResult& run) {
  ++r.runs;
  r.last_seed_run = seed;
  ++r.runs_by_policy[static_cast<std::size_t>(cfg.policy)];
  if (cfg.graph_mode == GraphMode::kCaptureReplay) ++r.runs_graph_mode;
  r.by_policy[static_cast<std::size_t>(cfg.policy)].add(run);
  r.digest += run_digest_term(seed, run.digest);
  r.steps += run.steps_run;
  r.calls += run.calls;
  r.fallbacks += run.fallbacks;
  r.restores += run.restores;
  r.surfaced_errors += run.surfaced_errors;
  r.steps_aborted += run.steps_aborted;
  r.process_restarts += run.process_restarts;
  r.checks_passed += run.checks_passed;
  if (!run.hazard.empty()) {
    ++r.hazards;
    if (r.hazard_examples.size() < kHazardExamplesMax) {
      r.hazard_examples.push_back({seed, std::string(policy_name(cfg.policy)), run.hazard});
    }
  }
  r.attention_reads_differing += run.attention_reads_differing;
  r.attention_max_abs_diff = std::max(r.attention_max_abs_diff, run.attention_max_abs_diff);
  for (std::size_t c = 0; c < r.fallbacks_by_class.size(); ++c) {
    r.fallbacks_by_class[c] += run.fallbacks_by_class[c];
  }
  r.faults.merge(run.faults);
}

// Determinism self-check (FoundationDB): a share of seeds run twice, digests must match. Returns
// false (and records the failure) when the second run differs.
bool recheck_determinism(CampaignResult& r, const CampaignOptions& o, const SimConfig& cfg,
                         uint64_t seed, const RunResult& run) {
  if (mix_seed(seed, label_hash("recheck")) % static_cast<uint64_t>(o.recheck_one_in) != 0) {
    return true;
  }
  ++r.rechecked;
  const RunResult again = run_simulation(cfg);
  if (again.digest == run.digest && again.verdict == run.verdict) return true;
  r.failures.push_back({seed, run.verdict, true, false,
                        fmt::format("nondeterminism: digest {:016x} then {:016x}", run.digest,
                                    again.digest),
                        encode_token(cfg, o.build_id), ""});
  return false;
}

// The same seed on the CPU reference: one seed, one digest, whatever the backend. Returns false
// (and records the failure with a token per side) when they differ.
bool check_cross_backend(CampaignResult& r, const CampaignOptions& o, const SimConfig& cfg,
                         uint64_t seed, const RunResult& run,
                         const std::function<double()>& elapsed) {
  SimConfig twin = cfg;
  twin.backend = "cpu";
  const double twin_start = elapsed();
  const RunResult cpu = run_simulation(twin);
  r.run_seconds_twin += elapsed() - twin_start;
  ++r.cross_checked;
  if (cpu.digest == run.digest && cpu.verdict == run.verdict) return true;
  r.failures.push_back(
      {seed, run.verdict, false, true,
       fmt::format("cross-backend: {} gave {} digest {:016x}, cpu gave {} digest {:016x}{}",
                   cfg.backend, verdict_name(run.verdict), run.digest, verdict_name(cpu.verdict),
                   cpu.digest, cpu.failure.empty() ? "" : " (cpu: " + cpu.failure + ")"),
       encode_token(cfg, o.build_id), encode_token(twin, o.build_id)});
  return false;
}

// The run counted in the policy x fault-kind cell of every kind that fired in it.
void add_to_outcome_matrix(CampaignResult& r, FallbackPolicy policy, const RunResult& run,
                           bool ok) {
  for (FaultKind k : all_fault_kinds()) {
    int64_t fired = 0;
    for (FaultSite site : all_fault_sites()) fired += run.faults.injection_count(site, k);
    if (fired == 0) continue;
    OutcomeCell& cell =
        r.outcome_matrix[static_cast<std::size_t>(policy)][static_cast<std::size_t>(k)];
    ++cell.runs;
    cell.injections += fired;
    (ok ? cell.passed : cell.failed) += 1;
    if (ok && !run.hazard.empty()) ++cell.hazards;
  }
}

}  // namespace

CampaignResult run_campaign(const CampaignOptions& o, const CampaignProgress& progress) {
  validate_campaign_options(o);
  CampaignResult r;
  const auto start = std::chrono::steady_clock::now();
  const std::function<double()> elapsed = [start] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };
  const uint64_t n = o.seed_last - o.seed_first + 1;
  r.seeds_planned = seeds_in_shard(n, o.shard_index, o.shard_count);
  // This shard's seeds only: first + index, then every shard_count-th (bounded by the planned count).
  for (int64_t pick = 0; pick < r.seeds_planned; ++pick) {
    const uint64_t seed = o.seed_first + static_cast<uint64_t>(o.shard_index) +
                          static_cast<uint64_t>(pick) * static_cast<uint64_t>(o.shard_count);
    if (elapsed() > o.budget_seconds) {
      r.budget_exhausted = true;
      break;
    }
    const SimConfig cfg = campaign_config(o, seed);
    const double run_start = elapsed();
    const RunResult run = run_simulation(cfg);
    r.run_seconds += elapsed() - run_start;
    add_run_totals(r, cfg, seed, run);
    bool ok = run.verdict == RunVerdict::kPass;
    if (!ok) {
      r.failures.push_back(
          {seed, run.verdict, false, false, run.failure, encode_token(cfg, o.build_id), ""});
    }
    if (ok) ok = recheck_determinism(r, o, cfg, seed, run);
    if (o.cross_backend) ok = check_cross_backend(r, o, cfg, seed, run, elapsed) && ok;
    (ok ? r.passed : r.failed) += 1;
    add_to_outcome_matrix(r, cfg.policy, run, ok);
    if (progress) progress(r.runs, r);
  }
  r.elapsed_seconds = elapsed();
  note_rules_never_fired(o, r);
  if (o.coverage_gate) apply_coverage_gate(r);
  return r;
}

void note_rules_never_fired(const CampaignOptions& o, CampaignResult& r) {
  r.rules_never_fired.clear();
  const std::string faults = o.overrides.faults ? *o.overrides.faults : "swarm";
  if (faults == "swarm" || faults == "swarm-dense" || faults == "none" || r.runs == 0) return;
  r.rules_never_fired = unreached_rules(r.faults, parse_fault_plan(faults));
}

void apply_coverage_gate(CampaignResult& r) {
  r.coverage_missing.clear();
  if (r.runs == 0) {
    r.coverage_missing.push_back("runs (no seed ran)");
    return;
  }
  for (FaultSite s : all_fault_sites()) {
    if (!site_gated(s)) continue;
    int64_t hits = 0;
    for (FaultKind k : all_fault_kinds()) hits += r.faults.injection_count(s, k);
    if (hits == 0) r.coverage_missing.push_back(fmt::format("site {}", fault_site_name(s)));
  }
  for (FaultKind k : all_fault_kinds()) {
    if (kind_gated(k) && !r.faults.kind_reached(k)) {
      r.coverage_missing.push_back(fmt::format("kind {}", fault_kind_name(k)));
    }
  }
  for (FaultKind k : kGatedFieldKinds) {
    if (!r.faults.kind_reached(k)) {
      r.coverage_missing.push_back(fmt::format("issue-10 kind {}", fault_kind_name(k)));
    }
  }
  if (r.runs_graph_mode > 0) {
    // Graph mode was sampled: at least one capture and one replay must have happened.
    int64_t captured = 0, replays = 0;
    for (const PolicyTotals& t : r.by_policy) {
      captured += t.graphs_captured;
      replays += t.graph_replays;
    }
    if (captured == 0) r.coverage_missing.push_back("graph capture");
    if (replays == 0) r.coverage_missing.push_back("graph replay");
  }
  for (FailureClass c : kGatedFallbackReasons) {
    if (r.fallbacks_by_class[static_cast<std::size_t>(c)] == 0) {
      r.coverage_missing.push_back(fmt::format("fallback reason {}", failure_class_name(c)));
    }
  }
}

nlohmann::json throughput_json(const CampaignOptions& o, const CampaignResult& r) {
  const auto per_second = [](double n, double seconds) { return seconds > 0 ? n / seconds : 0.0; };
  const auto faults = static_cast<double>(r.faults.injection_count_total());
  const auto calls = static_cast<double>(r.calls);
  nlohmann::json j = {{"backend", o.overrides.backend.value_or("cpu")},
                      {"run_seconds", r.run_seconds},
                      {"faults_per_second", per_second(faults, r.run_seconds)},
                      {"calls_per_second", per_second(calls, r.run_seconds)},
                      {"wall_faults_per_second", per_second(faults, r.elapsed_seconds)},
                      {"wall_calls_per_second", per_second(calls, r.elapsed_seconds)},
                      {"cross_checked", r.cross_checked}};
  if (o.cross_backend) {
    j["cpu_twin"] = {{"run_seconds", r.run_seconds_twin},
                     {"faults_per_second", per_second(faults, r.run_seconds_twin)},
                     {"calls_per_second", per_second(calls, r.run_seconds_twin)}};
  }
  return j;
}

nlohmann::json campaign_report(const CampaignOptions& o, const CampaignResult& r) {
  nlohmann::json j;
  j["schema"] = "rcsim-campaign-report";
  j["schema_version"] = kCampaignReportSchemaVersion;
  j["seeds"] = {{"first", o.seed_first}, {"last", o.seed_last}, {"last_run", r.last_seed_run}};
  j["seeds_planned"] = r.seeds_planned;
  j["shard"] = {{"index", o.shard_index}, {"count", o.shard_count}};
  j["build_id"] = o.build_id;
  j["options"] = options_json(o);
  j["coverage_gate"] = o.coverage_gate;
  j["budget_seconds"] = o.budget_seconds;
  j["budget_exhausted"] = r.budget_exhausted;
  j["elapsed_seconds"] = r.elapsed_seconds;
  j["runs"] = r.runs;
  j["passed"] = r.passed;
  j["failed"] = r.failed;
  j["rechecked_for_determinism"] = r.rechecked;
  j["steps"] = r.steps;
  j["calls"] = r.calls;
  j["fallbacks"] = r.fallbacks;
  j["restores"] = r.restores;
  j["surfaced_errors"] = r.surfaced_errors;
  j["steps_aborted"] = r.steps_aborted;
  j["process_restarts"] = r.process_restarts;
  j["checks_passed"] = r.checks_passed;
  nlohmann::json hazard_examples = nlohmann::json::array();
  for (const CampaignHazard& h : r.hazard_examples) {
    hazard_examples.push_back({{"seed", h.seed}, {"policy", h.policy}, {"message", h.message}});
  }
  j["hazards"] = {{"runs", r.hazards}, {"examples", hazard_examples}};
  j["attention"] = {{"reads_differing_from_fused_shadow", r.attention_reads_differing},
                    {"max_abs_diff", r.attention_max_abs_diff}};
  j["faults_injected_total"] = r.faults.injection_count_total();
  nlohmann::json by_kind = nlohmann::json::object();
  nlohmann::json by_site_kind = nlohmann::json::object();
  for (FaultKind k : all_fault_kinds()) {
    int64_t total = 0;
    for (FaultSite s : all_fault_sites()) {
      const int64_t c = r.faults.injection_count(s, k);
      total += c;
      if (c > 0) by_site_kind[fmt::format("{}:{}", fault_site_name(s), fault_kind_name(k))] = c;
    }
    by_kind[std::string(fault_kind_name(k))] = total;
  }
  j["faults_by_kind"] = by_kind;
  j["rebuild"] = {{"attempts", r.faults.rebuild_attempts},
                  {"simulated_cost_us", r.faults.rebuild_cost_us}};
  j["late_faults"] = {{"armed", r.faults.late_armed}, {"surfaced", r.faults.late_surfaced}};
  j["k_clamped"] = r.faults.k_clamped;
  j["units_corrupted"] = r.faults.units_corrupted;
  j["faults_by_site_kind"] = by_site_kind;
  nlohmann::json calls_by_site = nlohmann::json::object();
  for (FaultSite s : all_fault_sites()) {
    calls_by_site[std::string(fault_site_name(s))] = r.faults.call_count(s);
  }
  j["calls_by_site"] = calls_by_site;
  nlohmann::json fallbacks = nlohmann::json::object();
  for (FailureClass c : kAllFailureClasses) {
    fallbacks[std::string(failure_class_name(c))] = r.fallbacks_by_class[static_cast<std::size_t>(c)];
  }
  j["fallbacks_by_class"] = fallbacks;
  nlohmann::json policies = nlohmann::json::object();
  for (FallbackPolicy p : all_policies()) {
    policies[std::string(policy_name(p))] = r.runs_by_policy[static_cast<std::size_t>(p)];
  }
  j["runs_by_policy"] = policies;
  j["runs_graph_mode"] = r.runs_graph_mode;
  nlohmann::json totals = nlohmann::json::object();
  for (FallbackPolicy p : all_policies()) {
    totals[std::string(policy_name(p))] = policy_totals_json(r.by_policy[static_cast<std::size_t>(p)]);
  }
  j["by_policy"] = totals;
  nlohmann::json matrix = nlohmann::json::object();
  for (FallbackPolicy p : all_policies()) {
    nlohmann::json row = nlohmann::json::object();
    for (FaultKind k : all_fault_kinds()) {
      const OutcomeCell& cell =
          r.outcome_matrix[static_cast<std::size_t>(p)][static_cast<std::size_t>(k)];
      row[std::string(fault_kind_name(k))] = {{"runs", cell.runs},
                                              {"injections", cell.injections},
                                              {"passed", cell.passed},
                                              {"hazards", cell.hazards},
                                              {"failed", cell.failed}};
    }
    matrix[std::string(policy_name(p))] = row;
  }
  j["outcome_matrix"] = matrix;
  j["coverage_missing"] = r.coverage_missing;
  j["rules_never_fired"] = r.rules_never_fired;
  nlohmann::json failures = nlohmann::json::array();
  for (const CampaignFailure& f : r.failures) {
    nlohmann::json entry = {{"seed", f.seed},
                            {"verdict", f.cross_backend      ? "cross-backend"
                                        : f.nondeterministic ? "nondeterminism"
                                                             : verdict_name(f.verdict)},
                            {"message", f.message},
                            {"token", f.token}};
    if (f.cross_backend) entry["token_cpu"] = f.token_twin;
    failures.push_back(entry);
  }
  j["failures"] = failures;
  j["throughput"] = throughput_json(o, r);
  j["digest"] = fmt::format("{:016x}", r.digest);
  return j;
}

namespace {

// The inverse of campaign_report for what a merge needs. `name` labels errors.
CampaignResult result_from_report(const nlohmann::json& j, const std::string& name) {
  CampaignResult r;
  auto i64 = [&](const nlohmann::json& obj, const char* key) -> int64_t {
    RCSIM_REQUIRE(obj.contains(key) && obj.at(key).is_number_integer(),
                  "{}: missing or non-integer field '{}'", name, key);
    return obj.at(key).get<int64_t>();
  };
  auto obj = [&](const nlohmann::json& parent, const char* key) -> const nlohmann::json& {
    RCSIM_REQUIRE(parent.contains(key) && parent.at(key).is_object(), "{}: missing object '{}'",
                  name, key);
    return parent.at(key);
  };
  r.runs = i64(j, "runs");
  r.passed = i64(j, "passed");
  r.failed = i64(j, "failed");
  r.rechecked = i64(j, "rechecked_for_determinism");
  r.steps = i64(j, "steps");
  r.calls = i64(j, "calls");
  r.fallbacks = i64(j, "fallbacks");
  r.restores = i64(j, "restores");
  r.surfaced_errors = i64(j, "surfaced_errors");
  r.steps_aborted = i64(j, "steps_aborted");
  r.process_restarts = i64(j, "process_restarts");
  r.checks_passed = i64(j, "checks_passed");
  r.seeds_planned = i64(j, "seeds_planned");
  r.runs_graph_mode = i64(j, "runs_graph_mode");
  r.budget_exhausted = j.value("budget_exhausted", false);
  r.elapsed_seconds = j.value("elapsed_seconds", 0.0);
  if (j.contains("throughput")) {
    const nlohmann::json& t = j.at("throughput");
    r.run_seconds = t.value("run_seconds", 0.0);
    r.cross_checked = t.value("cross_checked", int64_t{0});
    if (t.contains("cpu_twin")) r.run_seconds_twin = t.at("cpu_twin").value("run_seconds", 0.0);
  }
  r.last_seed_run = obj(j, "seeds").value("last_run", uint64_t{0});
  const nlohmann::json& hazards = obj(j, "hazards");
  r.hazards = i64(hazards, "runs");
  for (const nlohmann::json& h : hazards.at("examples")) {
    r.hazard_examples.push_back({h.at("seed").get<uint64_t>(), h.at("policy").get<std::string>(),
                                 h.at("message").get<std::string>()});
  }
  const nlohmann::json& att = obj(j, "attention");
  r.attention_reads_differing = i64(att, "reads_differing_from_fused_shadow");
  r.attention_max_abs_diff = att.at("max_abs_diff").get<double>();
  for (const auto& [key, count] : obj(j, "faults_by_site_kind").items()) {
    const auto colon = key.find(':');
    RCSIM_REQUIRE(colon != std::string::npos, "{}: bad faults_by_site_kind key '{}'", name, key);
    const auto site = fault_site_from_name(key.substr(0, colon));
    const auto kind = fault_kind_from_name(key.substr(colon + 1));
    RCSIM_REQUIRE(site && kind, "{}: unknown site or kind in '{}'", name, key);
    r.faults.injections[static_cast<std::size_t>(*site)][static_cast<std::size_t>(*kind)] =
        count.get<int64_t>();
  }
  for (const auto& [key, count] : obj(j, "calls_by_site").items()) {
    const auto site = fault_site_from_name(key);
    RCSIM_REQUIRE(site.has_value(), "{}: unknown site '{}'", name, key);
    r.faults.calls[static_cast<std::size_t>(*site)] = count.get<int64_t>();
  }
  r.faults.rebuild_attempts = i64(obj(j, "rebuild"), "attempts");
  r.faults.rebuild_cost_us = i64(obj(j, "rebuild"), "simulated_cost_us");
  r.faults.late_armed = i64(obj(j, "late_faults"), "armed");
  r.faults.late_surfaced = i64(obj(j, "late_faults"), "surfaced");
  r.faults.k_clamped = i64(j, "k_clamped");
  r.faults.units_corrupted = i64(j, "units_corrupted");
  for (const auto& [key, count] : obj(j, "fallbacks_by_class").items()) {
    const auto c = failure_class_from_name(key);
    RCSIM_REQUIRE(c.has_value(), "{}: unknown failure class '{}'", name, key);
    r.fallbacks_by_class[static_cast<std::size_t>(*c)] = count.get<int64_t>();
  }
  for (const auto& [key, count] : obj(j, "runs_by_policy").items()) {
    const auto p = policy_from_name(key);
    RCSIM_REQUIRE(p.has_value(), "{}: unknown policy '{}'", name, key);
    r.runs_by_policy[static_cast<std::size_t>(*p)] = count.get<int64_t>();
  }
  for (const auto& [key, t] : obj(j, "by_policy").items()) {
    const auto p = policy_from_name(key);
    RCSIM_REQUIRE(p.has_value(), "{}: unknown policy '{}'", name, key);
    PolicyTotals& out = r.by_policy[static_cast<std::size_t>(*p)];
    out.runs = i64(t, "runs");
    out.processes = i64(t, "processes");
    out.calls = i64(t, "calls");
    out.fused_attempts = i64(t, "fused_attempts");
    out.rebuild_attempts = i64(t, "rebuild_attempts");
    out.rebuild_cost_us = i64(t, "rebuild_simulated_cost_us");
    out.rebuild_log_lines = i64(t, "rebuild_log_lines");
    out.rebuild_attempts_max_per_process = i64(t, "rebuild_attempts_max_per_process");
    out.fused_rebuild_attempts_max_per_process = i64(t, "fused_rebuild_attempts_max_per_process");
    out.graphs_captured = i64(t, "graphs_captured");
    out.graph_capture_failures = i64(t, "graph_capture_failures");
    out.graph_replays = i64(t, "graph_replays");
    out.graph_replayed_fallback_layers = i64(t, "graph_replayed_fallback_layers");
    out.graph_replay_backup_copies = i64(t, "graph_replay_backup_copies");
    out.graph_replay_backup_bytes = i64(t, "graph_replay_backup_bytes");
  }
  for (const auto& [policy_key, row] : obj(j, "outcome_matrix").items()) {
    const auto p = policy_from_name(policy_key);
    RCSIM_REQUIRE(p.has_value(), "{}: unknown policy '{}'", name, policy_key);
    for (const auto& [kind_key, cell] : row.items()) {
      const auto k = fault_kind_from_name(kind_key);
      RCSIM_REQUIRE(k.has_value(), "{}: unknown fault kind '{}'", name, kind_key);
      OutcomeCell& out =
          r.outcome_matrix[static_cast<std::size_t>(*p)][static_cast<std::size_t>(*k)];
      out = {i64(cell, "runs"), i64(cell, "injections"), i64(cell, "passed"), i64(cell, "hazards"),
             i64(cell, "failed")};
    }
  }
  for (const nlohmann::json& f : j.at("failures")) {
    const std::string v = f.at("verdict").get<std::string>();
    const bool nondeterministic = v == "nondeterminism";
    const bool cross = v == "cross-backend";
    const auto verdict = nondeterministic || cross ? std::optional<RunVerdict>(RunVerdict::kPass)
                                                   : verdict_from_name(v);
    RCSIM_REQUIRE(verdict.has_value(), "{}: unknown verdict '{}'", name, v);
    r.failures.push_back({f.at("seed").get<uint64_t>(), *verdict, nondeterministic, cross,
                          f.at("message").get<std::string>(), f.at("token").get<std::string>(),
                          f.value("token_cpu", std::string())});
  }
  const std::string digest = j.at("digest").get<std::string>();
  RCSIM_REQUIRE(digest.size() == 16, "{}: digest '{}' is not 16 hex digits", name, digest);
  r.digest = std::stoull(digest, nullptr, 16);
  return r;
}

}  // namespace

MergedCampaign merge_campaign_reports(const std::vector<nlohmann::json>& reports,
                                      const std::vector<std::string>& names, bool coverage_gate) {
  RCSIM_REQUIRE(!reports.empty() && reports.size() == names.size(), "merge: no reports given");
  MergedCampaign m;
  const nlohmann::json& first = reports.front();
  for (std::size_t i = 0; i < reports.size(); ++i) {
    const nlohmann::json& j = reports[i];
    const std::string& name = names[i];
    RCSIM_REQUIRE(j.is_object() && j.value("schema", "") == "rcsim-campaign-report" &&
                      j.value("schema_version", 0) == kCampaignReportSchemaVersion,
                  "{}: not an rcsim campaign report of schema version {}", name,
                  kCampaignReportSchemaVersion);
    for (const char* key : {"build_id", "options"}) {
      RCSIM_REQUIRE(j.at(key) == first.at(key), "{}: '{}' differs from {}'s ({} vs {})", name, key,
                    names.front(), j.at(key).dump(), first.at(key).dump());
    }
    RCSIM_REQUIRE(j.at("seeds").at("first") == first.at("seeds").at("first") &&
                      j.at("seeds").at("last") == first.at("seeds").at("last"),
                  "{}: seed range differs from {}'s", name, names.front());
    RCSIM_REQUIRE(j.at("shard").at("count") == first.at("shard").at("count"),
                  "{}: shard count differs from {}'s", name, names.front());
    const int64_t index = j.at("shard").at("index").get<int64_t>();
    for (int64_t seen : m.shards_merged) {
      RCSIM_REQUIRE(seen != index, "{}: shard {} given twice", name, index);
    }
    m.shards_merged.push_back(index);
  }
  CampaignOptions& o = m.options;
  o.seed_first = first.at("seeds").at("first").get<uint64_t>();
  o.seed_last = first.at("seeds").at("last").get<uint64_t>();
  o.build_id = first.at("build_id").get<std::string>();
  o.budget_seconds = first.at("budget_seconds").get<double>();
  o.recheck_one_in = first.at("options").at("recheck_one_in").get<int64_t>();
  o.coverage_gate = coverage_gate;
  const std::string faults = first.at("options").at("faults").get<std::string>();
  o.overrides.faults = faults;
  o.overrides.backend = first.at("options").value("backend", std::string("cpu"));
  o.cross_backend = first.at("options").value("cross_backend", false);
  const auto mutant = mutant_from_name(first.at("options").at("mutant").get<std::string>());
  if (mutant && *mutant != Mutant::kNone) o.overrides.mutant = *mutant;
  CampaignResult& r = m.result;
  for (std::size_t i = 0; i < reports.size(); ++i) {
    const CampaignResult s = result_from_report(reports[i], names[i]);
    r.runs += s.runs;
    r.passed += s.passed;
    r.failed += s.failed;
    r.rechecked += s.rechecked;
    r.steps += s.steps;
    r.calls += s.calls;
    r.fallbacks += s.fallbacks;
    r.restores += s.restores;
    r.surfaced_errors += s.surfaced_errors;
    r.steps_aborted += s.steps_aborted;
    r.process_restarts += s.process_restarts;
    r.checks_passed += s.checks_passed;
    r.seeds_planned += s.seeds_planned;
    r.runs_graph_mode += s.runs_graph_mode;
    r.budget_exhausted = r.budget_exhausted || s.budget_exhausted;
    r.elapsed_seconds = std::max(r.elapsed_seconds, s.elapsed_seconds);  // shards run side by side
    r.run_seconds += s.run_seconds;
    r.run_seconds_twin += s.run_seconds_twin;
    r.cross_checked += s.cross_checked;
    if (s.runs > 0) r.last_seed_run = std::max(r.last_seed_run, s.last_seed_run);
    r.hazards += s.hazards;
    r.hazard_examples.insert(r.hazard_examples.end(), s.hazard_examples.begin(),
                             s.hazard_examples.end());
    r.attention_reads_differing += s.attention_reads_differing;
    r.attention_max_abs_diff = std::max(r.attention_max_abs_diff, s.attention_max_abs_diff);
    for (std::size_t c = 0; c < r.fallbacks_by_class.size(); ++c) {
      r.fallbacks_by_class[c] += s.fallbacks_by_class[c];
    }
    for (std::size_t p = 0; p < r.by_policy.size(); ++p) {
      r.runs_by_policy[p] += s.runs_by_policy[p];
      r.by_policy[p].merge(s.by_policy[p]);
      for (std::size_t k = 0; k < r.outcome_matrix[p].size(); ++k) {
        OutcomeCell& cell = r.outcome_matrix[p][k];
        const OutcomeCell& add = s.outcome_matrix[p][k];
        cell.runs += add.runs;
        cell.injections += add.injections;
        cell.passed += add.passed;
        cell.hazards += add.hazards;
        cell.failed += add.failed;
      }
    }
    r.faults.merge(s.faults);
    r.failures.insert(r.failures.end(), s.failures.begin(), s.failures.end());
    r.digest += s.digest;
  }
  std::stable_sort(r.hazard_examples.begin(), r.hazard_examples.end(),
                   [](const CampaignHazard& a, const CampaignHazard& b) { return a.seed < b.seed; });
  if (r.hazard_examples.size() > kHazardExamplesMax) r.hazard_examples.resize(kHazardExamplesMax);
  std::stable_sort(r.failures.begin(), r.failures.end(),
                   [](const CampaignFailure& a, const CampaignFailure& b) { return a.seed < b.seed; });
  // Seeds of shards not given count as planned but not run: the merge is then incomplete.
  const int64_t shard_count = first.at("shard").at("count").get<int64_t>();
  const uint64_t n = o.seed_last - o.seed_first + 1;
  for (int64_t index = 0; index < shard_count; ++index) {
    if (std::find(m.shards_merged.begin(), m.shards_merged.end(), index) == m.shards_merged.end()) {
      r.seeds_planned += seeds_in_shard(n, index, shard_count);
    }
  }
  std::sort(m.shards_merged.begin(), m.shards_merged.end());
  note_rules_never_fired(o, r);
  if (coverage_gate) apply_coverage_gate(r);
  return m;
}

namespace {

// Greedy shrinking of one failing run: each step proposes smaller configurations and keeps the
// first that still fails with the same verdict. Every candidate run counts against max_runs.
class Shrinker {
 public:
  Shrinker(const SimConfig& original, int64_t max_runs) : max_runs_(max_runs) {
    out_.smallest = original;
    out_.result = run_simulation(original);
    out_.runs = 1;
    RCSIM_REQUIRE(out_.result.verdict != RunVerdict::kPass, "shrink: the token's run passes");
    target_ = out_.result.verdict;
  }

  // Passes until nothing shrinks (at most 32, and bounded by max_runs).
  ShrinkResult run() {
    for (int pass = 0; pass < 32 && out_.runs < max_runs_; ++pass) {
      const bool progress = shrink_steps() || shrink_layers() || shrink_workload() ||
                            drop_fault_rule() || shrink_faulty_calls();
      if (!progress) break;
    }
    return std::move(out_);
  }

 private:
  bool try_candidate(SimConfig cand) {
    if (out_.runs >= max_runs_) return false;
    try {
      validate_sim_config(cand);
    } catch (const InvalidInput&) {
      return false;
    }
    ++out_.runs;
    RunResult r = run_simulation(cand);
    if (r.verdict != target_) return false;
    out_.smallest = std::move(cand);
    out_.result = std::move(r);
    return true;
  }
  // Steps: cut right after the failing step, then halve.
  bool shrink_steps() {
    const SimConfig cur = out_.smallest;
    if (target_ != RunVerdict::kLiveness && out_.result.failure_step >= 0 &&
        out_.result.failure_step + 1 < cur.steps) {
      SimConfig c = cur;
      c.steps = out_.result.failure_step + 1;
      if (try_candidate(c)) return true;
    }
    if (cur.steps <= 1) return false;
    SimConfig c = cur;
    c.steps = cur.steps / 2;
    return try_candidate(c);
  }
  // Layers: one, else one fewer.
  bool shrink_layers() {
    if (out_.smallest.layers <= 1) return false;
    SimConfig c = out_.smallest;
    c.layers = 1;
    if (try_candidate(c)) return true;
    c.layers = out_.smallest.layers - 1;
    return try_candidate(c);
  }
  // Requests, then the token budget, then the longest prompt: halved, the first that keeps failing.
  bool shrink_workload() {
    if (out_.smallest.requests > 1) {
      SimConfig c = out_.smallest;
      c.requests = std::max<int64_t>(1, c.requests / 2);
      if (try_candidate(c)) return true;
    }
    if (out_.smallest.token_budget > 1) {
      SimConfig c = out_.smallest;
      c.token_budget = std::max<int64_t>(1, c.token_budget / 2);
      if (try_candidate(c)) return true;
    }
    if (out_.smallest.prompt_tokens_max > 1) {
      SimConfig c = out_.smallest;
      c.prompt_tokens_max = std::max<int64_t>(1, c.prompt_tokens_max / 2);
      if (try_candidate(c)) return true;
    }
    return false;
  }
  // Fault rules: drop one at a time.
  bool drop_fault_rule() {
    const FaultPlan plan = parse_fault_plan(out_.smallest.faults);
    for (std::size_t i = 0; i < plan.rules.size(); ++i) {
      FaultPlan fewer = plan;
      fewer.rules.erase(fewer.rules.begin() + static_cast<std::ptrdiff_t>(i));
      SimConfig c = out_.smallest;
      c.faults = to_string(fewer);
      if (try_candidate(c)) return true;
    }
    return false;
  }
  // Fault events: only the first N calls may be faulty (half, else one fewer).
  bool shrink_faulty_calls() {
    const int64_t calls = out_.smallest.faulty_calls_max >= 0 ? out_.smallest.faulty_calls_max
                                                              : out_.result.calls;
    if (calls <= 1) return false;
    SimConfig c = out_.smallest;
    c.faulty_calls_max = calls / 2;
    if (try_candidate(c)) return true;
    c.faulty_calls_max = calls - 1;
    return try_candidate(c);
  }

  int64_t max_runs_;
  ShrinkResult out_;
  RunVerdict target_ = RunVerdict::kPass;
};

}  // namespace

ShrinkResult shrink_config(const SimConfig& original, int64_t max_runs) {
  return Shrinker(original, max_runs).run();
}

}  // namespace rcsim::sim
