#include "core/fidelity.h"

#include <array>

#include <fmt/format.h>

namespace rcsim {
namespace {

struct Entry {
  Fidelity f;
  std::string_view name;
};
constexpr std::array<Entry, 5> kEntries = {{
    {Fidelity::kMath, "math"},
    {Fidelity::kAiterGfx942, "aiter-gfx942"},
    {Fidelity::kAiterGfx950, "aiter-gfx950"},
    {Fidelity::kAiterGfx942Mar26, "aiter-gfx942-mar26"},
    {Fidelity::kAiterGfx950Mar26, "aiter-gfx950-mar26"},
}};
constexpr std::array<Fidelity, 5> kAll = {Fidelity::kMath, Fidelity::kAiterGfx942,
                                          Fidelity::kAiterGfx950, Fidelity::kAiterGfx942Mar26,
                                          Fidelity::kAiterGfx950Mar26};

bool is_power_of_two(int64_t v) { return v > 0 && (v & (v - 1)) == 0; }

}  // namespace

std::string_view fidelity_name(Fidelity f) {
  for (const Entry& e : kEntries) {
    if (e.f == f) return e.name;
  }
  return "?";
}

std::optional<Fidelity> fidelity_from_name(std::string_view name) {
  for (const Entry& e : kEntries) {
    if (e.name == name) return e.f;
  }
  return std::nullopt;
}

std::span<const Fidelity> all_fidelities() { return kAll; }

std::string fidelity_names_joined() {
  std::string s;
  for (const Entry& e : kEntries) {
    if (!s.empty()) s += ", ";
    s += e.name;
  }
  return s;
}

FidelitySwitches fidelity_switches(Fidelity f) {
  FidelitySwitches s;
  if (f == Fidelity::kMath) return s;
  const bool current = f == Fidelity::kAiterGfx942 || f == Fidelity::kAiterGfx950;
  const bool gfx942 = f == Fidelity::kAiterGfx942 || f == Fidelity::kAiterGfx942Mar26;
  s.neox_partner_by_xor_lane = current;
  s.partial_rotary_rejected = !current;
  s.rmsnorm_bf16_truncates = gfx942;
  s.fused_amax_from_first_element = true;
  s.fused_amax_floor = current;
  s.pertoken_scale_unfloored = true;
  s.pertoken_reciprocal_guard = current;
  s.device_default_nan_positive = true;
  return s;
}

std::optional<std::string> fidelity_miscomputes(const AttentionConfig& cfg, Fidelity f) {
  if (!fidelity_switches(f).neox_partner_by_xor_lane || !cfg.is_neox) return std::nullopt;
  const int64_t elems_per_lane = cfg.head_dim / 32;
  if (elems_per_lane <= 0 || (cfg.rotary_dim / 2) % elems_per_lane != 0) return std::nullopt;
  const int64_t delta = (cfg.rotary_dim / 2) / elems_per_lane;
  if (is_power_of_two(delta)) return std::nullopt;
  return fmt::format(
      "{} computes NeoX rotary_dim {} with head_dim {} wrongly: the kernel takes each lane's "
      "rotation partner from lane l ^ {} (lane distance (rotary_dim/2)/(head_dim/32) = {} is not "
      "a power of two), not from lane l +- {} "
      "(fused_qk_norm_rope_cache_quant.cu @e4048607 lines 301-321)",
      fidelity_name(f), cfg.rotary_dim, cfg.head_dim, delta, delta, delta);
}

}  // namespace rcsim
