// The RoPE cos/sin table as aiter's get_rope builds it: inv_freq[j] = 1 / theta^(2j / rot),
// angle = p * inv_freq[j], row p = [cos(angle_0..rot/2) | sin(angle_0..rot/2)], rounded to the
// activation dtype. One builder for the whole project; the arithmetic precisions its callers use
// are named here because their last bits differ (measured: about 1 in 3 million bf16 entries), and
// a caller's table must not change under it (the simulator's digest, the tests' known answers).
#pragma once

#include <cstdint>

#include "core/dtype.h"
#include "core/tensor.h"

namespace rcsim {

enum class RopeTableMath : uint8_t {
  kFp32,               // inv_freq, angle and cos/sin in fp32, as aiter (simulator, CLI)
  kFp32AngleFp64Trig,  // inv_freq and angle in fp32, cos/sin evaluated in double (kernel tests)
  kFp64,               // inv_freq, angle and cos/sin in double (property-test generators)
};

// [max_position, rotary_dim] in `act` (bf16 or fp16). rotary_dim even, theta > 0.
HostTensor build_cos_sin_table(int64_t max_position, int64_t rotary_dim, DType act, double theta,
                               RopeTableMath math);

}  // namespace rcsim
