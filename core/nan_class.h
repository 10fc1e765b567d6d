// NaN class: the one place that says which bit patterns of a dtype are NaN and which single
// pattern stands for all of them, for comparing and hashing values *computed* by arithmetic.
//
// Why: IEEE 754 leaves the sign and payload of a NaN made by an invalid operation (inf - inf,
// 0 * inf) to the implementation, and lets an operation propagate an input NaN's payload or not.
// x86 SSE produces the "default NaN" 0xFFC00000 (negative) and propagates payloads; NVIDIA GPUs
// produce the canonical 0x7FFFFFFF for every arithmetic NaN (measured on an H200: the bf16 result
// 0x7FFF where the CPU reference gives 0xFFC0); AMD GPUs produce 0x7FC00000. Rounding to bf16 /
// fp16 keeps the sign and top payload it is given (kernels/common/numeric.h), and the fp8 e4m3fn
// quantiser keeps the sign (0x7F or 0xFF), so the difference reaches every computed output. The
// kernels' contract (bit-exact with the CPU reference) therefore holds for every non-NaN value
// and for "is NaN" itself, not for a NaN's bits. Formats with one NaN code (e4m3fnuz: 0x80) are
// exact either way.
//
// Use NanRule::kNanClass only where the value was computed (normed / rotated q and k, the K cache,
// fp8 codes quantised by a division, fp8 scales, attention outputs). Data movement - a restore to
// the original bits, V copied into a bf16/fp16 cache, untouched memory and sentinels - compares
// with NanRule::kBitExact, NaN payloads included. The run digest hashes computed outputs through
// canonical_nan_bits() so that one seed gives one digest on every backend.
#pragma once

#include <cstdint>
#include <span>

#include "core/dtype.h"

namespace rcsim {

enum class NanRule : uint8_t {
  kBitExact,  // data movement: every bit, NaN sign and payload included
  kNanClass,  // computed values: bit-exact except that any NaN equals any NaN of its dtype
};

// True when `bits` (the element's raw bits, low bytes) encode a NaN of `dtype` (false for i64).
bool is_nan_bits(DType dtype, uint64_t bits);

// THE canonicalisation: `bits` unchanged unless it is a NaN of `dtype`, in which case the dtype's
// canonical quiet NaN (bf16 0x7FC0, fp16 0x7E00, fp32 0x7FC00000, e4m3fn 0x7F, e4m3fnuz 0x80).
uint64_t canonical_nan_bits(DType dtype, uint64_t bits);

// Equality of two elements' bits under `rule`.
bool element_bits_equal(DType dtype, uint64_t a, uint64_t b, NanRule rule);

// Rewrites every NaN element of a contiguous buffer of `dtype` to the canonical pattern (what the
// digest hashes for computed outputs). The span's size must be a multiple of the element size.
void canonicalise_nans(DType dtype, std::span<std::byte> elements);

}  // namespace rcsim
