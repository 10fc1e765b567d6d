// gpu_bench's workload model (gpu_bench_model.h).
#include "bench/gpu_bench_model.h"

#include <algorithm>
#include <cstddef>

namespace rcsim::bench {

Bytes min_bytes(const Config& c) {
  const double T = static_cast<double>(c.tokens), D = static_cast<double>(c.shape.d);
  const double hq = static_cast<double>(c.shape.hq), hkv = static_cast<double>(c.shape.hkv);
  const double elt = c.fp8 ? 1.0 : 2.0;
  const double scales = c.fp8 ? 2.0 * hkv * 4.0 : 0.0;
  Bytes b;
  b.fused = T * ((hq + 2 * hkv) * D * 2 + (hq + hkv) * D * 2 + 2 * hkv * D * elt + scales + D * 2 + 16);
  b.rms_q = T * hq * D * 2 * 2;
  b.rms_k = T * hkv * D * 2 * 2;
  b.rotary = T * ((hq + hkv) * D * 2 * 2 + D * 2 + 8);
  b.cache = T * (2 * hkv * D * 2 + 2 * hkv * D * elt + scales + 8);
  b.nonfused = b.rms_q + b.rms_k + b.rotary + b.cache;
  return b;
}

std::vector<int64_t> prefill_slots(int64_t rows, Prng& rng) {
  std::vector<int64_t> s;
  s.reserve(static_cast<std::size_t>(rows));
  int64_t page = 0;
  while (static_cast<int64_t>(s.size()) < rows) {
    const int64_t len = std::min<int64_t>(rng.range(32, 2048), rows - static_cast<int64_t>(s.size()));
    for (int64_t i = 0; i < len; ++i) s.push_back(page * kBlockSize + i);
    page += (len + kBlockSize - 1) / kBlockSize;
  }
  return s;
}

std::vector<int64_t> decode_slots(int64_t rows, int64_t pages, Prng& rng) {
  std::vector<int64_t> perm(static_cast<std::size_t>(pages));
  for (int64_t i = 0; i < pages; ++i) perm[static_cast<std::size_t>(i)] = i;
  for (int64_t i = pages - 1; i > 0; --i) {
    std::swap(perm[static_cast<std::size_t>(i)], perm[static_cast<std::size_t>(rng.range(0, i))]);
  }
  std::vector<int64_t> s(static_cast<std::size_t>(rows));
  for (int64_t i = 0; i < rows; ++i) {
    s[static_cast<std::size_t>(i)] = perm[static_cast<std::size_t>(i)] * kBlockSize + rng.range(0, kBlockSize - 1);
  }
  return s;
}

Bytes sector_floor_bytes(const Config& c) {
  Bytes b = min_bytes(c);
  const double T = static_cast<double>(c.tokens), D = static_cast<double>(c.shape.d);
  const double hq = static_cast<double>(c.shape.hq), hkv = static_cast<double>(c.shape.hkv);
  const double x = c.fp8 ? 16.0 : 8.0;
  const double k_sectors = hkv * (D / x), v_sectors = hkv * (D / 2.0);
  const double scale_sectors = c.fp8 ? 2.0 * hkv : 0.0;
  const double cache = (k_sectors + v_sectors + scale_sectors) * 32.0;
  b.fused = T * ((hq + 2 * hkv) * D * 2 + (hq + hkv) * D * 2 + D * 2 + 64 + cache);
  b.cache = T * (2 * hkv * D * 2 + 32 + cache);
  return b;
}

}  // namespace rcsim::bench
