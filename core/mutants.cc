#include "core/mutants.h"

#include <array>
#include <utility>

namespace rcsim {
namespace {
constexpr std::size_t kSimulationMutantCount = 15;
constexpr std::array<std::pair<Mutant, std::string_view>, 51> kNames = {{
    {Mutant::kNone, "none"},
    {Mutant::kEpsOutsideRoot, "eps-outside-root"},
    {Mutant::kRopeSignFlipped, "rope-sign-flipped"},
    {Mutant::kPairingSwapped, "pairing-swapped"},
    {Mutant::kSlotOffByOne, "slot-off-by-one"},
    {Mutant::kVWrittenBack, "v-written-back"},
    {Mutant::kRestoreSkipped, "restore-skipped"},
    {Mutant::kOnlyQRestored, "only-q-restored"},
    {Mutant::kWarnPerCall, "warn-per-call"},
    {Mutant::kBranchBAfterFailure, "branch-b-after-failure"},
    {Mutant::kFallbackOrderSwapped, "fallback-order-swapped"},
    {Mutant::kFp8MaxOtherFormat, "fp8-max-other-format"},
    {Mutant::kPaddedTokensCached, "padded-tokens-cached"},
    {Mutant::kScaleNotStored, "scale-not-stored"},
    {Mutant::kReaderLayoutMismatch, "reader-layout-mismatch"},
    {Mutant::kStickyErrorFallsBack, "sticky-error-falls-back"},
    {Mutant::kSharedBf16Truncates, "shared-bf16-truncates"},
    {Mutant::kSharedBf16DecodeDropsLsb, "shared-bf16-decode-drops-lsb"},
    {Mutant::kSharedFp16Truncates, "shared-fp16-truncates"},
    {Mutant::kSharedFp16DecodeDropsLsb, "shared-fp16-decode-drops-lsb"},
    {Mutant::kSharedFp8Truncates, "shared-fp8-truncates"},
    {Mutant::kSharedFp8DecodeOtherBias, "shared-fp8-decode-other-bias"},
    {Mutant::kSharedFp8MaxOtherFormat, "shared-fp8-max-other-format"},
    {Mutant::kSharedFp8MaxCodeLow, "shared-fp8-max-code-low"},
    {Mutant::kSharedFp8NanCodeZero, "shared-fp8-nan-code-zero"},
    {Mutant::kSharedLaneSumDropsLast, "shared-lane-sum-drops-last"},
    {Mutant::kSharedButterflyKeepsOwn, "shared-butterfly-keeps-own"},
    {Mutant::kSharedButterflyOrderReversed, "shared-butterfly-order-reversed"},
    {Mutant::kSharedMaxStepMin, "shared-max-step-min"},
    {Mutant::kSharedRmsEpsOutsideRoot, "shared-rms-eps-outside-root"},
    {Mutant::kSharedNormaliseReassociated, "shared-normalise-reassociated"},
    {Mutant::kSharedRopeFreqIndexGptj, "shared-rope-freq-index-gptj"},
    {Mutant::kSharedRopePartnerOffByOne, "shared-rope-partner-off-by-one"},
    {Mutant::kSharedRopeNeoxSignFlipped, "shared-rope-neox-sign-flipped"},
    {Mutant::kSharedRopeCosSinSwapped, "shared-rope-cos-sin-swapped"},
    {Mutant::kSharedRopeElementSignDropped, "shared-rope-element-sign-dropped"},
    {Mutant::kSharedAmaxSigned, "shared-amax-signed"},
    {Mutant::kSharedAmaxFloorSkipped, "shared-amax-floor-skipped"},
    {Mutant::kSharedQuantDivideMultiplies, "shared-quant-divide-multiplies"},
    {Mutant::kSharedReciprocalUlpLow, "shared-reciprocal-ulp-low"},
    {Mutant::kSharedQuantMultiplyDivides, "shared-quant-multiply-divides"},
    {Mutant::kSharedKOffsetHeadMajor, "shared-k-offset-head-major"},
    {Mutant::kSharedVShuffleInnerSwapped, "shared-v-shuffle-inner-swapped"},
    {Mutant::kSharedVPlainHeadMajor, "shared-v-plain-head-major"},
    {Mutant::kSharedScaleIndexHeadMajor, "shared-scale-index-head-major"},
    {Mutant::kSharedFp8BiasOtherFormat, "shared-fp8-bias-other-format"},
    {Mutant::kSharedFlashHeadTokenSwapped, "shared-flash-head-token-swapped"},
    {Mutant::kSharedCacheElementsDropsHeads, "shared-cache-elements-drops-heads"},
    {Mutant::kSharedScaleElementsDropsHeads, "shared-scale-elements-drops-heads"},
    {Mutant::kGpuVShuffleIndex, "gpu-v-shuffle-index"},
    {Mutant::kFaultFireUnseeded, "fault-fire-unseeded"},
}};
// Mutant::kSharedX selects SharedBug::kX: both enums list them in the same order.
constexpr auto kFirstShared = Mutant::kSharedBf16Truncates;
constexpr auto kLastShared = Mutant::kSharedScaleElementsDropsHeads;
static_assert(static_cast<int>(kLastShared) - static_cast<int>(kFirstShared) ==
              static_cast<int>(shared_mutants::SharedBug::kScaleElementsDropsHeads) -
                  static_cast<int>(shared_mutants::SharedBug::kBf16Truncates));
static_assert(static_cast<std::size_t>(kFirstShared) == kSimulationMutantCount + 1);
constexpr std::array<Mutant, 1> kDeviceOnly = {Mutant::kGpuVShuffleIndex};
constexpr std::array<Mutant, 1> kCampaignOnly = {Mutant::kFaultFireUnseeded};
constexpr bool device_only(Mutant m) {
  for (Mutant d : kDeviceOnly) {
    if (d == m) return true;
  }
  return false;
}
constexpr bool campaign_only(Mutant m) {
  for (Mutant c : kCampaignOnly) {
    if (c == m) return true;
  }
  return false;
}
constexpr auto kAll = [] {
  std::array<Mutant, kNames.size() - 1 - kDeviceOnly.size() - kCampaignOnly.size()> out{};
  std::size_t n = 0;
  for (std::size_t i = 1; i < kNames.size(); ++i) {
    if (!device_only(kNames[i].first) && !campaign_only(kNames[i].first)) {
      out[n++] = kNames[i].first;
    }
  }
  return out;
}();
}  // namespace

std::span<const Mutant> all_mutants() { return kAll; }
std::span<const Mutant> simulation_mutants() {
  return std::span<const Mutant>(kAll).first(kSimulationMutantCount);
}
std::span<const Mutant> shared_math_mutants() {
  return std::span<const Mutant>(kAll).subspan(kSimulationMutantCount);
}

shared_mutants::SharedBug shared_bug_of(Mutant m) {
  const int i = static_cast<int>(m) - static_cast<int>(kFirstShared);
  const int last = static_cast<int>(kLastShared) - static_cast<int>(kFirstShared);
  if (i < 0 || i > last) return shared_mutants::SharedBug::kNone;
  return static_cast<shared_mutants::SharedBug>(
      static_cast<int>(shared_mutants::SharedBug::kBf16Truncates) + i);
}
std::span<const Mutant> device_only_mutants() { return kDeviceOnly; }
bool mutant_is_device_only(Mutant m) { return device_only(m); }
std::span<const Mutant> campaign_only_mutants() { return kCampaignOnly; }

std::string_view mutant_name(Mutant m) {
  for (const auto& [mutant, name] : kNames) {
    if (mutant == m) return name;
  }
  return "?";
}

std::optional<Mutant> mutant_from_name(std::string_view name) {
  for (const auto& [mutant, n] : kNames) {
    if (n == name) return mutant;
  }
  return std::nullopt;
}

}  // namespace rcsim
