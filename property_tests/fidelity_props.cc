// Goal (issue 15): RapidCheck FINDS, from random configurations, the two places where AITER as
// shipped computes something other than the math (core/fidelity.h), and SHRINKS each to a minimal
// case, as property 4 does for the order divergence:
//   item 1 - aiter-gfx942's fused kernel differs from the math for a NeoX partial rotary whose
//            lane distance (rotary_dim/2)/(head_dim/32) is not a power of two (XOR partners);
//   item 2 - under aiter-gfx942 the model-order fallback no longer equals the fused kernel (the
//            standalone rmsnorm truncates bf16).
// And the claims that must hold: the fused kernel of every mode equals the math wherever
// fidelity_miscomputes() says it does; on gfx950 (and in math) the model-order fallback equals the
// fused kernel's q/k bit for bit.
// Method: the generator of property_tests/generators draws the case; item 1 adds a rotary width
// k * 2 * (head_dim/32), k in [1, 16] (every width AITER's host check accepts), shrinking towards
// k = 1. Each side is built from the same seed on a fresh CPU backend of the mode under test.
// Negative tests: wrong models of AITER must be caught - a predicate that trusts AITER's host
// check, one that accepts every even lane distance, and a gfx950 fallback whose rmsnorm truncates.
#include <optional>

#include <fmt/format.h>

#include "core/fidelity.h"
#include "kernels/cpu/cpu_backend.h"
#include "property_tests/generators/call_case.h"
#include "property_tests/harness/prop_harness.h"
#include "property_tests/support/compare.h"
#include "property_tests/support/paths.h"

