// Deliberately broken variants of rcsim's kernels and dispatcher ("mutants"). Each must be caught
// by the property suites or the simulation campaign; the `negative` test label proves it. They
// are compiled in and selected at run time (CLI --mutant, env RCSIM_MUTANT), never active unless
// asked for, and the active one is printed and carried in replay tokens.
#pragma once

#include <atomic>
#include <optional>
#include <span>
#include <string_view>

namespace rcsim {

enum class Mutant : uint8_t {
  kNone,
  kEpsOutsideRoot,           // rms = 1/(sqrt(mean) + eps) instead of 1/sqrt(mean + eps)
  kRopeSignFlipped,          // x*cos + rot(x)*sin with rot's sign flipped
  kPairingSwapped,           // NeoX pairs used where GPT-J was asked, and vice versa
  kSlotOffByOne,             // cache writes go to slot + 1
  kVWrittenBack,             // the fused kernel writes V back into qkv (it must not)
  kRestoreSkipped,           // dispatcher does not restore qkv after a failed fused call
  kOnlyQRestored,            // dispatcher restores only the q region
  kWarnPerCall,              // the fallback warning fires on every call, not once
  kBranchBAfterFailure,      // after a failed fused call with q_norm set, branch B runs
  kFallbackOrderSwapped,     // the fallback uses the other order than its policy promises
  kFp8MaxOtherFormat,        // fp8 quantisation uses the other format's max (448 vs 240)
  kPaddedTokensCached,       // tokens with slot -1 are written to the cache
  kScaleNotStored,           // per-token fp8 scales are not written
  kReaderLayoutMismatch,     // the attention read uses plain V where shuffle was written
  // Device-only: lives in the GPU kernels alone (the tiled fused kernel stores V at a wrong
  // shuffle index, FusedParams::planted_v_index_bug). The CPU reference ignores it, so CPU
  // campaigns pass with it; GPU-backend campaigns and property suites must catch it.
  kGpuVShuffleIndex,
};

// Every mutant the CPU reference honours (kNone and the device-only ones excluded): each must be
// caught on the CPU backend.
std::span<const Mutant> all_mutants();
// Mutants that live in device code only (caught only with --backend gpu).
std::span<const Mutant> device_only_mutants();
bool mutant_is_device_only(Mutant m);
std::string_view mutant_name(Mutant m);
std::optional<Mutant> mutant_from_name(std::string_view name);

namespace detail {
inline std::atomic<Mutant> g_active_mutant{Mutant::kNone};
}
inline Mutant active_mutant() { return detail::g_active_mutant.load(std::memory_order_relaxed); }
inline bool mutant_active(Mutant m) { return active_mutant() == m; }
inline void set_active_mutant(Mutant m) { detail::g_active_mutant.store(m); }

// Scoped selection for tests.
class ScopedMutant {
 public:
  explicit ScopedMutant(Mutant m) : previous_(active_mutant()) { set_active_mutant(m); }
  ~ScopedMutant() { set_active_mutant(previous_); }
  ScopedMutant(const ScopedMutant&) = delete;
  ScopedMutant& operator=(const ScopedMutant&) = delete;

 private:
  Mutant previous_;
};

}  // namespace rcsim
