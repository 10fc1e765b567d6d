// Deliberately broken variants of rcsim's kernels and dispatcher ("mutants"). Each must be caught
// by the property suites or the simulation campaign; the `negative` test label proves it. They
// are compiled in and selected at run time (CLI --mutant, env RCSIM_MUTANT), never active unless
// asked for, and the active one is printed and carried in replay tokens.
#pragma once

#include <cstdint>
#include <atomic>
#include <optional>
#include <span>
#include <string_view>

#include "kernels/common/shared_math_mutants.h"

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
  kStickyErrorFallsBack,     // after a sticky device error the dispatcher neither surfaces nor
                             // restores but runs the fallback (which then fails on the poisoned
                             // device with the same class: only call counts can tell)
  // Planted inside one function of kernels/common (kernels/common/shared_math_mutants.h), so the
  // CPU reference, the non-fused kernels and the simulator's shadow all change together. Only
  // checks outside the shared code (the independent reference, known answers) can see them.
  kSharedBf16Truncates,
  kSharedBf16DecodeDropsLsb,
  kSharedFp16Truncates,
  kSharedFp16DecodeDropsLsb,
  kSharedFp8Truncates,
  kSharedFp8DecodeOtherBias,
  kSharedFp8MaxOtherFormat,
  kSharedFp8MaxCodeLow,
  kSharedFp8NanCodeZero,
  kSharedLaneSumDropsLast,
  kSharedButterflyKeepsOwn,
  kSharedButterflyOrderReversed,
  kSharedMaxStepMin,
  kSharedRmsEpsOutsideRoot,
  kSharedNormaliseReassociated,
  kSharedRopeFreqIndexGptj,
  kSharedRopePartnerOffByOne,
  kSharedRopeNeoxSignFlipped,
  kSharedRopeCosSinSwapped,
  kSharedRopeElementSignDropped,
  kSharedAmaxSigned,
  kSharedAmaxFloorSkipped,
  kSharedQuantDivideMultiplies,
  kSharedReciprocalUlpLow,
  kSharedQuantMultiplyDivides,
  kSharedKOffsetHeadMajor,
  kSharedVShuffleInnerSwapped,
  kSharedVPlainHeadMajor,
  kSharedScaleIndexHeadMajor,
  kSharedFp8BiasOtherFormat,
  kSharedFlashHeadTokenSwapped,
  kSharedCacheElementsDropsHeads,
  kSharedScaleElementsDropsHeads,
  // Device-only: lives in the GPU kernels alone (the tiled fused kernel stores V at a wrong
  // shuffle index, FusedParams::planted_v_index_bug). The CPU reference ignores it, so CPU
  // campaigns pass with it; GPU-backend campaigns and property suites must catch it.
  kGpuVShuffleIndex,
  // Campaign-only: a fault injector whose fire decisions are seeded from a counter that lives as
  // long as the OS process, not from the run's seed alone (ggml's backend test seeded from
  // std::random_device). Every single run looks fine and `rcsim replay` of a fresh process
  // reproduces it; only a campaign's determinism recheck (a seed run twice in one process) sees
  // the digests differ, and must exit 4.
  kFaultFireUnseeded,
};

// The kernel/dispatcher mutants (those the simulation campaign must catch) and the shared-math
// ones (those only checks outside kernels/common can catch); together, all_mutants().
std::span<const Mutant> simulation_mutants();
std::span<const Mutant> shared_math_mutants();
// The planted change a shared-math mutant selects in kernels/common (kNone for the others).
shared_mutants::SharedBug shared_bug_of(Mutant m);

// Every mutant the CPU reference honours (kNone and the device-only ones excluded): each must be
// caught on the CPU backend.
std::span<const Mutant> all_mutants();
// Mutants that live in device code only (caught only with --backend gpu).
std::span<const Mutant> device_only_mutants();
bool mutant_is_device_only(Mutant m);
// Mutants that only a campaign's determinism recheck catches (exit 4, through `rcsim campaign`:
// the CTest test cli_exit_4_nondeterminism).
std::span<const Mutant> campaign_only_mutants();
std::string_view mutant_name(Mutant m);
std::optional<Mutant> mutant_from_name(std::string_view name);

namespace detail {
inline std::atomic<Mutant> g_active_mutant{Mutant::kNone};
}
inline Mutant active_mutant() { return detail::g_active_mutant.load(std::memory_order_relaxed); }
inline bool mutant_active(Mutant m) { return active_mutant() == m; }
inline void set_active_mutant(Mutant m) {
  detail::g_active_mutant.store(m);
  shared_mutants::set_active(shared_bug_of(m));
}

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
