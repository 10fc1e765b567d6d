// The project's own PRNG. One seed drives every random choice in rcsim; std::*_distribution is
// never used because its output differs between standard libraries. SplitMix64 expands seeds and
// derives independent streams; xoshiro256** is the generator. Both are checked against published
// output vectors in core/tests/prng_test.cc.
#pragma once

#include <cstdint>
#include <string_view>

#include "core/check.h"

namespace rcsim {

__extension__ typedef unsigned __int128 Uint128;  // for Lemire's multiply-shift

class SplitMix64 {
 public:
  explicit constexpr SplitMix64(uint64_t seed) : state_(seed) {}
  constexpr uint64_t next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }

 private:
  uint64_t state_;
};

// Mixes several integers into one stream key: derive(seed, request, token, layer) etc.
constexpr uint64_t mix_seed(uint64_t a, uint64_t b) {
  SplitMix64 s(a ^ (b * 0xD6E8FEB86659FD93ull + 0x632BE59BD9B4E019ull));
  return s.next();
}
template <typename... Rest>
constexpr uint64_t mix_seed(uint64_t a, uint64_t b, Rest... rest) {
  return mix_seed(mix_seed(a, b), static_cast<uint64_t>(rest)...);
}
// FNV-1a of a label, to derive named streams ("inputs", "faults", ...) from one seed.
constexpr uint64_t label_hash(std::string_view s) {
  uint64_t h = 0xCBF29CE484222325ull;
  for (char c : s) {
    h ^= static_cast<uint8_t>(c);
    h *= 0x100000001B3ull;
  }
  return h;
}

class Prng {
 public:
  explicit constexpr Prng(uint64_t seed) {
    SplitMix64 sm(seed);
    for (uint64_t& w : s_) w = sm.next();
  }
  // A child stream that does not overlap this one in practice: keyed by a label and indices.
  template <typename... Ix>
  static constexpr Prng stream(uint64_t seed, std::string_view label, Ix... ix) {
    return Prng(mix_seed(seed, label_hash(label), static_cast<uint64_t>(ix)...));
  }

  constexpr uint64_t next_u64() {
    const uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }
  constexpr uint32_t next_u32() { return static_cast<uint32_t>(next_u64() >> 32); }

  // Uniform integer in [0, bound), bound >= 1. Lemire's method with rejection: no modulo bias.
  uint64_t below(uint64_t bound) {
    RCSIM_ASSERT(bound >= 1, "Prng::below(0)");
    for (int attempt = 0; attempt < 64; ++attempt) {
      const Uint128 m = static_cast<Uint128>(next_u64()) * bound;
      const uint64_t low = static_cast<uint64_t>(m);
      if (low >= bound || low >= (0 - bound) % bound) return static_cast<uint64_t>(m >> 64);
    }
    RCSIM_FAIL("Prng::below rejected 64 times");
  }
  // Uniform integer in [lo, hi], inclusive.
  int64_t range(int64_t lo, int64_t hi) {
    RCSIM_ASSERT(lo <= hi, "Prng::range({}, {})", lo, hi);
    return lo + static_cast<int64_t>(below(static_cast<uint64_t>(hi - lo) + 1));
  }
  // True with probability numerator/denominator (integer ratios only, so runs replay exactly).
  bool chance(uint64_t numerator, uint64_t denominator) {
    RCSIM_ASSERT(denominator >= 1 && numerator <= denominator, "chance({}/{})", numerator,
                 denominator);
    return below(denominator) < numerator;
  }
  // Uniform float in [0, 1) with 24 random bits: exact and identical on every platform.
  float unit_float() { return static_cast<float>(next_u64() >> 40) * (1.0f / 16777216.0f); }
  // Non-zero float in +-[lo, hi): inputs must never be zero (zeros hide unwritten outputs).
  float nonzero_float(float lo, float hi) {
    const float mag = lo + (hi - lo) * unit_float();
    return (next_u64() & 1) ? -mag : mag;
  }
  template <typename T>
  const T& pick(const T* values, std::size_t count) {
    return values[below(count)];
  }

 private:
  static constexpr uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t s_[4]{};
};

}  // namespace rcsim
