// gpu_bench's command line: which shapes, which cache dtypes in which order, profile or time.
#pragma once

#include <cstdint>
#include <iterator>
#include <string>
#include <vector>

namespace rcsim::bench {

// The batch sizes (tokens) every shape and cache dtype is timed at.
inline constexpr int64_t kTokens[] = {1, 8, 64, 256, 1024, 4096, 32768};

struct Options {
  std::string out_path = "gpu_bench.json";
  bool quick = false;    // Qwen3-8B only
  bool profile = false;  // one eager launch of each kernel, no graphs, no timing
  // The T that --profile launches: 32768 (the rows) unless --profile-tokens names
  // another of kTokens, e.g. to profile a small batch's latency or a mid-size launch's tail.
  int64_t profile_tokens = kTokens[std::size(kTokens) - 1];
  // Cache dtypes of each shape, in this order (true = fp8). --kv lets a run time one dtype alone,
  // or the two in either order, to check that a row does not depend on what ran before it.
  std::vector<bool> kv_fp8 = {false, true};
};

// "bf16", "fp8", or both comma-separated in either order; empty on anything else.
std::vector<bool> parse_kv_list(const std::string& list);

// Exits with a message and status 2 on an argument it does not know.
Options parse_options(int argc, char** argv);

}  // namespace rcsim::bench
