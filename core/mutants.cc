#include "core/mutants.h"

#include <array>
#include <utility>

namespace rcsim {
namespace {
constexpr std::array<std::pair<Mutant, std::string_view>, 16> kNames = {{
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
    {Mutant::kGpuVShuffleIndex, "gpu-v-shuffle-index"},
}};
constexpr std::array<Mutant, 1> kDeviceOnly = {Mutant::kGpuVShuffleIndex};
constexpr bool device_only(Mutant m) {
  for (Mutant d : kDeviceOnly) {
    if (d == m) return true;
  }
  return false;
}
constexpr auto kAll = [] {
  std::array<Mutant, kNames.size() - 1 - kDeviceOnly.size()> out{};
  std::size_t n = 0;
  for (std::size_t i = 1; i < kNames.size(); ++i) {
    if (!device_only(kNames[i].first)) out[n++] = kNames[i].first;
  }
  return out;
}();
}  // namespace

std::span<const Mutant> all_mutants() { return kAll; }
std::span<const Mutant> device_only_mutants() { return kDeviceOnly; }
bool mutant_is_device_only(Mutant m) { return device_only(m); }

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
