// The run digest: XXH3-64 over everything a run produces (outputs, dispatch records, attention
// reads, log lines, final caches). Two runs of one config must print the same digest; the
// campaign's determinism self-check compares it.
#pragma once

#include <cstdint>
#include <cstring>
#include <string_view>
#include <type_traits>

#include <xxhash.h>

#include "core/check.h"

namespace rcsim::sim {

class Digest {
 public:
  Digest() : state_(XXH3_createState()) {
    RCSIM_ASSERT(state_ != nullptr, "XXH3_createState failed");
    XXH3_64bits_reset(state_);
  }
  ~Digest() { XXH3_freeState(state_); }
  Digest(const Digest&) = delete;
  Digest& operator=(const Digest&) = delete;

  void bytes(const void* data, std::size_t size) { XXH3_64bits_update(state_, data, size); }
  template <typename T>
    requires std::is_integral_v<T> || std::is_enum_v<T>
  void value(T v) {
    const auto wide = static_cast<uint64_t>(v);
    bytes(&wide, sizeof wide);
  }
  void text(std::string_view s) {
    value(s.size());
    bytes(s.data(), s.size());
  }
  uint64_t result() const { return XXH3_64bits_digest(state_); }

 private:
  XXH3_state_t* state_;
};

}  // namespace rcsim::sim
