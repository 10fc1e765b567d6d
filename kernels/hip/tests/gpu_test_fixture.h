// What every GPU test file shares: the seed (RCSIM_SEED, printed first) and its repro line, the
// quick mode (RCSIM_GPU_QUICK), the fixture that finds the device or skips (fails under
// RCSIM_REQUIRE_GPU), and the byte-for-byte comparison of two cases' outputs.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "kernels/cpu/cpu_backend.h"
#include "kernels/hip/gpu_backend.h"
#include "harness/gpu/gpu_case.h"
#include "test_support/seed.h"

namespace rcsim::gpu {

inline uint64_t test_seed() {
  static const uint64_t seed = test_support::seed_from_env(0x5EED0007ull);
  return seed;
}
inline bool quick() { return std::getenv("RCSIM_GPU_QUICK") != nullptr; }

inline std::string repro() { return test_support::repro_line(test_seed()); }

class GpuTest : public ::testing::Test {
 protected:
  void SetUp() override {
    (void)test_seed();
    const int assigned = ctest_assigned_device();  // CTest resource groups: one GPU per test
    if (assigned >= 0) select_device(assigned);
    const DeviceInfo info = query_device();
    if (info.device_count == 0) {
      if (std::getenv("RCSIM_REQUIRE_GPU") != nullptr) FAIL() << "RCSIM_REQUIRE_GPU set, no device";
      GTEST_SKIP() << "no " << info.platform << " device";
    }
    static bool printed = false;
    if (!printed) {
      std::printf("device: %s (%s, %d SMs, warp %d)\n", info.name.c_str(), info.platform.c_str(),
                  info.multiprocessor_count, info.warp_size_lanes);
      printed = true;
    }
    gpu_ = std::make_unique<GpuBackend>();
  }
  std::unique_ptr<GpuBackend> gpu_;
  cpu::CpuBackend cpu_;
};

// Expects every output of two cases byte-identical.
inline void expect_same_outputs(const HostCase& got, const HostCase& want, const std::string& what) {
  struct Pair {
    const HostTensor* g;
    const HostTensor* w;
    const char* name;
  };
  const std::vector<Pair> pairs = {{&got.qkv, &want.qkv, "qkv"},
                                   {&got.k_cache, &want.k_cache, "k_cache"},
                                   {&got.v_cache, &want.v_cache, "v_cache"},
                                   {&got.k_scale, &want.k_scale, "k_scale"},
                                   {&got.v_scale, &want.v_scale, "v_scale"}};
  for (const Pair& p : pairs) {
    if (p.w->empty()) continue;
    const ByteDiff d = compare_bytes(*p.g, *p.w, p.name, want.cfg);
    EXPECT_TRUE(d.equal()) << what << ": " << d.mismatched_elements << " elements of " << p.name
                           << " differ; first " << d.first_bad << "\n"
                           << repro();
  }
}

}  // namespace rcsim::gpu
