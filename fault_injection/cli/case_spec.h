// The case file of `rcsim case` (its format: the top of case_command.cc) read into a CaseSpec, and
// the command line's overrides applied to it. Reading is strict: an unknown key, a value of the
// wrong type or out of range is an InvalidInput naming it, raised before anything is written, so a
// typo never silently falls back to a default.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "core/dispatch/rope_cache_dispatcher.h"
#include "core/mutants.h"

namespace rcsim::cli {

inline constexpr double kRopeThetaDefault = 1e6;

// Input names, in the order they are generated and written (the keys "inputs" may name).
inline constexpr std::string_view kCaseInputNames[] = {"qkv",      "positions", "slot_mapping",
                                                       "cos_sin_cache", "q_weight", "k_weight",
                                                       "k_cache",  "v_cache",   "k_scale",
                                                       "v_scale"};

// Everything a case file says, validated.
struct CaseSpec {
  std::filesystem::path case_dir;  // input paths are relative to it
  LayerSpec layer;
  double rope_theta = kRopeThetaDefault;
  std::optional<int64_t> tokens;  // absent: taken from the first loaded per-token input
  int64_t padding_tokens = 0;
  bool qkv_present = true;
  std::string faults;
  std::string backend = "cpu";
  uint64_t seed = 0;
  std::map<std::string, std::filesystem::path, std::less<>> input_files;
  nlohmann::json echo;  // the case as read, copied into record.json
};

// Reads and validates the case file at `path` (at most 1 MiB, schema_version 1 if given).
CaseSpec parse_case(const std::filesystem::path& path);

// --fidelity and --backend win over the case file; the pair must be one this binary can run.
// Returns whether the fidelity came from the command line (record.json says where it came from).
bool apply_command_line(CaseSpec& s, const std::string& fidelity_arg,
                        const std::string& backend_arg);

// The mutant (core/mutants.h) from --mutant or RCSIM_MUTANT (the flag wins; blank = unset):
// proves checks of the outputs bite.
Mutant case_mutant(const std::string& mutant_name_arg);

}  // namespace rcsim::cli
