// Device timing for the GPU benchmarks (see gpu_timing.h).
#include "bench/gpu_timing.h"

#include <algorithm>
#include <cstdio>
#include <vector>

namespace rcsim::bench {

using namespace rcsim::gpu;

namespace {

// The median of kRepeats (odd) or more samples: every timing here reports it.
double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Calls per eager sample: at least ~2 ms of calls, 5 to 400.
int eager_calls_per_sample(const std::function<void(int, void*)>& fn, const ResetInputs& reset) {
  EventTimer timer;
  for (int i = 0; i < 3; ++i) fn(0, nullptr);
  synchronize();
  reset();
  timer.start(nullptr);
  fn(0, nullptr);
  timer.stop(nullptr);
  const double one_ms = std::max(1e-3, static_cast<double>(timer.elapsed_ms()));
  return static_cast<int>(std::clamp(2.0 / one_ms, 5.0, 400.0));
}

// One eager sample: reset, then `calls` calls between events; us per call.
double eager_sample_us(const std::function<void(int, void*)>& fn, int calls,
                       const ResetInputs& reset) {
  EventTimer timer;
  reset();
  timer.start(nullptr);
  for (int i = 0; i < calls; ++i) fn(0, nullptr);
  timer.stop(nullptr);
  return static_cast<double>(timer.elapsed_ms()) * 1000.0 / calls;
}

}  // namespace

// Times fn(set) calls: a graph of `sets` calls (one per input set) replayed; returns us per call.
double time_us_per_call(GraphRunner& g, int sets, const std::function<void(int, void*)>& fn,
                        const ResetInputs& reset) {
  g.begin_capture();
  for (int s = 0; s < sets; ++s) fn(s, g.stream());
  g.end_capture();
  EventTimer timer;
  // At least ~1 ms per measurement so event resolution does not matter.
  g.replay();
  synchronize();
  reset();
  timer.start(g.stream());
  g.replay();
  timer.stop(g.stream());
  const double one_ms = std::max(1e-3, static_cast<double>(timer.elapsed_ms()));
  const int replays = static_cast<int>(std::clamp(1.0 / one_ms, 1.0, 200.0));
  std::vector<double> samples;
  for (int r = 0; r < kRepeats; ++r) {
    reset();
    timer.start(g.stream());
    for (int i = 0; i < replays; ++i) g.replay();
    timer.stop(g.stream());
    samples.push_back(static_cast<double>(timer.elapsed_ms()) * 1000.0 / (replays * sets));
  }
  return median(samples);
}

EagerTimes time_us_eager_rounds(const std::vector<std::function<void(int, void*)>>& fns,
                                const ResetInputs& reset, int rounds) {
  const std::size_t n = fns.size();
  std::vector<int> calls;
  for (const auto& fn : fns) calls.push_back(eager_calls_per_sample(fn, reset));
  std::vector<std::vector<double>> samples(n);
  for (int r = 0; r < rounds; ++r) {
    // Rotated, so that no fn always follows the same one (its host and device state).
    for (std::size_t i = 0; i < n; ++i) {
      const std::size_t k = (static_cast<std::size_t>(r) + i) % n;
      samples[k].push_back(eager_sample_us(fns[k], calls[k], reset));
    }
  }
  EagerTimes t;
  for (std::size_t k = 0; k < n; ++k) {
    t.us.push_back(median(samples[k]));
    std::vector<double> ratios;
    for (int r = 0; r < rounds; ++r) ratios.push_back(samples[k][r] / samples[0][r]);
    t.ratio_to_first.push_back(median(ratios));
  }
  return t;
}

// The bandwidth every kernel is compared against: 2 GiB device-to-device, read + write bytes,
// median of kRepeats copies.
double measure_copy_gbps() {
  const int64_t bytes = int64_t{2} << 30;
  DeviceMem a(bytes), b(bytes);
  fill_device_bytes(a.p, 0x3C, bytes, nullptr);
  synchronize();
  EventTimer t;
  std::vector<double> s;
  for (int r = 0; r < kRepeats; ++r) {
    t.start(nullptr);
    copy_device_to_device(b.p, a.p, bytes, nullptr);
    t.stop(nullptr);
    s.push_back(2.0 * static_cast<double>(bytes) / (static_cast<double>(t.elapsed_ms()) * 1e6));
  }
  const double copy_gbps = median(s);
  std::printf("copy bandwidth (2 GiB D2D, read+write): %.0f GB/s\n", copy_gbps);
  return copy_gbps;
}

}  // namespace rcsim::bench
