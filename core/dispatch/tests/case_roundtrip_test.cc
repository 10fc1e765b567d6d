// Goal: `rcsim case` end to end. A case whose inputs are .npy files is run by the built binary;
// its outputs are read back and compared bit for bit with the CPU reference kernels called
// directly on the same inputs (branch A: the fused kernel; branch C after an injected
// "unavailable": rotary in place on qkv, q/k RMSNorm into new tensors, reshape_and_cache). Every
// input is written back under DIR/inputs exactly as given. Generated inputs replay from the seed.
// Bad case files exit 2 (usage / bad input) with a clear message and write nothing.
// Method: inputs from rcsim::Prng (non-zero), caches/scales sentinel-filled; the binary path is
// the first argument (CTest passes $<TARGET_FILE:rcsim>); outputs decoded with core/io.
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <functional>
#include <filesystem>
#include <fstream>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "core/dispatch/tests/dispatch_fixture.h"
#include "core/io/npy.h"
#include "kernels/cpu/kernels.h"

namespace rcsim::testing {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using ::testing::HasSubstr;

std::string g_rcsim;  // path of the rcsim binary

struct CliRun {
  int exit_code = -1;
  std::string output;
};

CliRun run_rcsim(const std::string& args) {
  const fs::path log = fs::temp_directory_path() / ("rcsim_case_log_" + std::to_string(::getpid()));
  const std::string cmd = "'" + g_rcsim + "' " + args + " > '" + log.string() + "' 2>&1";
  const int status = std::system(cmd.c_str());
  CliRun r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  std::ifstream in(log);
  r.output.assign(std::istreambuf_iterator<char>(in), {});
  fs::remove(log);
  return r;
}

class CaseRoundTrip : public ::testing::Test {
 protected:
  fs::path dir;
  void SetUp() override {
    ASSERT_FALSE(g_rcsim.empty()) << "usage: dispatch_case_roundtrip_test <path to rcsim>";
    dir = fs::temp_directory_path() /
          ("rcsim_case_test_" + std::to_string(::getpid()) + "_" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir);
    fs::create_directories(dir);
  }
  void TearDown() override {
    if (!HasFailure()) fs::remove_all(dir);
  }
  void write_case(const json& j, const std::string& name = "case.json") {
    std::ofstream(dir / name) << j.dump(2);
  }
  // Writes every input of `t` as .npy and returns the "inputs" object naming them.
  json write_inputs(const LayerTensors& t) {
    json in = json::object();
    auto put = [&](const std::string& name, const HostTensor& h) {
      if (h.empty()) return;
      io::write_npy(dir / (name + ".npy"), h.view());
      in[name] = name + ".npy";
    };
    put("qkv", t.qkv);
    put("positions", t.positions);
    put("slot_mapping", t.slot_mapping);
    put("cos_sin_cache", t.cos_sin);
    put("q_weight", t.q_weight);
    put("k_weight", t.k_weight);
    put("k_cache", t.k_cache);
    put("v_cache", t.v_cache);
    put("k_scale", t.k_scale);
    put("v_scale", t.v_scale);
    return in;
  }
  static json config_json(const AttentionConfig& c) {
    return {{"num_heads_q", c.num_heads_q},     {"num_heads_kv", c.num_heads_kv},
            {"head_dim", c.head_dim},           {"rotary_dim", c.rotary_dim},
            {"is_neox", c.is_neox},             {"eps", c.eps},
            {"act_dtype", dtype_name(c.act_dtype)},
            {"kv_cache_dtype", kv_cache_dtype_name(c.kv_cache_dtype)},
            {"block_size", c.block_size},       {"num_blocks", c.num_blocks},
            {"max_position", c.max_position}};
  }
  HostTensor output(const std::string& file, DType dtype) { return io::read_npy(dir / "out" / file, dtype); }
  json read_json(const std::string& file) {
    std::ifstream in(dir / "out" / file);
    return json::parse(in);
  }
  void expect_same(const std::string& file, const HostTensor& expected) {
    const HostTensor got = output(file, expected.dtype());
    EXPECT_EQ(got.shape(), expected.shape()) << file;
    const int64_t at = first_byte_difference(expected, got);
    EXPECT_EQ(at, -1) << file << " differs from the CPU reference at byte " << at;
  }
};

TEST_F(CaseRoundTrip, FusedFp8CaseFromNpyMatchesTheCpuKernelBitExact) {
  const AttentionConfig c = small_config(128, KvCacheDtype::kFp8E4M3FNUZ);
  const LayerTensors t(c, 301, 7);
  write_case({{"config", config_json(c)},
              {"policy", "pr279"},
              {"backend", "cpu"},
              {"seed", 7},
              {"inputs", write_inputs(t)}});
  const CliRun r = run_rcsim("case --in '" + (dir / "case.json").string() + "' --out '" +
                          (dir / "out").string() + "'");
  ASSERT_EQ(r.exit_code, 0) << r.output;

  // The reference: the CPU fused kernel on copies of the same inputs.
  LayerTensors want = t;
  RopeCacheInputs in = want.inputs();
  FusedQkNormRopeCacheArgs args{c,          in.qkv,          in.q_weight,    in.k_weight,
                                in.cos_sin_cache, in.positions, in.slot_mapping, in.cache,
                                {},         {},              {}};
  cpu::CpuFusedQkNormRopeCache().run(args);
  expect_same("qkv.npy", want.qkv);
  expect_same("k_cache.npy", want.k_cache);
  expect_same("v_cache.npy", want.v_cache);
  expect_same("k_scale.npy", want.k_scale);
  expect_same("v_scale.npy", want.v_scale);
  // q as attention reads it = the Q heads of the fused kernel's qkv.
  const QkvViews v = split_qkv(want.qkv.view(), c.num_heads_q, c.num_heads_kv, c.head_dim);
  HostTensor q(c.act_dtype, {t.tokens, c.num_heads_q, c.head_dim});
  copy_view(v.q, q.view());
  expect_same("q.npy", q);
  // The fused path really wrote the cache (not a no-op matching a no-op).
  EXPECT_FALSE(want.k_cache.bytes_equal(t.k_cache));

  const json rec = read_json("record.json");
  EXPECT_EQ(rec["branch"], "A-fused");
  EXPECT_EQ(rec["outcome"], "ok");
  EXPECT_EQ(rec["backup_taken"], true);
  EXPECT_TRUE(rec["log_lines"].empty());
  const json meta = read_json("meta.json");
  EXPECT_EQ(meta["outputs"]["k_cache"]["dtype"], "fp8_e4m3fnuz");
  EXPECT_EQ(meta["outputs"]["k_cache"]["npy_descr"], "|u1");
  EXPECT_EQ(meta["outputs"]["qkv"]["shape"], json({t.tokens, c.qkv_width()}));
  EXPECT_THAT(meta["outputs"]["v_cache"]["layout"].get<std::string>(), HasSubstr("shuffle"));
  // Every input is written back exactly as given.
  for (const auto& [name, h] : {std::pair<std::string, const HostTensor*>{"qkv", &t.qkv},
                                {"positions", &t.positions}, {"slot_mapping", &t.slot_mapping},
                                {"cos_sin_cache", &t.cos_sin}, {"k_cache", &t.k_cache},
                                {"k_scale", &t.k_scale}}) {
    EXPECT_TRUE(io::read_npy(dir / "out" / "inputs" / (name + ".npy"), h->dtype()).bytes_equal(*h))
        << name;
  }
}

TEST_F(CaseRoundTrip, UnavailableFallbackMatchesTheSeparateCpuKernelsInPrOrder) {
  const AttentionConfig c = small_config(128);
  const LayerTensors t(c, 302, 6);
  write_case({{"config", config_json(c)},
              {"policy", "pr279"},
              {"faults", "fused:unavailable"},
              {"seed", 8},
              {"inputs", write_inputs(t)}});
  const CliRun r = run_rcsim("case --in '" + (dir / "case.json").string() + "' --out '" +
                          (dir / "out").string() + "'");
  ASSERT_EQ(r.exit_code, 0) << r.output;

  // ATOM branch C, PR order, by the CPU kernels called one by one.
  LayerTensors want = t;
  const QkvViews v = split_qkv(want.qkv.view(), c.num_heads_q, c.num_heads_kv, c.head_dim);
  RotaryArgs rot;
  rot.q = v.q;
  rot.k = v.k;
  rot.positions = want.positions.view();
  rot.cos_sin_cache = want.cos_sin.view();
  rot.rotary_dim = c.rotary_dim;
  rot.is_neox = c.is_neox;
  cpu::CpuRotaryEmbedding().run(rot);
  HostTensor q(c.act_dtype, {t.tokens, c.num_heads_q, c.head_dim});
  HostTensor k(c.act_dtype, {t.tokens, c.num_heads_kv, c.head_dim});
  cpu::CpuRmsNorm().run({v.q, q.view(), want.q_weight.view(), c.eps, {}});
  cpu::CpuRmsNorm().run({v.k, k.view(), want.k_weight.view(), c.eps, {}});
  ReshapeAndCacheArgs cache;
  cache.cfg = c;
  cache.key = k.view();
  cache.value = v.v;
  cache.slot_mapping = want.slot_mapping.view();
  cache.cache = want.inputs().cache;
  cache.v_layout = VCacheLayout::kShuffle;  // asm_layout = !use_triton_attn (D = 128)
  cpu::CpuReshapeAndCache().run(cache);

  expect_same("qkv.npy", want.qkv);  // roped in place, not normalised (the norms made new tensors)
  expect_same("q.npy", q);
  expect_same("k.npy", k);
  expect_same("k_cache.npy", want.k_cache);
  expect_same("v_cache.npy", want.v_cache);
  EXPECT_FALSE(fs::exists(dir / "out" / "k_scale.npy"));  // "auto": no scales
  // The comparison bites: with the fallback order swapped (a mutant), q and k differ from the
  // reference (the norm weights are not pair-symmetric), while V's cache copy does not care.
  const CliRun mutated = run_rcsim("case --mutant fallback-order-swapped --in '" +
                                   (dir / "case.json").string() + "' --out '" +
                                   (dir / "mutated").string() + "'");
  ASSERT_EQ(mutated.exit_code, 0) << mutated.output;
  EXPECT_NE(first_byte_difference(q, io::read_npy(dir / "mutated" / "q.npy", c.act_dtype)), -1);
  EXPECT_NE(first_byte_difference(k, io::read_npy(dir / "mutated" / "k.npy", c.act_dtype)), -1);

  const json rec = read_json("record.json");
  EXPECT_EQ(rec["mutant"], "none");
  EXPECT_EQ(rec["branch"], "C-non-fused");
  EXPECT_EQ(rec["failure"], "unavailable");
  EXPECT_EQ(rec["failure_injected"], true);
  EXPECT_EQ(rec["restored"], true);
  ASSERT_EQ(rec["log_lines"].size(), 1u);
  EXPECT_THAT(rec["log_lines"][0].get<std::string>(), HasSubstr("[unavailable]"));
}

TEST_F(CaseRoundTrip, GeneratedInputsReplayFromTheSeedAndUseARealTrigTable) {
  json kase = {{"config", {{"num_heads_q", 4}, {"num_heads_kv", 2}, {"head_dim", 64},
                           {"max_position", 32}, {"num_blocks", 2}, {"rope_theta", 10000.0}}},
               {"policy", "sticky"},
               {"seed", 99},
               {"tokens", 3},
               {"padding_tokens", 1}};
  write_case(kase);
  const std::string in = "case --in '" + (dir / "case.json").string() + "' --out '";
  ASSERT_EQ(run_rcsim(in + (dir / "out").string() + "'").exit_code, 0);
  fs::rename(dir / "out", dir / "first");
  ASSERT_EQ(run_rcsim(in + (dir / "out").string() + "'").exit_code, 0);
  for (const char* f : {"qkv.npy", "k_cache.npy", "v_cache.npy", "q.npy", "k.npy",
                        "inputs/qkv.npy", "inputs/cos_sin_cache.npy", "inputs/slot_mapping.npy"}) {
    std::ifstream a(dir / "first" / f, std::ios::binary), b(dir / "out" / f, std::ios::binary);
    const std::string sa((std::istreambuf_iterator<char>(a)), {});
    const std::string sb((std::istreambuf_iterator<char>(b)), {});
    EXPECT_FALSE(sa.empty()) << f;
    EXPECT_EQ(sa, sb) << f << " differs between two runs of one seed";
  }
  const HostTensor qkv = io::read_npy(dir / "out" / "inputs" / "qkv.npy", DType::kBF16);
  for (uint16_t e : qkv.as<uint16_t>()) ASSERT_NE(e & 0x7FFF, 0) << "generated zero";
  const HostTensor slots = io::read_npy(dir / "out" / "inputs" / "slot_mapping.npy", DType::kI64);
  EXPECT_EQ(slots.as<int64_t>()[2], -1);
  const HostTensor cs = io::read_npy(dir / "out" / "inputs" / "cos_sin_cache.npy", DType::kBF16);
  ASSERT_EQ(cs.shape(), (std::vector<int64_t>{32, 64}));
  // Row p, pair j: cos/sin of p * 10000^(-2j/64), rounded to bf16 (tolerance: bf16 half-ulp of
  // the fp32 angle's cos, i.e. 2^-8 relative, plus fp32 angle error).
  for (int64_t p : {1, 17, 31}) {
    for (int64_t j : {0, 5, 31}) {
      const double angle = static_cast<double>(p) * std::pow(10000.0, -2.0 * static_cast<double>(j) / 64.0);
      const float got_cos = numeric::bf16_bits_to_float(cs.as<uint16_t>()[static_cast<std::size_t>(p * 64 + j)]);
      const float got_sin = numeric::bf16_bits_to_float(cs.as<uint16_t>()[static_cast<std::size_t>(p * 64 + 32 + j)]);
      EXPECT_NEAR(got_cos, std::cos(angle), 1e-5 + std::fabs(std::cos(angle)) / 256.0) << p << "," << j;
      EXPECT_NEAR(got_sin, std::sin(angle), 1e-5 + std::fabs(std::sin(angle)) / 256.0) << p << "," << j;
    }
  }
}

TEST_F(CaseRoundTrip, BadCaseFilesExitTwoAndWriteNothing) {
  const AttentionConfig c = small_config(128);
  const LayerTensors t(c, 303, 4);
  const json inputs = write_inputs(t);
  io::write_npy(dir / "qkv_f32.npy", HostTensor(DType::kFP32, {4, c.qkv_width()}).view());
  io::write_npy(dir / "qkv_narrow.npy", HostTensor(DType::kBF16, {4, 64}).view());
  io::write_npy(dir / "positions_long.npy", HostTensor(DType::kI64, {6}).view());
  const json good = {{"config", config_json(c)}, {"seed", 1}, {"inputs", inputs}};
  struct Bad {
    std::string name;
    std::string text;
    std::string expect;
  };
  auto with = [&](const std::function<void(json&)>& edit) {
    json j = good;
    edit(j);
    return j.dump();
  };
  const Bad cases[] = {
      {"not_json", "{\"config\": ", "invalid JSON"},
      {"unknown_key", with([](json& j) { j["polcy"] = "pr279"; }), "unknown key 'polcy'"},
      {"bad_policy", with([](json& j) { j["policy"] = "pr-279"; }), "policy 'pr-279' unknown"},
      {"bad_dtype", with([](json& j) { j["config"]["act_dtype"] = "fp32"; }), "bf16 or fp16"},
      {"bad_head_dim", with([](json& j) { j["config"]["head_dim"] = 96; }), "unsupported head_dim 96"},
      {"no_seed", with([](json& j) { j.erase("seed"); }), "'seed' is required"},
      {"bad_backend", with([](json& j) { j["backend"] = "hip"; }), "backend 'hip'"},
      {"bad_fault", with([](json& j) { j["faults"] = "fused:tron"; }), "unknown kind 'tron'"},
      {"missing_npy", with([](json& j) { j["inputs"]["qkv"] = "nope.npy"; }), "nope.npy"},
      {"npy_dtype", with([](json& j) { j["inputs"]["qkv"] = "qkv_f32.npy"; }), "'<f4' does not match"},
      {"npy_shape", with([](json& j) { j["inputs"]["qkv"] = "qkv_narrow.npy"; }), "qkv must be"},
      {"type", with([](json& j) { j["config"]["num_heads_q"] = "four"; }), "must be an integer"},
      {"padding", with([](json& j) { j["padding_tokens"] = 9; }), "padding_tokens 9"},
      // Issue 16: a longer positions array is named as such, not as a wrong qkv shape.
      {"positions_long", with([](json& j) { j["inputs"]["positions"] = "positions_long.npy"; }),
       "input 'positions' has 6 tokens, expected 4"},
  };
  for (const Bad& b : cases) {
    SCOPED_TRACE(b.name);
    std::ofstream(dir / (b.name + ".json")) << b.text;
    const fs::path out = dir / ("out_" + b.name);
    const CliRun r = run_rcsim("case --in '" + (dir / (b.name + ".json")).string() + "' --out '" +
                            out.string() + "'");
    EXPECT_EQ(r.exit_code, 2) << r.output;  // kExitUsage
    EXPECT_THAT(r.output, HasSubstr("rcsim case: error:"));
    EXPECT_THAT(r.output, HasSubstr(b.expect));
    EXPECT_FALSE(fs::exists(out)) << "a bad case wrote " << out;
  }
}

// The example case files keep doing what their descriptions promise.
TEST_F(CaseRoundTrip, ExampleCasesRunAsDescribed) {
  const fs::path examples = fs::path(RCSIM_SOURCE_DIR) / "examples" / "cases";
  struct Want {
    const char* file;
    const char* branch;
    const char* outcome;
  };
  for (const Want& w : {Want{"qwen3_fused_fp8.json", "A-fused", "ok"},
                        Want{"fused_unavailable_pr279.json", "C-non-fused", "ok"},
                        Want{"torn_write_model_order_triton.json", "C-non-fused", "ok"},
                        Want{"sticky_device_error.json", "C-non-fused", "dispatch_error"}}) {
    SCOPED_TRACE(w.file);
    fs::remove_all(dir / "out");
    const CliRun r = run_rcsim("case --in '" + (examples / w.file).string() + "' --out '" +
                            (dir / "out").string() + "'");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    const json rec = read_json("record.json");
    EXPECT_EQ(rec["outcome"], w.outcome);
    // The branch the dispatcher was on, as the console line says (issue 16: it was null on a
    // DispatchError); whether it completed is its own field.
    EXPECT_EQ(rec["branch"], w.branch);
    EXPECT_EQ(rec["branch_completed"], std::string(w.outcome) == "ok");
    EXPECT_LE(rec["log_lines"].size(), 1u);
  }
}

}  // namespace
}  // namespace rcsim::testing

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  if (argc > 1) rcsim::testing::g_rcsim = argv[1];
  std::printf("rcsim seed: %llu (repro: RCSIM_SEED=<seed> dispatch_case_roundtrip_test <rcsim>)\n",
              static_cast<unsigned long long>(rcsim::testing::test_seed()));
  return RUN_ALL_TESTS();
}
