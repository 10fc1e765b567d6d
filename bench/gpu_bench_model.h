// gpu_bench's workload model: the shapes it times, each kernel's minimal bytes (performance.md's
// byte model, and decode's floor at sector granularity), and the two slot patterns of issue 13.
#pragma once

#include <cstdint>
#include <iterator>
#include <vector>

#include "bench/gpu_bench_options.h"
#include "core/prng.h"

namespace rcsim::bench {

inline constexpr int64_t kMaxTokens = kTokens[std::size(kTokens) - 1];
inline constexpr int64_t kBlockSize = 16;  // the cache's page (block_size), tokens
inline constexpr int64_t kMaxPosition = 4096;

struct Shape {
  const char* name;
  int64_t hq, hkv, d;
};
inline constexpr Shape kShapes[] = {{"qwen3-0.6b", 16, 8, 128},
                                    {"qwen3-8b", 32, 8, 128},
                                    {"qwen3-32b", 64, 8, 128},
                                    {"qwen3-235b-tp8", 8, 1, 128}};

struct Config {
  Shape shape;
  int64_t tokens;
  bool fp8;
};

// Minimal bytes of each kernel for one call (performance.md's byte model).
struct Bytes {
  double fused, rms_q, rms_k, rotary, cache, nonfused;
};

Bytes min_bytes(const Config& c);

// Slot patterns (issue 13). Prefill: sequences of 32..2048 tokens, each starting on a fresh page,
// its tokens in consecutive slots (as a serving engine lays out a prefill batch). Decode: every
// token its own page (a random permutation of pages) at a random offset in it.
enum class SlotPattern { kPrefill, kDecode };

std::vector<int64_t> prefill_slots(int64_t rows, Prng& rng);
std::vector<int64_t> decode_slots(int64_t rows, int64_t pages, Prng& rng);

// Decode's floor at DRAM sector granularity (32 bytes): a token alone in its page writes partial
// sectors. Its K head is D/x chunks of 16 bytes at a stride of BS*16 bytes (one sector each); its
// V head in the shuffle layout is one element in each of D 16-byte chunks, two chunks per sector
// (D/2 sectors); a per-token scale is a sector of its own; position and slot one sector each. The
// qkv reads, q/k writes and cos/sin row are whole sectors, as in min_bytes().
Bytes sector_floor_bytes(const Config& c);

}  // namespace rcsim::bench
