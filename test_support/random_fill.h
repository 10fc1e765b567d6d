// Random test inputs through rcsim::Prng (never std::*_distribution): activation tensors whose
// every element is non-zero, so a kernel that skips or zeroes an element cannot pass by accident.
#pragma once

#include "core/prng.h"
#include "core/tensor.h"

namespace rcsim::test_support {

// Fills a bf16/fp16 tensor with random values of magnitude in [lo, hi), random sign, each
// non-zero after rounding to the tensor's dtype (redrawn, at most 16 times, if it rounds to 0).
void fill_nonzero_activation(HostTensor& t, Prng& rng, float lo, float hi);

}  // namespace rcsim::test_support
