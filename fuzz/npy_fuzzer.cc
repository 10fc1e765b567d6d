// Fuzzes the .npy reader (`rcsim case` inputs come from outside): every image either decodes into
// a tensor whose re-encoding decodes to the same bytes, or is rejected with InvalidInput.
#include <cstddef>
#include <cstdint>
#include <span>

#include "core/check.h"
#include "core/io/npy.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data), size);
  for (rcsim::DType dtype : {rcsim::DType::kBF16, rcsim::DType::kFP8E4M3FN, rcsim::DType::kFP32,
                             rcsim::DType::kI64}) {
    try {
      const rcsim::HostTensor t = rcsim::io::decode_npy(bytes, dtype, "fuzz");
      const std::vector<std::byte> encoded = rcsim::io::encode_npy(t.view());
      const rcsim::HostTensor back = rcsim::io::decode_npy(encoded, dtype, "fuzz-reencoded");
      RCSIM_ASSERT(back.bytes_equal(t), "re-encoded .npy differs");
    } catch (const rcsim::InvalidInput&) {
    }
  }
  return 0;
}
