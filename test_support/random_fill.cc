// Random non-zero test inputs (see random_fill.h).
#include "test_support/random_fill.h"

#include "core/check.h"

namespace rcsim::test_support {

void fill_nonzero_activation(HostTensor& t, Prng& rng, float lo, float hi) {
  for (uint16_t& b : t.as<uint16_t>()) {
    uint16_t bits = 0;
    for (int tries = 0; tries < 16 && (bits & 0x7FFFu) == 0; ++tries) {
      bits = float_to_activation(rng.nonzero_float(lo, hi), t.dtype());
    }
    RCSIM_ASSERT((bits & 0x7FFFu) != 0, "could not draw a non-zero value in [{}, {})", lo, hi);
    b = bits;
  }
}

}  // namespace rcsim::test_support
