// Fault payloads: writing garbage (seeded random bits) or the dtype's quiet NaN into the elements
// a unit footprint names, on the host or, staged, on another device.
#pragma once

#include <cstdint>
#include <cstring>
#include <vector>

#include "core/check.h"
#include "core/prng.h"
#include "core/tensor.h"
#include "fakes/faults/faulty_kernels.h"
#include "fakes/faults/unit_footprints.h"

namespace rcsim::fault_detail {

// Writes the payload: seeded random bits (garbage) or the dtype's quiet NaN (nan). Host views
// are written in place; views on another device are staged: each touched view is downloaded once,
// patched on the host and uploaded by flush() (through the DeviceMemoryAccess hooks). The bits are
// drawn in the same order either way, so one seed gives the same payload on every backend.
class PayloadWriter final : public Emit {
 public:
  PayloadWriter(bool nan, Prng& prng, const DeviceMemoryAccess& access)
      : nan_(nan), prng_(prng), access_(access) {}
  void element(const TensorView& view, int64_t offset) override {
    const int64_t size = dtype_size_bytes(view.dtype);
    const uint64_t bits = nan_ ? nan_bits(view.dtype) : prng_.next_u64();
    std::byte* at = nullptr;
    if (view.device == DeviceTag::kHost) {
      at = view.data() + offset * size;
    } else {
      // The element offset (from view.data()) indexes the staged copy of the view's span.
      at = staged_at(view) + offset * size;
    }
    std::memcpy(at, &bits, static_cast<std::size_t>(size));  // little-endian: the low bytes
    ++elements_;
  }
  int64_t elements() const { return elements_; }
  // Uploads every staged view (no-op for host-only payloads).
  void flush() {
    for (const Staged& s : staged_) access_.upload(s.host, s.view);
    staged_.clear();
  }

 private:
  // One staged copy per device buffer (base, dtype): the bytes [lo, hi) from base that the
  // touched views span, as a contiguous 1-D view. Strided views (q or k inside qkv) share their
  // buffer's copy, so overlapping spans never upload stale bytes over each other's patches.
  struct Staged {
    TensorView view;
    HostTensor host;
    int64_t lo = 0;
    int64_t hi = 0;
  };
  // The host address of view.data() inside its buffer's staged copy (downloaded or widened here).
  std::byte* staged_at(const TensorView& view);
  static uint64_t nan_bits(DType t);
  bool nan_;
  Prng& prng_;
  const DeviceMemoryAccess& access_;
  std::vector<Staged> staged_;
  int64_t elements_ = 0;
};

// A copy of `args` whose slot_mapping is host-readable (downloaded through `access` when it lives
// on a device; `holder` keeps the download alive). Kernels without slots are returned as they are.
template <typename Args>
Args with_host_slots(const Args& args, HostTensor& holder, const DeviceMemoryAccess& access) {
  Args out = args;
  if constexpr (requires { out.slot_mapping; }) {
    if (!out.slot_mapping.is_null() && out.slot_mapping.device != DeviceTag::kHost) {
      RCSIM_REQUIRE(access.download, "garbage/nan with a device slot_mapping needs "
                                     "DeviceMemoryAccess hooks (set_device_memory_access)");
      RCSIM_REQUIRE(out.slot_mapping.is_contiguous(), "slot_mapping must be contiguous: {}",
                    out.slot_mapping.describe());
      holder = access.download(out.slot_mapping);
      out.slot_mapping = holder.view();
    }
  }
  return out;
}

}  // namespace rcsim::fault_detail
