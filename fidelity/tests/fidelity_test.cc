// Goal: each fidelity mode (core/fidelity.h) computes what its AITER source computes, and `math`
// still computes the spec. Item 1: the fused kernel's NeoX partial-rotary output under aiter-*
// equals an independent lane-by-lane model of AITER's kernel (32 lanes, __shfl_xor with inactive
// source lanes reading 0), under math the spec's partner d +- rot/2; Mar26 rejects partial rotary
// before writing. Item 2: the standalone rmsnorm truncates bf16 on gfx942 only. Items 4a-c: amax,
// scale and NaN encodings of the fp8 paths. prevalidate refuses item-1 configurations with the
// reason in the record and the log. `rcsim case --fidelity` writes both variants (the CLI path is
// the first argument).
// Method: random non-zero inputs (dispatch_fixture.h's LayerTensors, seeded by RCSIM_SEED), caches
// sentinel-filled, q/k compared bit for bit with the models; failures name (token, head, dim).
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "core/dispatch/tests/dispatch_fixture.h"
#include "core/fidelity.h"
#include "core/io/npy.h"
#include "kernels/common/numeric.h"
#include "kernels/common/qk_norm_rope_math.h"
#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/kernels.h"

namespace rcsim::testing {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using ::testing::HasSubstr;

std::string g_rcsim;

AttentionConfig partial_config(int64_t head_dim, int64_t rotary_dim,
                               KvCacheDtype kv = KvCacheDtype::kAuto) {
  AttentionConfig c = small_config(head_dim, kv);
  c.rotary_dim = rotary_dim;
  c.is_neox = true;
  return c;
}

float act(uint16_t b, DType t) { return activation_to_float(b, t); }

// The normalised, activation-rounded values of one head (step 2), from the raw inputs.
std::vector<float> normalised_head(const AttentionConfig& c, const LayerTensors& t, int64_t token,
                                   int64_t head, bool is_q) {
  const auto qkv = t.qkv.as<uint16_t>();
  const int64_t d_count = c.head_dim;
  std::vector<float> x(static_cast<std::size_t>(d_count));
  for (int64_t d = 0; d < d_count; ++d) {
    x[static_cast<std::size_t>(d)] =
        act(qkv[static_cast<std::size_t>(token * c.qkv_width() + head * d_count + d)], c.act_dtype);
  }
  const float rcp = qk_math::rms_inverse(qk_math::head_sum_squares(x.data(), static_cast<int>(d_count)),
                                         static_cast<int>(d_count), c.eps);
  const auto w = (is_q ? t.q_weight : t.k_weight).as<uint16_t>();
  for (int64_t d = 0; d < d_count; ++d) {
    const auto i = static_cast<std::size_t>(d);
    x[i] = act(float_to_activation((x[i] * rcp) * act(w[i], c.act_dtype), c.act_dtype), c.act_dtype);
  }
  return x;
}

// AITER@HEAD's NeoX RoPE step for one head, lane by lane: 32 lanes of n = D/32 elements; the lanes
// holding dims < rotary_dim execute the shuffle; lane l reads element i of lane l ^ delta, 0 if
// that lane did not execute it. `xor_partners` false gives the spec's partner lane l +- delta.
std::vector<uint16_t> rope_lane_model(const AttentionConfig& c, const std::vector<float>& y,
                                      const LayerTensors& t, int64_t token, bool xor_partners) {
  const int n = static_cast<int>(c.head_dim / 32);
  const int rot = static_cast<int>(c.rotary_dim), embed = rot / 2;
  const int delta = embed / n;
  const int64_t pos = t.positions.as<int64_t>()[static_cast<std::size_t>(token)];
  const auto cs = t.cos_sin.as<uint16_t>();
  std::vector<uint16_t> out(y.size());
  bool lane_executes[32];
  for (int lane = 0; lane < 32; ++lane) lane_executes[lane] = lane * n < rot;
  for (int lane = 0; lane < 32; ++lane) {
    for (int i = 0; i < n; ++i) {
      const int dim = lane * n + i;
      if (!lane_executes[lane]) {
        out[static_cast<std::size_t>(dim)] = float_to_activation(y[static_cast<std::size_t>(dim)], c.act_dtype);
        continue;
      }
      const int source = xor_partners ? (lane ^ delta) : (lane < delta ? lane + delta : lane - delta);
      float partner = lane_executes[source] ? y[static_cast<std::size_t>(source * n + i)] : 0.0f;
      if (dim < embed) partner = -partner;
      const int h = dim % embed;
      const float cos_v = act(cs[static_cast<std::size_t>(pos * rot + h)], c.act_dtype);
      const float sin_v = act(cs[static_cast<std::size_t>(pos * rot + embed + h)], c.act_dtype);
      const float a = y[static_cast<std::size_t>(dim)] * cos_v;
      const float b = partner * sin_v;
      out[static_cast<std::size_t>(dim)] = float_to_activation(a + b, c.act_dtype);
    }
  }
  return out;
}

// Compares the Q and K heads of `qkv_after` with the lane model; returns the number of mismatches
// and reports the first (token, head, dim).
int64_t check_qk_against_model(const AttentionConfig& c, const LayerTensors& in,
                               const HostTensor& qkv_after, bool xor_partners) {
  const auto got = qkv_after.as<uint16_t>();
  int64_t bad = 0;
  for (int64_t token = 0; token < in.tokens; ++token) {
    for (int64_t head = 0; head < c.num_heads_q + c.num_heads_kv; ++head) {
      const auto y = normalised_head(c, in, token, head, head < c.num_heads_q);
      const auto want = rope_lane_model(c, y, in, token, xor_partners);
      for (int64_t d = 0; d < c.head_dim; ++d) {
        const uint16_t g = got[static_cast<std::size_t>(token * c.qkv_width() + head * c.head_dim + d)];
        if (g == want[static_cast<std::size_t>(d)]) continue;
        if (bad++ == 0) {
          ADD_FAILURE() << "first mismatch at (token " << token << ", head " << head << ", dim "
                        << d << "): got " << act(g, c.act_dtype) << ", model "
                        << act(want[static_cast<std::size_t>(d)], c.act_dtype);
        }
      }
    }
  }
  return bad;
}

HostTensor run_fused(const AttentionConfig& c, const LayerTensors& t, Fidelity f,
                     LayerTensors* after = nullptr) {
  LayerTensors copy = t;
  RopeCacheInputs in = copy.inputs();
  FusedQkNormRopeCacheArgs a{c, in.qkv, in.q_weight, in.k_weight, in.cos_sin_cache, in.positions,
                             in.slot_mapping, in.cache, {}, {}, {}};
  cpu::CpuFusedQkNormRopeCache(f).run(a);
  if (after) *after = copy;
  return copy.qkv;
}

TEST(FidelityItem1, AiterModesRotateWithXorPartnersMathWithTheSpecsPartner) {
  struct Shape {
    int64_t d, rot;
    bool xor_is_wrong;  // delta = (rot/2)/(D/32) not a power of two
  };
  for (const Shape& s : {Shape{128, 96, true}, Shape{64, 48, true}, Shape{256, 192, true},
                         Shape{128, 64, false}, Shape{64, 32, false}}) {
    SCOPED_TRACE("D=" + std::to_string(s.d) + " rot=" + std::to_string(s.rot));
    const AttentionConfig c = partial_config(s.d, s.rot);
    const LayerTensors t(c, 1500 + static_cast<uint64_t>(s.d + s.rot), 4);
    const HostTensor math = run_fused(c, t, Fidelity::kMath);
    EXPECT_EQ(check_qk_against_model(c, t, math, false), 0) << "math must use partner d +- rot/2";
    for (Fidelity f : {Fidelity::kAiterGfx942, Fidelity::kAiterGfx950}) {
      const HostTensor aiter = run_fused(c, t, f);
      EXPECT_EQ(check_qk_against_model(c, t, aiter, true), 0) << fidelity_name(f);
      // The two differ exactly when the XOR partner is wrong, and the predicate says so.
      EXPECT_EQ(!math.bytes_equal(aiter), s.xor_is_wrong) << fidelity_name(f);
      EXPECT_EQ(fidelity_miscomputes(c, f).has_value(), s.xor_is_wrong) << fidelity_name(f);
    }
    EXPECT_FALSE(fidelity_miscomputes(c, Fidelity::kMath).has_value());
  }
}

TEST(FidelityItem1, Mar26RejectsPartialRotaryBeforeWriting) {
  const AttentionConfig c = partial_config(128, 96);
  const LayerTensors t(c, 1510, 4);
  for (Fidelity f : {Fidelity::kAiterGfx942Mar26, Fidelity::kAiterGfx950Mar26}) {
    LayerTensors copy = t;
    RopeCacheInputs in = copy.inputs();
    FusedQkNormRopeCacheArgs a{c, in.qkv, in.q_weight, in.k_weight, in.cos_sin_cache,
                               in.positions, in.slot_mapping, in.cache, {}, {}, {}};
    EXPECT_THROW(cpu::CpuFusedQkNormRopeCache(f).run(a), InvalidInput) << fidelity_name(f);
    EXPECT_TRUE(copy.qkv.bytes_equal(t.qkv));
    EXPECT_TRUE(copy.k_cache.bytes_equal(t.k_cache));
  }
}

// Item 2: per-head RMSNorm output, expected bits from an independent fp32 evaluation.
TEST(FidelityItem2, StandaloneRmsNormTruncatesBf16OnGfx942Only) {
  for (DType dt : {DType::kBF16, DType::kFP16}) {
    AttentionConfig c = small_config(128);
    c.act_dtype = dt;
    const LayerTensors t(c, 1520, 6);
    const QkvViews v = split_qkv(t.qkv.view(), c.num_heads_q, c.num_heads_kv, c.head_dim);
    int64_t truncated_differs = 0;
    for (Fidelity f : all_fidelities()) {
      HostTensor out(dt, {t.tokens, c.num_heads_q, c.head_dim});
      out.fill_pattern(0x5A);
      cpu::CpuRmsNorm(f).run({v.q, out.view(), t.q_weight.view(), c.eps, {}});
      const bool truncates = fidelity_switches(f).rmsnorm_bf16_truncates && dt == DType::kBF16;
      const auto got = out.as<uint16_t>();
      for (int64_t tok = 0; tok < t.tokens; ++tok) {
        for (int64_t h = 0; h < c.num_heads_q; ++h) {
          std::vector<float> x(static_cast<std::size_t>(c.head_dim));
          for (int64_t d = 0; d < c.head_dim; ++d) {
            x[static_cast<std::size_t>(d)] = act(
                t.qkv.as<uint16_t>()[static_cast<std::size_t>(tok * c.qkv_width() + h * c.head_dim + d)], dt);
          }
          const float rcp = qk_math::rms_inverse(qk_math::head_sum_squares(x.data(), 128), 128, c.eps);
          for (int64_t d = 0; d < c.head_dim; ++d) {
            const auto i = static_cast<std::size_t>(d);
            const float y = (x[i] * rcp) * act(t.q_weight.as<uint16_t>()[i], dt);
            uint32_t bits;
            std::memcpy(&bits, &y, 4);
            const uint16_t want = truncates ? static_cast<uint16_t>(bits >> 16) : float_to_activation(y, dt);
            const uint16_t g = got[static_cast<std::size_t>((tok * c.num_heads_q + h) * c.head_dim + d)];
            ASSERT_EQ(g, want) << fidelity_name(f) << " " << dtype_name(dt) << " (token " << tok
                               << ", head " << h << ", dim " << d << ")";
            truncated_differs += truncates && want != float_to_activation(y, dt);
          }
        }
      }
    }
    // Truncation must really differ from RNE on this data (about half the elements, twice).
    if (dt == DType::kBF16) {
      EXPECT_GT(truncated_differs, t.tokens * c.num_heads_q * c.head_dim / 2);
    } else {
      EXPECT_EQ(truncated_differs, 0);
    }
  }
}

// Item 4a: an all-NaN K head. Spec: amax 0 -> scale 0 (no floor); Mar26: amax NaN -> scale NaN;
// HEAD: fmaxf(NaN, 1e-8) -> the floor.
TEST(FidelityItem4, AllNanKHeadScalePerMode) {
  const AttentionConfig c = small_config(128, KvCacheDtype::kFp8E4M3FNUZ);
  LayerTensors t(c, 1530, 3);
  auto qkv = t.qkv.as<uint16_t>();
  const int64_t k_head0 = c.num_heads_q * c.head_dim;
  for (int64_t d = 0; d < c.head_dim; ++d) qkv[static_cast<std::size_t>(k_head0 + d)] = 0x7FC0;
  const int64_t slot = t.slot_mapping.as<int64_t>()[0];
  ASSERT_GE(slot, 0);
  const std::size_t scale_at = static_cast<std::size_t>(
      ((slot / c.block_size) * c.num_heads_kv + 0) * c.block_size + slot % c.block_size);
  auto scale_of = [&](Fidelity f) {
    LayerTensors after = t;
    run_fused(c, t, f, &after);
    return after.k_scale.as<float>()[scale_at];
  };
  EXPECT_EQ(scale_of(Fidelity::kMath), 0.0f);
  EXPECT_TRUE(std::isnan(scale_of(Fidelity::kAiterGfx942Mar26)));
  EXPECT_EQ(scale_of(Fidelity::kAiterGfx942), qk_math::kAmaxFloor / 240.0f);
}

// Items 4b and 4c: an all-zero head through reshape_and_cache_with_pertoken_quant.
TEST(FidelityItem4, PerTokenAllZeroHeadScaleAndCodesPerMode) {
  AttentionConfig c = small_config(128, KvCacheDtype::kFp8E4M3FN);
  c.amax_floor = true;
  const LayerTensors t(c, 1540, 3);
  HostTensor key(c.act_dtype, {t.tokens, c.num_heads_kv, c.head_dim});
  HostTensor value(c.act_dtype, {t.tokens, c.num_heads_kv, c.head_dim});
  for (uint16_t& e : value.as<uint16_t>()) e = float_to_activation(0.5f, c.act_dtype);
  for (uint16_t& e : key.as<uint16_t>()) e = 0;  // all-zero K heads
  struct Result {
    float scale;
    uint8_t code;
  };
  auto run = [&](Fidelity f) {
    LayerTensors copy = t;
    PerTokenQuantCacheArgs a;
    a.cfg = c;
    a.key = key.view();
    a.value = value.view();
    a.slot_mapping = copy.slot_mapping.view();
    a.cache = copy.inputs().cache;
    cpu::CpuPerTokenQuantCache(f).run(a);
    const int64_t slot = copy.slot_mapping.as<int64_t>()[0];
    const int64_t block = slot / c.block_size, in_block = slot % c.block_size;
    const float s = copy.k_scale.as<float>()[static_cast<std::size_t>(block * c.num_heads_kv * c.block_size + in_block)];
    // dim 0 of (block, head 0, token in block) in the x-packed K cache
    const uint8_t code = copy.k_cache.as<uint8_t>()[static_cast<std::size_t>(
        block * c.num_heads_kv * c.head_dim * c.block_size + in_block * c.x())];
    return Result{s, code};
  };
  const Result math = run(Fidelity::kMath);  // floored (config), codes 0
  EXPECT_EQ(math.scale, qk_math::kAmaxFloor / 448.0f);
  EXPECT_EQ(math.code, 0x00);
  const Result head = run(Fidelity::kAiterGfx950);  // unfloored scale, guarded reciprocal
  EXPECT_EQ(head.scale, 0.0f);
  EXPECT_EQ(head.code, 0x00);
  const Result mar26 = run(Fidelity::kAiterGfx950Mar26);  // 1/0 = inf, 0*inf = NaN on the device
  EXPECT_EQ(mar26.scale, 0.0f);
  EXPECT_EQ(mar26.code, 0x7F) << "the device's default NaN is positive: e4m3fn 0x7F";
}

TEST(FidelityPrevalidate, RefusesConfigurationsTheTargetComputesWronglyAndSaysWhy) {
  const AttentionConfig c = partial_config(128, 96);
  for (Fidelity f : {Fidelity::kAiterGfx942, Fidelity::kMath}) {
    LayerTensors t(c, 1550, 4);
    cpu::CpuBackend backend(f);
    DispatchProcess process;
    LayerSpec spec;
    spec.attn = c;
    spec.policy = FallbackPolicy::kPrevalidate;
    spec.fidelity = f;
    RopeCacheDispatcher dispatcher(spec, backend.kernels(), process);
    const RopeCacheResult r = dispatcher.rope_cache(t.inputs());
    EXPECT_TRUE(r.record.fused_skipped_by_policy);
    EXPECT_FALSE(r.record.fused_attempted);
    ASSERT_EQ(process.log_lines().size(), 1u);
    if (f == Fidelity::kMath) {
      EXPECT_THAT(process.log_lines()[0], ::testing::Not(HasSubstr("l ^ 12")));
    } else {
      EXPECT_THAT(process.log_lines()[0], HasSubstr("computes NeoX rotary_dim 96 with head_dim 128 wrongly"));
      EXPECT_THAT(process.log_lines()[0], HasSubstr("l ^ 12"));
    }
  }
}

// ---- rcsim case --fidelity -------------------------------------------------------------------

struct CliRun {
  int exit_code = -1;
  std::string output;
};
CliRun run_rcsim(const std::string& args) {
  const fs::path log = fs::temp_directory_path() / ("rcsim_fidelity_log_" + std::to_string(::getpid()));
  const std::string cmd = "'" + g_rcsim + "' " + args + " > '" + log.string() + "' 2>&1";
  const int status = std::system(cmd.c_str());
  CliRun r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  std::ifstream in(log);
  r.output.assign(std::istreambuf_iterator<char>(in), {});
  fs::remove(log);
  return r;
}

class FidelityCli : public ::testing::Test {
 protected:
  fs::path dir;
  void SetUp() override {
    ASSERT_FALSE(g_rcsim.empty()) << "usage: fidelity_test <path to rcsim>";
    dir = fs::temp_directory_path() /
          ("rcsim_fidelity_test_" + std::to_string(::getpid()) + "_" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir);
    fs::create_directories(dir);
    const json c = {{"config",
                     {{"num_heads_q", 2}, {"num_heads_kv", 1}, {"head_dim", 128},
                      {"rotary_dim", 96}, {"is_neox", true}, {"kv_cache_dtype", "auto"},
                      {"block_size", 16}, {"num_blocks", 2}, {"max_position", 64}}},
                    {"policy", "pr279"},
                    {"seed", 15},
                    {"tokens", 3}};
    std::ofstream(dir / "case.json") << c.dump(2);
  }
  void TearDown() override {
    if (!HasFailure()) fs::remove_all(dir);
  }
  // Rebuilds LayerTensors-like inputs from DIR/inputs so the lane model can run on them.
  LayerTensors inputs_of(const fs::path& out, const AttentionConfig& c) {
    LayerTensors t(c, 0, 3);
    t.qkv = io::read_npy(out / "inputs" / "qkv.npy", c.act_dtype);
    t.positions = io::read_npy(out / "inputs" / "positions.npy", DType::kI64);
    t.cos_sin = io::read_npy(out / "inputs" / "cos_sin_cache.npy", c.act_dtype);
    t.q_weight = io::read_npy(out / "inputs" / "q_weight.npy", c.act_dtype);
    t.k_weight = io::read_npy(out / "inputs" / "k_weight.npy", c.act_dtype);
    return t;
  }
};

TEST_F(FidelityCli, CaseWritesAitersXorPartnersUnderAiterAndTheMathUnderMath) {
  AttentionConfig c = partial_config(128, 96);
  c.num_heads_q = 2;
  c.num_heads_kv = 1;
  c.num_blocks = 2;
  c.max_position = 64;
  for (const std::string mode : {"math", "aiter-gfx942"}) {
    const fs::path out = dir / mode;
    const CliRun r = run_rcsim("case --in '" + (dir / "case.json").string() + "' --fidelity " +
                               mode + " --out '" + out.string() + "'");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    const json rec = json::parse(std::ifstream(out / "record.json"));
    EXPECT_EQ(rec["fidelity"], mode);
    EXPECT_EQ(rec["fidelity_source"], "--fidelity");
    EXPECT_EQ(rec["branch"], "A-fused");
    const LayerTensors in = inputs_of(out, c);
    const HostTensor qkv = io::read_npy(out / "qkv.npy", c.act_dtype);
    EXPECT_EQ(check_qk_against_model(c, in, qkv, mode != "math"), 0) << mode;
    if (mode == "math") {
      EXPECT_TRUE(rec["fidelity_miscomputes"].is_null());
    } else {
      EXPECT_THAT(rec["fidelity_miscomputes"].get<std::string>(), HasSubstr("l ^ 12"));
      EXPECT_THAT(r.output, HasSubstr("wrongly"));
      // Both runs started from the same generated inputs and wrote different q/k.
      const HostTensor math_qkv = io::read_npy(dir / "math" / "qkv.npy", c.act_dtype);
      EXPECT_FALSE(math_qkv.bytes_equal(qkv));
      EXPECT_TRUE(io::read_npy(dir / "math" / "inputs" / "qkv.npy", c.act_dtype)
                      .bytes_equal(io::read_npy(out / "inputs" / "qkv.npy", c.act_dtype)));
    }
  }
}

TEST_F(FidelityCli, CaseFileKeyIsRecordedAndABadModeWritesNothing) {
  json c = json::parse(std::ifstream(dir / "case.json"));
  c["fidelity"] = "aiter-gfx950";
  std::ofstream(dir / "case2.json") << c.dump(2);
  const CliRun ok = run_rcsim("case --in '" + (dir / "case2.json").string() + "' --out '" +
                              (dir / "out").string() + "'");
  ASSERT_EQ(ok.exit_code, 0) << ok.output;
  const json rec = json::parse(std::ifstream(dir / "out" / "record.json"));
  EXPECT_EQ(rec["fidelity"], "aiter-gfx950");
  EXPECT_EQ(rec["fidelity_source"], "case file");

  const CliRun bad = run_rcsim("case --in '" + (dir / "case.json").string() +
                               "' --fidelity aiter-gfx90a --out '" + (dir / "bad").string() + "'");
  EXPECT_EQ(bad.exit_code, 2);  // kExitUsage (fault_injection/cli/commands.h)
  EXPECT_THAT(bad.output, HasSubstr("--fidelity 'aiter-gfx90a' unknown"));
  EXPECT_FALSE(fs::exists(dir / "bad"));
  c["fidelity"] = "gfx942";
  std::ofstream(dir / "case3.json") << c.dump(2);
  const CliRun bad_file = run_rcsim("case --in '" + (dir / "case3.json").string() + "' --out '" +
                                    (dir / "bad2").string() + "'");
  EXPECT_EQ(bad_file.exit_code, 2);
  EXPECT_THAT(bad_file.output, HasSubstr("fidelity 'gfx942' unknown"));
  EXPECT_FALSE(fs::exists(dir / "bad2"));
}

}  // namespace
}  // namespace rcsim::testing

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  if (argc > 1) rcsim::testing::g_rcsim = argv[1];
  rcsim::testing::test_seed();
  return RUN_ALL_TESTS();
}
