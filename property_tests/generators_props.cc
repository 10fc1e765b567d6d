// Goal: the generators every property relies on produce only valid, well-spread cases.
// Method: RapidCheck draws CallCases and checks the invariants the other suites assume (supported
// config, distinct in-range slots, trailing-only padding, in-range positions, the token cap,
// pair-symmetric weights really symmetric, random inputs really non-zero, sentinel-filled
// caches) and prints the classification table, so a generator change that starves a class shows.
#include <set>

#include "core/attention_config.h"
#include "property_tests/generators/call_case.h"
#include "property_tests/harness/prop_harness.h"

namespace rcsim::props {
namespace {

RCSIM_PROP(GeneratorProps, CallCasesAreValidAndClassified, ()) {
  const CallCase c = *gen_call_case();
  classify_case(c);
  // Boundary coverage, straight through RapidCheck's own macros: does the batch cross a page
  // boundary between consecutive tokens, and does it carry -1 padding?
  bool crosses_page = false;
  for (std::size_t i = 1; i < c.slots.size(); ++i) {
    const int64_t a = c.slots[i - 1], b = c.slots[i];
    if (a >= 0 && b == a + 1 && b % c.cfg.block_size == 0) crosses_page = true;
  }
  RC_CLASSIFY(crosses_page, "page_crossing=yes");
  RC_CLASSIFY(!crosses_page, "page_crossing=no");
  RC_CLASSIFY(c.mapped_tokens() < c.num_tokens, "padding=has-minus-1");
  RC_CLASSIFY(c.mapped_tokens() == c.num_tokens, "padding=none");
  validate_attention_config(c.cfg);  // throws InvalidInput (a failure) on an unsupported field
  const int64_t t = c.num_tokens;
  RC_ASSERT(t >= 1);
  RC_ASSERT(t <= budget().tokens_max);
  RC_ASSERT(static_cast<int64_t>(c.positions.size()) == t);
  RC_ASSERT(static_cast<int64_t>(c.slots.size()) == t);
  std::set<int64_t> seen;
  bool padding_started = false;
  for (int64_t i = 0; i < t; ++i) {
    const int64_t p = c.positions[static_cast<std::size_t>(i)];
    RC_ASSERT(p >= 0 && p < c.cfg.max_position);
    const int64_t s = c.slots[static_cast<std::size_t>(i)];
    if (s < 0) {
      RC_ASSERT(s == -1);
      padding_started = true;
      continue;
    }
    RC_ASSERT(!padding_started);  // ATOM pads only at the end
    RC_ASSERT(s < c.cfg.num_slots());
    RC_ASSERT(seen.insert(s).second);  // no two tokens share a slot
  }
  // At least one page stays free, so "untouched" memory exists in every case.
  RC_ASSERT(c.cfg.num_slots() - c.mapped_tokens() >= c.cfg.block_size);

  const CallTensors tensors = make_call_tensors(c);
  const auto w = tensors.q_weight.as<uint16_t>();
  if (c.weight_class == WeightClass::kPairSymmetric) {
    const int64_t half = c.cfg.rotary_dim / 2;
    for (int64_t d = 0; d < c.cfg.rotary_dim; ++d) {
      const int64_t partner = c.cfg.is_neox ? (d < half ? d + half : d - half) : (d ^ 1);
      RC_ASSERT(w[static_cast<std::size_t>(d)] == w[static_cast<std::size_t>(partner)]);
    }
  }
  if (c.input_class == InputClass::kRandomNonZero) {
    for (uint16_t bits : tensors.qkv.as<uint16_t>()) RC_ASSERT((bits & 0x7FFF) != 0);
  }
  for (const HostTensor* cache : {&tensors.k_cache, &tensors.v_cache}) {
    const std::byte* bytes = cache->data();
    for (int64_t i = 0; i < cache->bytes(); ++i) {
      RC_ASSERT(bytes[i] == std::byte{kCacheSentinelByte});
    }
  }
}

}  // namespace
}  // namespace rcsim::props
