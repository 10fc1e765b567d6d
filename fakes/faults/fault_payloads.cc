#include "fakes/faults/fault_payloads.h"

namespace rcsim::fault_detail {

HostTensor& PayloadWriter::staged(const TensorView& view) {
  for (Staged& s : staged_) {
    if (s.view.base == view.base && s.view.offset == view.offset && s.view.rank == view.rank &&
        s.view.shape == view.shape && s.view.dtype == view.dtype) {
      return s.host;
    }
  }
  RCSIM_REQUIRE(access_.download && access_.upload,
                "garbage/nan payload into {} needs DeviceMemoryAccess hooks "
                "(FaultyKernelSet::set_device_memory_access)",
                view.describe());
  RCSIM_REQUIRE(view.is_contiguous(), "garbage/nan payload needs a contiguous device view: {}",
                view.describe());
  staged_.push_back({view, access_.download(view)});
  RCSIM_REQUIRE(staged_.back().host.numel() == view.numel(),
                "device download of {} returned {} elements", view.describe(),
                staged_.back().host.numel());
  return staged_.back().host;
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
  RCSIM_ASSERT(false, "no NaN for dtype {}", dtype_name(t));
}

}  // namespace rcsim::fault_detail
