// What the fault decorators did: calls per site, injections per (site, kind), and derived
// coverage. The campaign's coverage gate reads it (FoundationDB-style "this rare path was really
// reached"), and merges the stats of many runs with merge().
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "fakes/faults/fault_model.h"

namespace rcsim {

struct FaultStats {
  // Calls that reached the decorator of each site (including ones that then failed).
  std::array<int64_t, kFaultSiteCount> calls{};
  // Injections that fired, per (site, kind). A sticky device's follow-up failures count under
  // (site, sticky); a late fault's surfacing counts under (site where it surfaced, late).
  std::array<std::array<int64_t, kFaultKindCount>, kFaultSiteCount> injections{};
  int64_t k_clamped = 0;             // rules whose numeric k exceeded the call's N
  int64_t rebuild_attempts = 0;      // rebuild: simulated JIT build attempts
  int64_t rebuild_cost_us = 0;       // rebuild: their summed simulated cost
  int64_t late_armed = 0;            // late faults whose write happened
  int64_t late_surfaced = 0;         // late faults whose error was thrown
  int64_t units_corrupted = 0;       // garbage / nan: units that received the payload
  // The last call at each site: its native unit count N and token count T (-1 = never called).
  // The exhaustive mode learns N from a fault-free run through these.
  std::array<int64_t, kFaultSiteCount> last_units_total{-1, -1, -1, -1, -1, -1, -1};
  std::array<int64_t, kFaultSiteCount> last_tokens{-1, -1, -1, -1, -1, -1, -1};

  int64_t call_count(FaultSite s) const { return calls[static_cast<std::size_t>(s)]; }
  int64_t injection_count(FaultSite s, FaultKind k) const {
    return injections[static_cast<std::size_t>(s)][static_cast<std::size_t>(k)];
  }
  int64_t injection_count_total() const;
  bool site_reached(FaultSite s) const { return call_count(s) > 0; }
  bool kind_reached(FaultKind k) const;  // injected at any site
  // Rules of `plan` whose (site, kind) never fired (empty = all reached). As spec strings:
  // unreached_rules() in fault_injection/plan/fault_plan.h.
  std::vector<FaultRule> unreached(const FaultPlan& plan) const;
  void merge(const FaultStats& other);
  // One line per site with calls and non-zero injections, for reports.
  std::string summary() const;
};

}  // namespace rcsim
