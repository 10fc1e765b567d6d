// Unit footprints of every kernel the decorators wrap: the elements a garbage / NaN payload may
// overwrite for unit g of one call (see faulty_kernels.h for the table), reported one by one to an
// Emit. Shared read-only inputs (weights, cos/sin, positions, slots) are never part of one. The
// emitters only enumerate; the payload writer (fault_payloads.h) decides the bits.
#pragma once

#include <cstdint>

#include "core/kernel_interfaces.h"
#include "core/tensor.h"
#include "fakes/faults/fault_model.h"

namespace rcsim::fault_detail {

// Every element a payload may overwrite is reported as (view, element offset from view.data()).
struct Emit {
  virtual ~Emit() = default;
  virtual void element(const TensorView& view, int64_t offset) = 0;
};

// Unit g's footprint, restricted to `filter` (kAll: all of it). slot_mapping must be host-readable.
void footprint(const FusedQkNormRopeCacheArgs& a, int64_t g, FaultRegion filter, Emit& emit);
void footprint(const RopeReshapeCacheArgs& a, int64_t g, FaultRegion filter, Emit& emit);
void footprint(const RotaryArgs& a, int64_t g, FaultRegion filter, Emit& emit);
void footprint(const RmsNormArgs& a, int64_t g, FaultRegion filter, Emit& emit);
void footprint(const ReshapeAndCacheArgs& a, int64_t g, FaultRegion filter, Emit& emit);
void footprint(const PerTokenQuantCacheArgs& a, int64_t g, FaultRegion filter, Emit& emit);

// The token count of one call (the T of unit-granularity conversions).
inline int64_t tokens_of(const FusedQkNormRopeCacheArgs& a) { return a.qkv.rank > 0 ? a.qkv.size(0) : 0; }
inline int64_t tokens_of(const RopeReshapeCacheArgs& a) { return a.q.rank > 0 ? a.q.size(0) : 0; }
inline int64_t tokens_of(const RotaryArgs& a) { return a.q.rank > 0 ? a.q.size(0) : 0; }
inline int64_t tokens_of(const RmsNormArgs& a) { return a.input.rank > 0 ? a.input.size(0) : 0; }
inline int64_t tokens_of(const ReshapeAndCacheArgs& a) { return a.key.rank > 0 ? a.key.size(0) : 0; }
inline int64_t tokens_of(const PerTokenQuantCacheArgs& a) { return a.key.rank > 0 ? a.key.size(0) : 0; }

}  // namespace rcsim::fault_detail
