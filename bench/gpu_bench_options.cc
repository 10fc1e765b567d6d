// gpu_bench's command line (gpu_bench_options.h).
#include "bench/gpu_bench_options.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace rcsim::bench {

std::vector<bool> parse_kv_list(const std::string& list) {
  std::vector<bool> out;
  std::size_t at = 0;
  while (at <= list.size() && out.size() < 2) {
    const std::size_t comma = std::min(list.find(',', at), list.size());
    const std::string item = list.substr(at, comma - at);
    if (item != "bf16" && item != "fp8") return {};
    const bool fp8 = item == "fp8";
    if (std::find(out.begin(), out.end(), fp8) != out.end()) return {};
    out.push_back(fp8);
    at = comma + 1;
  }
  return at > list.size() ? out : std::vector<bool>{};
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
      // One eager launch of each kernel at Qwen3-8B, T=32768, bf16 and fp8, for Nsight Compute
      // (bench/run_on_gpu.sh profile): no graphs, no timing.
      o.profile = true;
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
                   "[--profile] [--kv bf16|fp8|bf16,fp8|fp8,bf16]\n",
                   argv[i]);
      std::exit(2);
    }
  }
  return o;
}

}  // namespace rcsim::bench
