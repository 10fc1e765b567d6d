// Fault plans: what to inject, where, and when. A plan is a list of rules `site:kind(params)`
// joined by `;` (grammar and examples: docs/fault-spec.md). Plans come from the CLI, from the
// environment (RCSIM_FAULTS), from swarm sampling (one seed -> one plan, printed so it replays)
// or from exhaustive enumeration ("fail at every step": one plan per unit boundary k = 0..N).
// The fault model itself (sites, kinds, rules, unit counts) lives with the decorators that execute
// it (fakes/faults/fault_model.h); this header reads, prints and generates plans of it.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/prng.h"
#include "fakes/faults/fault_model.h"
#include "fakes/faults/fault_stats.h"

namespace rcsim {

// Parses a spec. Throws InvalidInput naming the 1-based column and what was expected, e.g.
//   fault spec column 7: unknown kind 'tron' (expected one of unavailable, launch, ...)
// An empty or all-blank spec is the empty plan. At most limits::kFaultRulesMax rules and
// limits::kFaultSpecCharsMax characters.
FaultPlan parse_fault_plan(std::string_view spec);
// Canonical spec: parse_fault_plan(to_string(p)) == p for every valid plan.
std::string to_string(const FaultRule& rule);
std::string to_string(const FaultPlan& plan);
// Rules of `plan` whose (site, kind) never fired in `stats`, as spec strings (the coverage gate).
std::vector<std::string> unreached_rules(const FaultStats& stats, const FaultPlan& plan);
// The plan in RCSIM_FAULTS (empty if unset or blank). Errors name the variable.
FaultPlan fault_plan_from_env();

// Swarm testing (FoundationDB's two-level activation): each swarm-eligible kind is enabled for
// this run with chance 1/4, at a site and parameters drawn from `prng`, with a per-call ratio drawn
// from {1/1, 1/2, 1/4, 1/8, 1/16}; the decorator then decides per hit. `abort` is never sampled
// (it kills the process; run it in a child). Print to_string() of the result so the run replays.
FaultPlan sample_swarm_plan(Prng& prng);

// Exhaustive mode (Abseil's "fail at every step"): for one call of `units_total` units at
// `rule.unit` granularity, one single-rule plan per boundary k = 0..units_total (units_total + 1
// plans), each a copy of `rule` with k set and on_call = 1 unless `rule` names another call.
// `rule.kind` must take a k (torn, garbage, nan, cacheonly, late, partial, sticky).
std::vector<FaultPlan> enumerate_fail_at_every_step(const FaultRule& rule, int64_t units_total);

}  // namespace rcsim
