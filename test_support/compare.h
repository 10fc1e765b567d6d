// Comparisons of test outputs that name what differs: the first differing byte of two tensors'
// storage (data movement is checked bit-exactly, untouched memory included) and the first
// differing (token, head, dim) of activations.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "core/attention_config.h"
#include "core/tensor.h"

namespace rcsim::test_support {

// Index of the first differing byte of two tensors' storage, or -1 when they are equal. Tensors
// of different sizes differ at the end of the shorter one.
int64_t first_byte_difference(const HostTensor& a, const HostTensor& b);

// First differing element of two [T, H, D] 16-bit activation views, as
// "first mismatch at (token t, head h, dim d): 0xAAAA vs 0xBBBB"; nullopt when equal.
std::optional<std::string> first_head_mismatch(const TensorView& a, const TensorView& b);

// The first differing (token, head, dim) of two qkv tensors [T, (Hq+2Hkv)*D] of `cfg`:
// "first difference at token t, head h, dim d", or "identical".
std::string qkv_difference(const HostTensor& expected, const HostTensor& actual,
                           const AttentionConfig& cfg);

}  // namespace rcsim::test_support
