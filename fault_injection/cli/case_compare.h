// `rcsim case --compare-to OTHER_DIR`: this run's outputs against another run's (a GPU run's
// against the CPU run's), by the rule each output's nature calls for.
#pragma once

#include <filesystem>
#include <optional>
#include <string>

#include "core/attention_config.h"
#include "fault_injection/cli/case_outputs.h"

namespace rcsim::cli {

// Compares each file of `outputs` in `out_dir` with the file of the same name in `other_dir`.
// Computed values (q, k, the Q/K heads of qkv, the K cache, fp8 codes and scales) compare by NaN
// class (core/nan_class.h: a GPU's arithmetic NaN is not the CPU's); copies (the V heads of qkv
// and a bf16/fp16 V cache) bit for bit. Returns the first difference, or nullopt when equal.
std::optional<std::string> compare_case_outputs(const AttentionConfig& c,
                                                const std::filesystem::path& out_dir,
                                                const std::filesystem::path& other_dir,
                                                const CaseOutputFiles& outputs);

}  // namespace rcsim::cli
