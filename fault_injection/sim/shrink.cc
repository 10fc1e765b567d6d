// The shrinker of `rcsim shrink`: the smallest configuration that still fails the same way as a
// failing run (declared in campaign.h beside the campaign that finds such runs).
#include <algorithm>
#include <utility>

#include "core/check.h"
#include "fault_injection/plan/fault_plan.h"
#include "fault_injection/sim/campaign.h"

namespace rcsim::sim {
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
