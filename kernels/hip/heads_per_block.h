// How many heads one block of a tiled kernel takes (host side, included by .hip launchers).
//
// Why: a block takes several heads of its tokens so that per-token loads and the V run search are
// shared, which is what large batches need. A small batch then makes fewer blocks than the device
// has SMs, and each block runs its heads one after another: the launch is as long as one block's
// chain. Measured on the H200 (Qwen3-8B, gpu_bench --quick, one call, variants alternated;
// bench/results/h200-2026-11-30-decode/README.md): with one head per block the fused kernel went
// from 2.97 to 2.20 us at T=1 and from 4.25 to 3.55 us at T=64 (bf16; fp8 6.34 -> 4.16 and 7.42 ->
// 5.38), but lost 27% at T=1024, where the launch at full heads already fills the device.
#pragma once

#include <cstdint>

#include "kernels/hip/gpu_platform.h"

namespace rcsim::gpu::tile {

// Streaming multiprocessors (compute units) of the current device; 0 if the runtime cannot say
// (then every launch keeps its full heads per block).
inline int64_t device_sm_count() {
  static const int64_t sms = [] {
    int dev = 0;
    hipDeviceProp_t prop;
    if (hipGetDevice(&dev) != hipSuccess || hipGetDeviceProperties(&prop, dev) != hipSuccess) {
      return int64_t{0};
    }
    return static_cast<int64_t>(prop.multiProcessorCount);
  }();
  return sms;
}

// Whether a launch of `blocks_at_max` blocks is in the top band (four blocks per SM or more; with
// the SM count unknown, every launch is).
inline bool fills_device(int64_t blocks_at_max) {
  return blocks_at_max >= 4 * device_sm_count();
}

// Heads per block for a kind of block whose kernel takes at most `max_heads`, when the launch with
// every kind at its maximum would have `blocks_at_max` blocks: one head under one block per SM,
// `mid_heads` (<= max_heads) under four blocks per SM, else all; the bands and the middle counts
// are the ones that measured fastest.
inline int heads_per_block(int max_heads, int mid_heads, int64_t blocks_at_max) {
  const int64_t sms = device_sm_count();
  if (blocks_at_max < sms) return 1;
  if (!fills_device(blocks_at_max)) return mid_heads < max_heads ? mid_heads : max_heads;
  return max_heads;
}

}  // namespace rcsim::gpu::tile
