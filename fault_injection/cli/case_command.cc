// `rcsim case --in CASE.json --out DIR`: one rope_cache call, fully described by a JSON case file,
// run through the dispatcher on the CPU backend, or with "backend": "gpu" / --backend gpu on the
// GPU backend (inputs mirrored to device memory, outputs downloaded; optionally under a fault
// plan, whose torn writes are then the GPU kernels' own device-side unit limits), with every input
// and output written as .npy so that anyone can recompute the outputs independently (e.g. from
// PyTorch). Tensors dumped from PyTorch can be replayed by naming them under "inputs".
//
// Case file (unknown keys are errors, so a typo never silently falls back to a default):
//   {
//     "schema_version": 1,          // optional; docs/schemas/case-file.schema.json
//     "description": "free text",
//     "config": {"num_heads_q": 4, "num_heads_kv": 2, "head_dim": 128, "rotary_dim": 128,
//                "is_neox": true, "eps": 1e-6, "act_dtype": "bf16",
//                "kv_cache_dtype": "auto" | "fp8_e4m3fn" | "fp8_e4m3fnuz", "block_size": 16,
//                "num_blocks": 4, "max_position": 256, "amax_floor": false, "rope_theta": 1e6},
//     "layer": {"rotary": true, "q_norm": true, "k_norm": true, "sliding_window": -1,
//               "logic": "pr279" | "pr-base", "strict": false},
//     "policy": "pr279" | "pr279-model-order" | "sticky" | "qk-slice-backup" | "out-of-place" |
//               "prevalidate",
//     "backend": "cpu" | "gpu", "faults": "fused:unavailable", "seed": 42,
//     "fidelity": "math" | "aiter-gfx942" | "aiter-gfx950" | "aiter-gfx942-mar26" |
//                 "aiter-gfx950-mar26",   // what the CPU kernels compute (core/fidelity.h);
//                                         // --fidelity on the command line overrides it
//     "tokens": 6, "padding_tokens": 1, "qkv_present": true,
//     "inputs": {"qkv": "qkv.npy", ...}   // any of the input names below; paths relative to
//   }                                     // the case file
// Generated inputs are random and non-zero (one seed, rcsim::Prng), cos/sin is a real trig table
// (theta = rope_theta) rounded to the activation dtype, caches and scales start sentinel-filled.
//
// Output: DIR/{qkv,k_cache,v_cache,k_scale,v_scale,q,k}.npy (scales only for fp8 caches; q/k only
// when the call returned), for fp8 caches DIR/{k,v}_cache_dequant.npy (fp32 [NB, Hkv, BS, D]:
// every code decoded times its per-token scale, V read in the layout attention reads: what
// attention sees, and the only output that shows rcsim's fp8 decoder), DIR/meta.json (real
// dtypes, shapes, layouts), DIR/record.json (branch, attempt, restore, failure, log lines, calls
// per kernel site under a fault plan, fidelity and, where the fidelity's fused kernel computes the
// configuration wrongly, why), DIR/inputs/*.npy (every input, as used).
// --compare-to OTHER_DIR: then compares the outputs with another run's (a GPU run with the CPU
// run's): computed outputs by NaN class (core/nan_class.h), V copies bit for bit; prints
// "COMPARE PASS" or "COMPARE FAIL ... first difference" and exits 1 on a difference.
// Exit codes: 0 the call ran (a DispatchError is a result, recorded in record.json); 1 with
// --compare-to, the outputs differ; 2 a bad command line or case file (clear error on stderr,
// nothing written).
//
// The verb's pieces, one file each: case_spec (the case file read and checked), case_inputs (the
// tensors loaded or generated), case_device_mirror (the GPU backend's copies), case_call (the one
// dispatcher call), case_outputs and case_record (what DIR holds), case_compare (--compare-to).
// This file runs them in order and registers the verb.
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/dispatch/rope_cache_dispatcher.h"
#include "core/fidelity.h"
#include "core/mutants.h"
#include "fakes/faults/faulty_kernels.h"
#include "fault_injection/cli/case_call.h"
#include "fault_injection/cli/case_compare.h"
#include "fault_injection/cli/case_device_mirror.h"
#include "fault_injection/cli/case_inputs.h"
#include "fault_injection/cli/case_outputs.h"
#include "fault_injection/cli/case_record.h"
#include "fault_injection/cli/case_spec.h"
#include "fault_injection/cli/cli_args.h"
#include "fault_injection/cli/commands.h"
#include "fault_injection/plan/fault_plan.h"
#include "fault_injection/sim/sim_device.h"
#include "kernels/cpu/cpu_backend.h"

