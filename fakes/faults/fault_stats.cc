// FaultStats: coverage queries, merging and the report line.
#include "fakes/faults/fault_stats.h"

#include <fmt/format.h>

namespace rcsim {

int64_t FaultStats::injection_count_total() const {
  int64_t total = 0;
  for (const auto& per_site : injections) {
    for (int64_t n : per_site) total += n;
  }
  return total;
}

bool FaultStats::kind_reached(FaultKind k) const {
  for (FaultSite s : all_fault_sites()) {
    if (injection_count(s, k) > 0) return true;
  }
  return false;
}

std::vector<FaultRule> FaultStats::unreached(const FaultPlan& plan) const {
  std::vector<FaultRule> out;
  for (const FaultRule& rule : plan.rules) {
    if (injection_count(rule.site, rule.kind) == 0) out.push_back(rule);
  }
  return out;
}

void FaultStats::merge(const FaultStats& other) {
  for (std::size_t s = 0; s < calls.size(); ++s) {
    calls[s] += other.calls[s];
    for (std::size_t k = 0; k < injections[s].size(); ++k) {
      injections[s][k] += other.injections[s][k];
    }
    if (other.last_units_total[s] >= 0) {
      last_units_total[s] = other.last_units_total[s];
      last_tokens[s] = other.last_tokens[s];
    }
  }
  k_clamped += other.k_clamped;
  rebuild_attempts += other.rebuild_attempts;
  rebuild_cost_us += other.rebuild_cost_us;
  late_armed += other.late_armed;
  late_surfaced += other.late_surfaced;
  units_corrupted += other.units_corrupted;
}

std::string FaultStats::summary() const {
  std::string out;
  for (FaultSite s : all_fault_sites()) {
    std::string line = fmt::format("{}: {} calls", fault_site_name(s), call_count(s));
    for (FaultKind k : all_fault_kinds()) {
      if (injection_count(s, k) > 0) {
        line += fmt::format(", {} {}", injection_count(s, k), fault_kind_name(k));
      }
    }
    out += line + "\n";
  }
  out += fmt::format(
      "k clamped {}, rebuild attempts {} ({} us), late armed {} surfaced {}, units corrupted {}\n",
      k_clamped, rebuild_attempts, rebuild_cost_us, late_armed, late_surfaced, units_corrupted);
  return out;
}

}  // namespace rcsim
