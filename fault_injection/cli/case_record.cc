// Builds a case's record.json (case_record.h).
#include "fault_injection/cli/case_record.h"

#include <optional>
#include <string>

#include "core/fidelity.h"

namespace rcsim::cli {
namespace {

using json = nlohmann::json;

// Layout version: docs/schemas/case-record.schema.json.
constexpr int kRecordSchemaVersion = 1;

// The dispatcher's own record of the call, one key per DispatchRecord field.
json record_json(const DispatchRecord& r) {
  return {{"branch", branch_name(r.branch)},
          {"fused_attempted", r.fused_attempted},
          {"fused_skipped_by_policy", r.fused_skipped_by_policy},
          {"failure", r.failure ? json(failure_class_name(*r.failure)) : json(nullptr)},
          {"failure_injected", r.failure_injected},
          {"backup_taken", r.backup_taken},
          {"backup_bytes", r.backup_bytes},
          {"restored", r.restored},
          {"warning_logged", r.warning_logged},
          {"error_logged", r.error_logged}};
}

// Calls that reached each kernel site (counted by the fault decorators; null without faults):
// "surfaced, no fallback" is checked on these, not only on the error class.
json kernel_calls_json(const FaultyKernelSet* faulty) {
  if (faulty == nullptr) return nullptr;
  json calls = json::object();
  for (int i = 0; i < kFaultSiteCount; ++i) {
    const auto site = static_cast<FaultSite>(i);
    calls[std::string(fault_site_name(site))] = faulty->stats().call_count(site);
  }
  return calls;
}

}  // namespace

// DIR/record.json (docs/schemas/case-record.schema.json).
json case_record_file_json(const CaseRun& run) {
  const CaseSpec& s = run.spec;
  json rec = record_json(run.call.record);
  rec["schema"] = "rcsim-case-record";
  rec["schema_version"] = kRecordSchemaVersion;
  rec["outcome"] = run.call.result ? "ok" : "dispatch_error";
  // The branch the dispatcher was on (as the console line says); whether it completed is separate.
  rec["branch_completed"] = run.call.result.has_value();
  rec["error"] = run.call.error;
  rec["log_lines"] = run.process.log_lines();
  rec["policy"] = policy_name(s.layer.policy);
  rec["logic"] = s.layer.logic == DecisionLogic::kPr279 ? "pr279" : "pr-base";
  rec["decided_branch"] = branch_name(RopeCacheDispatcher::decide(s.layer, s.qkv_present));
  rec["seed"] = s.seed;
  rec["mutant"] = mutant_name(run.mutant);
  rec["backend"] = s.backend;
  rec["fault_plan"] = to_string(run.plan);
  rec["device_poisoned"] = run.faulty != nullptr ? run.faulty->device_poisoned() : false;
  rec["kernel_calls"] = kernel_calls_json(run.faulty);
  rec["fallback_counts"] = json::object();
  for (FailureClass fc : kAllFailureClasses) {
    rec["fallback_counts"][std::string(failure_class_name(fc))] = run.process.fallback_count(fc);
  }
  rec["fidelity"] = std::string(fidelity_name(s.layer.fidelity));
  rec["fidelity_source"] = run.fidelity_from_cli ? "--fidelity" : "case file";
  const std::optional<std::string> miscomputed = fidelity_miscomputes(s.layer.attn, s.layer.fidelity);
  rec["fidelity_miscomputes"] = miscomputed ? json(*miscomputed) : json(nullptr);
  rec["case"] = s.echo;
  return rec;
}

}  // namespace rcsim::cli