namespace rcsim::cli {
namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;

// The first console line: what runs, and the command that repeats it.
void print_case_header(const CaseSpec& s, const fs::path& in_path) {
  const std::string fidelity_text(fidelity_name(s.layer.fidelity));
  fmt::print("rcsim case: seed {}, policy {}, fidelity {}, backend {}, {} (repro: rcsim case --in {} "
             "--fidelity {} --backend {} --out DIR)\n",
             s.seed, policy_name(s.layer.policy), fidelity_text, s.backend,
             s.layer.attn.describe(), in_path.string(), fidelity_text, s.backend);
}

// The line after the call: the branch, whether fused was attempted, the failure, and DIR.
void print_call_summary(const CallOutcome& call, const fs::path& out_dir) {
  fmt::print("rcsim case: {}, fused {}{}{} -> {}\n", branch_name(call.record.branch),
             call.record.fused_attempted ? "attempted" : "not attempted",
             call.record.failure
                 ? fmt::format(", failure {}", failure_class_name(*call.record.failure))
                 : "",
             call.result ? "" : ", DispatchError (branch did not complete)", out_dir.string());
}

// --compare-to: the exit code of the comparison, with its verdict line.
int compare_and_report(const CaseSpec& s, const fs::path& out_dir, const std::string& compare_to,
                       const CaseOutputFiles& emitted) {
  if (auto d = compare_case_outputs(s.layer.attn, out_dir, compare_to, emitted)) {
    fmt::print("rcsim case: COMPARE FAIL vs {}: {}\n", compare_to, *d);
    return kExitCheckFailed;
  }
  fmt::print("rcsim case: COMPARE PASS vs {}: {} outputs equal (computed ones by NaN class)\n",
             compare_to, emitted.size());
  return kExitPass;
}

int run_case(const fs::path& in_path, const fs::path& out_dir, const std::string& mutant_name_arg,
             const std::string& fidelity_arg, const std::string& backend_arg,
             const std::string& compare_to) {
  // Before any work: a --out that cannot be created fails now, not after the call has run.
  check_output_dir("--out", out_dir.string());
  const Mutant mutant = case_mutant(mutant_name_arg);
  const ScopedMutant scoped_mutant(mutant);
  CaseSpec s = parse_case(in_path);
  const bool fidelity_from_cli = apply_command_line(s, fidelity_arg, backend_arg);
  FaultPlan plan = parse_fault_plan(s.faults);  // InvalidInput names the column
  CaseTensors ct = build_inputs(s);
  const CaseTensors inputs_as_given = ct;  // snapshot before the in-place call
  const RopeCacheInputs in = views_of(ct, s);

  const std::unique_ptr<sim::SimDevice> device = sim::make_sim_device(s.backend);
  std::optional<CaseDeviceMirror> mirror;
  if (s.backend != "cpu") mirror.emplace(*device, ct);
  const RopeCacheInputs call_in = mirror ? mirror->to_device(in) : in;
  cpu::CpuBackend fidelity_backend(s.layer.fidelity);
  std::optional<FaultyKernelSet> faulty;
  const KernelSet kernels = case_kernels(s, plan, *device, fidelity_backend, faulty);
  DispatchProcess process;
  RopeCacheDispatcher dispatcher(s.layer, kernels, process);
  print_case_header(s, in_path);

  CallOutcome call = call_dispatcher(dispatcher, call_in);
  if (mirror) {
    // Outputs come back to the host tensors; q/k views are remapped onto them.
    mirror->download_all();
    if (call.result) {
      call.result->q = mirror->to_host(call.result->q);
      call.result->k = mirror->to_host(call.result->k);
      call.result->v = mirror->to_host(call.result->v);
    }
  }
  json inputs_meta = write_inputs(out_dir, inputs_as_given, s);
  CaseOutputFiles emitted;
  json outputs = write_outputs(out_dir, ct, in, call, s, emitted);
  write_json(out_dir / "meta.json", meta_json(s, std::move(outputs), std::move(inputs_meta)));
  const CaseRun run{s, mutant, fidelity_from_cli, plan, faulty ? &*faulty : nullptr, process, call};
  const json rec = case_record_file_json(run);
  if (!rec["fidelity_miscomputes"].is_null()) {
    fmt::print("rcsim case: note: {}\n", rec["fidelity_miscomputes"].get<std::string>());
  }
  write_json(out_dir / "record.json", rec);
  print_call_summary(call, out_dir);
  if (!compare_to.empty()) return compare_and_report(s, out_dir, compare_to, emitted);
  return kExitPass;
}

}  // namespace

void register_case_command(CLI::App& app, int& exit_code) {
  CLI::App* cmd = app.add_subcommand("case", "Run one rope_cache call from a JSON case file");
  auto in_path = std::make_shared<std::string>();
  auto out_dir = std::make_shared<std::string>();
  cmd->add_option("--in", *in_path, "case file (JSON)")->required();
  cmd->add_option("--out", *out_dir, "output directory (created)")->required();
  auto mutant = std::make_shared<std::string>();
  cmd->add_option("--mutant", *mutant,
                  "run with a deliberately broken variant (core/mutants.h; default $RCSIM_MUTANT)");
  auto fidelity = std::make_shared<std::string>();
  cmd->add_option("--fidelity", *fidelity,
                  "what the CPU kernels compute: " + fidelity_names_joined() +
                      " (default: the case file's \"fidelity\", else math; docs/fidelity.md)");
  auto backend = std::make_shared<std::string>();
  cmd->add_option("--backend", *backend,
                  "cpu | gpu: where the call runs (default: the case file's \"backend\", else cpu; "
                  "gpu needs a build with the GPU backend)");
  auto compare_to = std::make_shared<std::string>();
  cmd->add_option("--compare-to", *compare_to,
                  "after the run, compare its outputs with another run's output directory (e.g. "
                  "the cpu backend's): computed outputs by NaN class, V copies bit for bit; "
                  "exit 1 at the first difference")
      ->check(CLI::ExistingDirectory);
  cmd->footer(std::string(exit_code_help()));
  cmd->callback([in_path, out_dir, mutant, fidelity, backend, compare_to, &exit_code] {
    run_verb("case", exit_code, [&] {
      return run_case(*in_path, *out_dir, *mutant, *fidelity, *backend, *compare_to);
    });
  });
}

}  // namespace rcsim::cli
