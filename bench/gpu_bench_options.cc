// gpu_bench's command line (gpu_bench_options.h).
#include "bench/gpu_bench_options.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iterator>

namespace rcsim::bench {

namespace {

// One of kTokens, or 0.
int64_t parse_bench_tokens(const char* text) {
  char* end = nullptr;
  const long long t = std::strtoll(text, &end, 10);
  if (end == text || *end != '\0') return 0;
  for (const int64_t known : kTokens) {
    if (known == t) return known;
  }
  return 0;
}

}  // namespace

std::vector<bool> parse_kv_list(const std::string& list) {
  if (list == "bf16") return {false};
  if (list == "fp8") return {true};
  if (list == "bf16,fp8") return {false, true};
  if (list == "fp8,bf16") return {true, false};
  return {};
}

Options parse_options(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const bool has_value = i + 1 < argc;
    if (std::strcmp(argv[i], "--out") == 0 && has_value) {
      o.out_path = argv[++i];
    } else if (std::strcmp(argv[i], "--quick") == 0) {
      o.quick = true;
    } else if (std::strcmp(argv[i], "--profile") == 0) {
      // One eager launch of each kernel at Qwen3-8B, T=32768 (or --profile-tokens), bf16 and fp8,
      // for Nsight Compute (bench/run_on_gpu.sh profile): no graphs, no timing.
      o.profile = true;
    } else if (std::strcmp(argv[i], "--profile-tokens") == 0 && has_value) {
      o.profile = true;
      o.profile_tokens = parse_bench_tokens(argv[++i]);
      if (o.profile_tokens == 0) {
        std::fprintf(stderr, "gpu_bench: --profile-tokens takes one of");
        const char* sep = " ";
        for (const int64_t t : kTokens) {
          std::fprintf(stderr, "%s%lld", sep, static_cast<long long>(t));
          sep = ", ";
        }
        std::fprintf(stderr, "; not '%s'\n", argv[i]);
        std::exit(2);
      }
    } else if (std::strcmp(argv[i], "--draws") == 0 && has_value) {
      char* end = nullptr;
      const long n = std::strtol(argv[++i], &end, 10);
      if (end == argv[i] || *end != '\0' || n < 0 || n > kMaxDraws) {
        std::fprintf(stderr, "gpu_bench: --draws takes 0 to %d, not '%s'\n", kMaxDraws, argv[i]);
        std::exit(2);
      }
      o.draws = static_cast<int>(n);
    } else if (std::strcmp(argv[i], "--kv") == 0 && has_value) {
      o.kv_fp8 = parse_kv_list(argv[++i]);
      if (o.kv_fp8.empty()) {
        std::fprintf(stderr, "gpu_bench: --kv takes bf16, fp8, bf16,fp8 or fp8,bf16, not '%s'\n",
                     argv[i]);
        std::exit(2);
      }
    } else {
      std::fprintf(stderr,
                   "gpu_bench: unknown argument '%s'\nusage: gpu_bench [--out FILE] [--quick] "
                   "[--profile] [--profile-tokens T] [--kv bf16|fp8|bf16,fp8|fp8,bf16] [--draws N]\n",
                   argv[i]);
      std::exit(2);
    }
  }
  return o;
}

}  // namespace rcsim::bench
