// What `rcsim case` writes into DIR besides record.json: every input as the call saw it
// (DIR/inputs/*.npy), every output (DIR/*.npy, including for fp8 caches the dequantised caches
// attention reads) and DIR/meta.json with the real dtype, shape and memory layout of each file,
// so that anyone can recompute the outputs independently (e.g. from PyTorch).
#pragma once

#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/dispatch/rope_cache_dispatcher.h"
#include "core/dtype.h"
#include "fault_injection/cli/case_call.h"
#include "fault_injection/cli/case_inputs.h"
#include "fault_injection/cli/case_spec.h"

namespace rcsim::cli {

// The output files written, by name (without ".npy") and dtype: what --compare-to compares.
using CaseOutputFiles = std::vector<std::pair<std::string, DType>>;

// DIR/inputs/*.npy: every input as the call saw it; returns their meta.json entries.
nlohmann::json write_inputs(const std::filesystem::path& out_dir,
                            const CaseTensors& inputs_as_given, const CaseSpec& s);

// DIR/*.npy: qkv, the caches (and scales and dequantised caches for fp8), and q/k when the call
// returned; returns their meta.json entries and appends each file to `emitted`.
nlohmann::json write_outputs(const std::filesystem::path& out_dir, const CaseTensors& ct,
                             const RopeCacheInputs& in, const CallOutcome& call,
                             const CaseSpec& s, CaseOutputFiles& emitted);

// DIR/meta.json's content: the configuration, the sentinels and the entries of both writers.
nlohmann::json meta_json(const CaseSpec& s, nlohmann::json outputs, nlohmann::json inputs_meta);

// Writes `j` pretty-printed to `path` (meta.json, record.json).
void write_json(const std::filesystem::path& path, const nlohmann::json& j);

}  // namespace rcsim::cli
