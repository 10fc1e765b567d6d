// `rcsim-fidelity-diff [--seed N] [--tokens T] [--check]`: math vs every aiter-* fidelity mode on
// the configurations of fidelity::default_configs() (Qwen3 shapes and the NeoX partial-rotary
// shapes of issue 15, item 1). Prints one table line per (configuration, mode): differing q/k
// elements, max |difference| and cosine similarity of the fused kernel (math vs mode), of the
// model-order fallback (math vs mode), and of fused vs fallback within the mode; then which
// divergences a Qwen3 deployment can hit. --check turns the expected pattern into an exit code
// (CTest: fidelity_diff_check); a failure prints the row and a repro line.
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "core/check.h"
#include "fidelity/fidelity_diff.h"

namespace {

using rcsim::Fidelity;
using rcsim::fidelity::DiffRow;

bool truncates(Fidelity f) { return rcsim::fidelity_switches(f).rmsnorm_bf16_truncates; }

// The expected pattern, from core/fidelity.h's switches. Returns an empty string when r fits.
std::string check_row(const rcsim::fidelity::NamedConfig& c, const DiffRow& r) {
  const bool partial = c.cfg.rotary_dim != c.cfg.head_dim;
  const bool xor_wrong = !r.miscomputes.empty();
  if (partial && rcsim::fidelity_switches(r.mode).partial_rotary_rejected) {
    return r.mode_rejects ? "" : "Mar26 mode accepted partial rotary";
  }
  if (r.mode_rejects) return "mode rejected a configuration it supports";
  if ((r.fused_qk.differing > 0) != xor_wrong) {
    return xor_wrong ? "item 1 expected fused q/k to differ from the math, none did"
                     : "fused q/k differ from the math without item 1";
  }
  if ((r.fallback_qk.differing > 0) != truncates(r.mode)) {
    return truncates(r.mode) ? "item 2 expected the fallback to differ (truncation), none did"
                             : "fallback differs from the math without truncation";
  }
  if (!xor_wrong && (r.fused_vs_fallback.differing > 0) != truncates(r.mode)) {
    return "fused vs model-order fallback: expected equal iff the rmsnorm rounds to nearest even";
  }
  if (c.qwen3 && r.k_cache_bytes_differing != 0) return "K cache differs at a Qwen3 shape";
  return "";
}

}  // namespace

int main(int argc, char** argv) {
  uint64_t seed = 15;
  int64_t tokens = 8;
  bool check = false;
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (a == "--check") {
      check = true;
    } else if ((a == "--seed" || a == "--tokens") && i + 1 < argc) {
      char* end = nullptr;
      const long long v = std::strtoll(argv[++i], &end, 10);
      if (*end != '\0' || v < 0 || (a == "--tokens" && (v < 1 || v > 64))) {
        std::fprintf(stderr, "rcsim-fidelity-diff: bad value for %s (tokens in [1, 64])\n",
                     a.data());
        return 2;
      }
      if (a == "--seed") {
        seed = static_cast<uint64_t>(v);
      } else {
        tokens = static_cast<int64_t>(v);
      }
    } else {
      std::fprintf(stderr, "usage: rcsim-fidelity-diff [--seed N] [--tokens T] [--check]\n");
      return 2;
    }
  }
  std::printf("rcsim-fidelity-diff: seed %llu, %lld tokens (repro: rcsim-fidelity-diff --seed %llu "
              "--tokens %lld%s)\n",
              static_cast<unsigned long long>(seed), static_cast<long long>(tokens),
              static_cast<unsigned long long>(seed), static_cast<long long>(tokens),
              check ? " --check" : "");
  std::printf("cells: differing/compared  max|diff|  cosine; K cache: bytes differing\n%s\n",
              rcsim::fidelity::table_header().c_str());
  int failures = 0;
  for (const auto& c : rcsim::fidelity::default_configs()) {
    for (Fidelity mode : rcsim::all_fidelities()) {
      const DiffRow r = rcsim::fidelity::run_diff(c, mode, tokens, seed);
      std::printf("%s\n", rcsim::fidelity::table_line(r).c_str());
      if (!check) continue;
      const std::string bad = check_row(c, r);
      if (!bad.empty()) {
        ++failures;
        std::printf("CHECK FAILED (%s, %s): %s\n", c.name.c_str(),
                    std::string(rcsim::fidelity_name(mode)).c_str(), bad.c_str());
      }
    }
  }
  std::printf(
      "Qwen3 (rotary_dim == head_dim, NeoX): item 1 cannot occur (lane distance 16 is a power of "
      "two); item 2 occurs whenever the fallback runs on gfx942 (its q/k differ from the fused "
      "kernel's); on gfx950 the model-order fallback equals the fused kernel bit for bit.\n");
  if (check) std::printf("%d check failure(s)\n", failures);
  return failures == 0 ? 0 : 1;
}
