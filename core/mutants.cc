#include "core/mutants.h"

#include <array>
#include <utility>

namespace rcsim {
namespace {
constexpr std::array<std::pair<Mutant, std::string_view>, 15> kNames = {{
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
}};
constexpr auto kAll = [] {
  std::array<Mutant, kNames.size() - 1> out{};
  for (std::size_t i = 1; i < kNames.size(); ++i) out[i - 1] = kNames[i].first;
  return out;
}();
}  // namespace

std::span<const Mutant> all_mutants() { return kAll; }

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