namespace rcsim::props {
namespace {

CallTensors run_fused_in(const CallCase& c, Fidelity f) {
  CallTensors t = make_call_tensors(c);
  cpu::CpuBackend backend(f);
  backend.kernels().fused->run(fused_args(t));
  return t;
}

CallTensors run_model_order_fallback_in(const CallCase& c, Fidelity f) {
  CallTensors t = make_call_tensors(c);
  cpu::CpuBackend backend(f);
  cpu::run_nonfused(backend.kernels(), FallbackOrder::kNormThenRope, nonfused_args(t));
  return t;
}

// ---- item 1 ----------------------------------------------------------------------------------

// Any rotary width AITER@HEAD's host check accepts for NeoX: (rot/2) % (D/32) == 0.
rc::Gen<CallCase> gen_any_partial_rotary_case() {
  return rc::gen::exec([] {
    CaseOptions o;
    o.allow_special_inputs = false;  // finite data: the partners' values must matter
    CallCase c = *gen_call_case(o);
    const int64_t lanes_elems = c.cfg.head_dim / 32;
    const int64_t k = *rc::gen::inRange<int64_t>(1, 17);  // lane distance; 16 = full rotary
    c.cfg.rotary_dim = 2 * lanes_elems * k;
    return c;
  });
}

using MiscomputePredicate = bool (*)(const AttentionConfig&);
bool predicate_of_core(const AttentionConfig& cfg) {
  return fidelity_miscomputes(cfg, Fidelity::kAiterGfx942).has_value();
}
// Wrong models, for the negative tests.
bool predicate_trusting_host_check(const AttentionConfig&) { return false; }
bool predicate_even_distance_is_fine(const AttentionConfig& cfg) {
  const int64_t delta = (cfg.rotary_dim / 2) / (cfg.head_dim / 32);
  return cfg.is_neox && delta % 2 != 0;
}

// Where the predicate says "computed right", the aiter-gfx942 fused q/k equal the math.
void check_fused_equals_math_unless_predicted(const CallCase& c, MiscomputePredicate predicted) {
  classify("neox", c.cfg.is_neox ? "yes" : "no");
  classify("lane_distance",
           std::to_string((c.cfg.rotary_dim / 2) / (c.cfg.head_dim / 32)));
  if (predicted(c.cfg)) return;
  const CallTensors math = run_fused_in(c, Fidelity::kMath);
  const CallTensors aiter = run_fused_in(c, Fidelity::kAiterGfx942);
  if (auto d = first_qkv_bit_difference(c.cfg, aiter.qkv, math.qkv)) {
    RC_FAIL("aiter-gfx942 fused q/k differ from the math where the predicate says they agree: " +
            *d);
  }
}

RCSIM_PROP(FidelityProps, Item1FusedEqualsMathWhereverFidelityMiscomputesSaysSo, ()) {
  check_fused_equals_math_unless_predicted(*gen_any_partial_rotary_case(), &predicate_of_core);
}

struct Found {
  std::optional<CallCase> first, last;
  std::string last_difference;
};
Found g_item1, g_item2;

void prop_item1_aiter_equals_math() {
  const CallCase c = *gen_any_partial_rotary_case();
  const CallTensors math = run_fused_in(c, Fidelity::kMath);
  const CallTensors aiter = run_fused_in(c, Fidelity::kAiterGfx942);
  if (auto d = first_qkv_bit_difference(c.cfg, aiter.qkv, math.qkv)) {
    if (!g_item1.first) g_item1.first = c;
    g_item1.last = c;
    g_item1.last_difference = *d;
    RC_FAIL("aiter-gfx942 fused q/k differ from the math: " + *d);
  }
}

TEST(FidelityProps, Item1XorPartnerDivergenceIsFoundAndShrunk) {
  g_item1 = {};
  RunOptions fresh;
  fresh.replay_regressions = false;
  const Outcome outcome =
      check("FidelityProps/Item1AiterGfx942FusedEqualsMath", &prop_item1_aiter_equals_math, fresh);
  std::cout << outcome.report;
  ASSERT_FALSE(outcome.passed) << "RapidCheck found no partial rotary where AITER's XOR partner "
                                  "differs from the math (issue 15, item 1 went unseen)";
  ASSERT_TRUE(g_item1.first && g_item1.last);
  const CallCase& s = *g_item1.last;
  std::cout << "first failing case: " << g_item1.first->describe() << "\nshrunk ("
            << outcome.shrink_steps << " steps): " << s.describe() << "\n  "
            << g_item1.last_difference << "\n";
  EXPECT_GT(outcome.shrink_steps, 0);
  EXPECT_EQ(s.num_tokens, 1);
  EXPECT_EQ(s.cfg.num_heads_q, 1);
  EXPECT_EQ(s.cfg.head_dim, 64);
  EXPECT_TRUE(s.cfg.is_neox);
  // The shrunk width is one the host check accepts and the predicate flags: the smallest lane
  // distance that is not a power of two is 3 (rotary_dim 12 at head_dim 64).
  EXPECT_TRUE(fidelity_miscomputes(s.cfg, Fidelity::kAiterGfx942).has_value());
  EXPECT_EQ(s.cfg.rotary_dim, 12);
}

// ---- item 2 ----------------------------------------------------------------------------------

CaseOptions item2_options() {
  CaseOptions o;
  o.allow_partial_rotary = false;  // keep item 1 out: this is about the rmsnorm's rounding
  return o;
}

void check_fallback_equals_fused(const CallCase& c, Fidelity fused_mode, Fidelity fallback_mode) {
  const CallTensors fused = run_fused_in(c, fused_mode);
  const CallTensors fallback = run_model_order_fallback_in(c, fallback_mode);
  if (auto d = first_qkv_bit_difference(c.cfg, fallback.qkv, fused.qkv)) {
    RC_FAIL(fmt::format("model-order fallback ({}) vs fused ({}): {}", fidelity_name(fallback_mode),
                        fidelity_name(fused_mode), *d));
  }
}

RCSIM_PROP(FidelityProps, Item2ModelOrderFallbackEqualsFusedOnGfx950, ()) {
  const CallCase c = *gen_call_case(item2_options());
  classify_case(c);
  check_fallback_equals_fused(c, Fidelity::kAiterGfx950, Fidelity::kAiterGfx950);
}

void prop_item2_gfx942_fallback_equals_fused() {
  const CallCase c = *gen_call_case(item2_options());
  const CallTensors fused = run_fused_in(c, Fidelity::kAiterGfx942);
  const CallTensors fallback = run_model_order_fallback_in(c, Fidelity::kAiterGfx942);
  if (auto d = first_qkv_bit_difference(c.cfg, fallback.qkv, fused.qkv)) {
    if (!g_item2.first) g_item2.first = c;
    g_item2.last = c;
    g_item2.last_difference = *d;
    RC_FAIL("aiter-gfx942 model-order fallback differs from the fused kernel: " + *d);
  }
}

TEST(FidelityProps, Item2Gfx942RmsNormTruncationIsFoundAndShrunk) {
  g_item2 = {};
  RunOptions fresh;
  fresh.replay_regressions = false;
  const Outcome outcome = check("FidelityProps/Item2Gfx942FallbackEqualsFused",
                                &prop_item2_gfx942_fallback_equals_fused, fresh);
  std::cout << outcome.report;
  ASSERT_FALSE(outcome.passed) << "RapidCheck found no case where gfx942's truncating rmsnorm "
                                  "makes the fallback differ (issue 15, item 2 went unseen)";
  ASSERT_TRUE(g_item2.first && g_item2.last);
  const CallCase& s = *g_item2.last;
  std::cout << "first failing case: " << g_item2.first->describe() << "\nshrunk ("
            << outcome.shrink_steps << " steps): " << s.describe() << "\n  "
            << g_item2.last_difference << "\n";
  EXPECT_GT(outcome.shrink_steps, 0);
  EXPECT_EQ(s.num_tokens, 1);
  EXPECT_EQ(s.cfg.num_heads_q, 1);
  EXPECT_EQ(s.cfg.head_dim, 64);
  EXPECT_EQ(s.cfg.act_dtype, DType::kBF16) << "fp16 output is rounded to nearest on every target";
}

// ---- negatives: wrong models of AITER must be caught -------------------------------------------

RunOptions negative_options() {
  RunOptions o;
  o.disable_shrinking = true;
  o.replay_regressions = false;
  o.quiet = true;
  return o;
}

TEST(FidelityPropsNegative, PredicateTrustingAitersHostCheckIsCaught) {
  const Outcome outcome = check(
      "FidelityProps/Item1Predicate[host-check]",
      [] { check_fused_equals_math_unless_predicted(*gen_any_partial_rotary_case(),
                                                    &predicate_trusting_host_check); },
      negative_options());
  expect_failed(outcome, "a predicate that trusts AITER's host check misses item 1");
}

TEST(FidelityPropsNegative, PredicateAcceptingEvenLaneDistancesIsCaught) {
  const Outcome outcome = check(
      "FidelityProps/Item1Predicate[even]",
      [] { check_fused_equals_math_unless_predicted(*gen_any_partial_rotary_case(),
                                                    &predicate_even_distance_is_fine); },
      negative_options());
  expect_failed(outcome, "lane distances 6, 10, 12, 14 are even and still wrong");
}

TEST(FidelityPropsNegative, Gfx950FallbackWithATruncatingRmsNormIsCaught) {
  const Outcome outcome = check(
      "FidelityProps/Item2Gfx950[truncating-rmsnorm]",
      [] {
        check_fallback_equals_fused(*gen_call_case(item2_options()), Fidelity::kAiterGfx950,
                                    Fidelity::kAiterGfx942);
      },
      negative_options());
  expect_failed(outcome, "a gfx950 build whose rmsnorm truncated would break fallback == fused");
}

}  // namespace
}  // namespace rcsim::props
