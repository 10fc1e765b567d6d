#include "fakes/faults/fault_payloads.h"

#include <algorithm>
#include <cstring>

namespace rcsim::fault_detail {

std::byte* PayloadWriter::staged_at(const TensorView& view) {
  const int64_t elem = dtype_size_bytes(view.dtype);
  const int64_t lo = view.offset * elem;
  const int64_t hi = lo + view.span_bytes();
  Staged* found = nullptr;
  for (Staged& s : staged_) {
    if (s.view.base == view.base && s.view.dtype == view.dtype) found = &s;
  }
  if (found != nullptr && found->lo <= lo && hi <= found->hi) {
    return found->host.data() + (lo - found->lo);
  }
  RCSIM_REQUIRE(access_.download && access_.upload,
                "garbage/nan payload into {} needs DeviceMemoryAccess hooks "
                "(FaultyKernelSet::set_device_memory_access)",
                view.describe());
  // Download the (widened) span; patches already made to a narrower copy are carried over (no
  // upload has happened yet, so the device still holds the original bytes around them).
  const int64_t new_lo = found != nullptr ? std::min(found->lo, lo) : lo;
  const int64_t new_hi = found != nullptr ? std::max(found->hi, hi) : hi;
  TensorView span = view;
  span.rank = 1;
  span.shape = {};
  span.strides = {};
  span.shape[0] = (new_hi - new_lo) / elem;
  span.strides[0] = 1;
  span.offset = new_lo / elem;
  HostTensor host = access_.download(span);
  RCSIM_REQUIRE(host.bytes() == new_hi - new_lo, "device download of {} returned {} bytes",
                span.describe(), host.bytes());
  if (found != nullptr) {
    std::memcpy(host.data() + (found->lo - new_lo), found->host.data(),
                static_cast<std::size_t>(found->hi - found->lo));
    *found = Staged{span, std::move(host), new_lo, new_hi};
  } else {
    staged_.push_back(Staged{span, std::move(host), new_lo, new_hi});
    found = &staged_.back();
  }
  return found->host.data() + (lo - new_lo);
}

uint64_t PayloadWriter::nan_bits(DType t) {
  switch (t) {
    case DType::kBF16: return 0x7FC0;
    case DType::kFP16: return 0x7E00;
    case DType::kFP32: return 0x7FC00000;
    case DType::kFP8E4M3FN: return 0x7F;
    case DType::kFP8E4M3FNUZ: return 0x80;
    case DType::kI64: break;
  }
  RCSIM_FAIL("no NaN for dtype {}", dtype_name(t));
}

}  // namespace rcsim::fault_detail
