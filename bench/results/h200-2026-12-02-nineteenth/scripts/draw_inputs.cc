// Host-only: replays gpu_bench's input draws (the same seed, stream labels and draw order as
// bench_shape) and prints, for the rows that Qwen3-8B's cold sets span (T=64 for every draw; T=4096
// and 32768 for the run's own inputs), how the prefill slots fall on the cache's pages: how many
// 16-row tiles are one whole page (the fp8 V chunk is 16 tokens), how many 8-row groups are one whole
// 8-token chunk (bf16), and how many sequences start inside those rows. Built and run from the
// repository root (the nineteenth pass's README says how).
#include <cstdint>
#include <cstdio>
#include <vector>

#include "bench/gpu_bench_model.h"
#include "core/prng.h"

namespace {

using rcsim::Prng;
using namespace rcsim::bench;

// bench_shape's draws up to the prefill slots, in its order; returns those slots.
std::vector<int64_t> draw_prefill_slots(const Shape& sh, Prng& rng) {
  const int64_t rows_total = kMaxTokens * 2, width = (sh.hq + 2 * sh.hkv) * sh.d;
  for (int64_t i = 0; i < rows_total * width; ++i) (void)rng.nonzero_float(0.05f, 4.0f);
  for (int64_t i = 0; i < 2 * sh.d; ++i) (void)rng.nonzero_float(0.25f, 2.0f);
  for (int64_t i = 0; i < kMaxPosition * sh.d; ++i) (void)rng.nonzero_float(0.01f, 1.0f);
  for (int64_t i = 0; i < rows_total; ++i) (void)rng.range(0, kMaxPosition - 1);
  return prefill_slots(rows_total, rng);
}

// Groups of `n` rows in [0, rows) whose slots are one whole aligned chunk of n.
int64_t whole_chunks(const std::vector<int64_t>& s, int64_t rows, int64_t n) {
  int64_t count = 0;
  for (int64_t g = 0; g + n <= rows; g += n) {
    bool whole = s[g] % n == 0;
    for (int64_t i = 1; i < n && whole; ++i) whole = s[g + i] == s[g] + i;
    count += whole ? 1 : 0;
  }
  return count;
}

// The rows the cold sets of the given T span (gpu_bench's sets_cold for Qwen3-8B with a bf16 cache
// on a 60 MB L2: 64 sets at T=64, 3 at T=4096, 1 at T=32768).
int64_t cold_rows(int64_t tokens) { return tokens == 64 ? 64 * 64 : tokens == 4096 ? 3 * 4096 : tokens; }

void report(const char* what, const std::vector<int64_t>& s, int64_t tokens) {
  const int64_t rows = cold_rows(tokens);
  int64_t starts = 0;
  for (int64_t r = 1; r < rows; ++r) starts += s[r] != s[r - 1] + 1 ? 1 : 0;
  std::printf("%-8s T=%-5lld whole 16-row pages %4lld of %lld, whole 8-row chunks %4lld of %lld, sequence starts %lld\n",
              what, static_cast<long long>(tokens), static_cast<long long>(whole_chunks(s, rows, 16)),
              static_cast<long long>(rows / 16),
              static_cast<long long>(whole_chunks(s, rows, 8)), static_cast<long long>(rows / 8),
              static_cast<long long>(starts));
}

}  // namespace

int main() {
  const uint64_t seed = 0xBE7C4ull;  // gpu_bench's
  const Shape& small = kShapes[0];
  const Shape& q8b = kShapes[1];
  {  // the full run: Qwen3-0.6B's draws come first from the same stream
    Prng rng = Prng::stream(seed, "bench");
    (void)draw_prefill_slots(small, rng);
    (void)decode_slots(kMaxTokens * 2, kMaxTokens * 2, rng);
    const std::vector<int64_t> slots = draw_prefill_slots(q8b, rng);
    for (int64_t t : {64, 4096, 32768}) report("full", slots, t);
  }
  {
    Prng rng = Prng::stream(seed, "bench");
    const std::vector<int64_t> slots = draw_prefill_slots(q8b, rng);
    for (int64_t t : {64, 4096, 32768}) report("quick", slots, t);
  }
  for (int d = 1; d <= 8; ++d) {
    Prng rng = Prng::stream(seed, "draw", static_cast<uint64_t>(d));
    char name[16];
    std::snprintf(name, sizeof name, "draw %d", d);
    report(name, draw_prefill_slots(q8b, rng), 64);
  }
  return 0;
}
