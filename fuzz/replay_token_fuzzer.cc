// Fuzzes the replay-token decoder (`rcsim replay TOKEN`, `rcsim shrink TOKEN`): any string either
// decodes into a config that re-encodes to a token decoding to the same config, or is rejected
// with InvalidInput.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/check.h"
#include "fault_injection/sim/sim_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view token(reinterpret_cast<const char*>(data), size);
  try {
    const rcsim::sim::DecodedToken decoded = rcsim::sim::decode_token(token);
    const std::string again = rcsim::sim::encode_token(decoded.cfg, decoded.build_id);
    const rcsim::sim::DecodedToken twice = rcsim::sim::decode_token(again);
    RCSIM_ASSERT(rcsim::sim::encode_token(twice.cfg, twice.build_id) == again,
                 "token round trip changed");
  } catch (const rcsim::InvalidInput&) {
  }
  return 0;
}
