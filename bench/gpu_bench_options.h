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
  // After the run: the small-batch rows (Qwen3-8B, prefill, T <= kDrawsMaxTokens, the fused kernel
  // with and without programmatic launch) again on each of `draws` fresh input draws (new qkv,
  // weights, cos/sin, positions, slots and buffers), so that a row near its target is read as a
  // spread, not one draw. Why: in the eighteenth pass the same binaries timed bf16 T=64 at 3.00 us
  // in the full run and 2.90 in --quick, whose inputs are drawn differently.
  int draws = 0;
};
inline constexpr int kMaxDraws = 32;
inline constexpr int64_t kDrawsMaxTokens = 64;

// "bf16", "fp8", or both comma-separated in either order; empty on anything else.
std::vector<bool> parse_kv_list(const std::string& list);

// Exits with a message and status 2 on an argument it does not know.
Options parse_options(int argc, char** argv);

}  // namespace rcsim::bench
