// Goal: every kernel rejects bad input with InvalidInput before writing anything.
// Method: build a valid small layer (random non-zero inputs, sentinel caches), break exactly one
// thing per case (shape, stride, dtype, unsupported head dim / Hkv / block size, slot beyond the
// cache, position outside the table, missing fp8 scales, wrong weight or cos/sin dtype, bad
// WorkLimit, non-host view), snapshot every tensor the kernel may write, run, and require the
// exception AND byte-identical tensors. Bad slots/positions sit on the LAST token, so a kernel
// that validated lazily would already have written the earlier ones.
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/kernels.h"
#include "kernels/cpu/nonfused_reference.h"
#include "kernels/cpu/tests/test_support.h"

namespace rcsim::cpu {
namespace {

AttentionConfig small_config(KvCacheDtype kv) {
  return test_support::small_config(
      {.head_dim = 64, .kv = kv, .num_blocks = 4, .max_position = 64});
}

testing::Layer small_layer(KvCacheDtype kv, int salt, bool plain_v = false) {
  Prng rng = Prng::stream(testing::test_seed(), "validation", salt);
  testing::LayerOptions opt;
  opt.tokens = 6;
  opt.padded_one_in = 0;  // every token cached: the most to (wrongly) write
  opt.plain_v = plain_v;
  return testing::make_layer(small_config(kv), rng, opt);
}

// Runs `call`, requires InvalidInput, and requires every tensor in `watched` to be unchanged.
void expect_rejected(const std::string& what, const std::function<void()>& call,
                     const std::vector<const HostTensor*>& watched) {
  std::vector<HostTensor> before;
  for (const HostTensor* t : watched) before.push_back(*t);
  bool thrown = false;
  try {
    call();
  } catch (const InvalidInput& e) {
    thrown = true;
    EXPECT_GT(std::string(e.what()).size(), 10u) << what << ": message too terse";
    std::printf("rejected %-36s -> %s\n", what.c_str(), e.what());
  }
  EXPECT_TRUE(thrown) << what << ": no InvalidInput " << testing::repro_line();
  for (std::size_t i = 0; i < watched.size(); ++i) {
    const auto bad = testing::first_byte_mismatch(*watched[i], before[i]);
    EXPECT_FALSE(bad.has_value()) << what << ": tensor " << i << " changed at byte "
                                  << bad.value_or(-1) << " " << testing::repro_line();
  }
}

std::vector<const HostTensor*> outputs_of(const testing::Layer& l) {
  std::vector<const HostTensor*> out = {&l.qkv, &l.k_cache, &l.v_cache};
  if (!l.k_scale.empty()) out.push_back(&l.k_scale);
  if (!l.v_scale.empty()) out.push_back(&l.v_scale);
  return out;
}

void set_last(HostTensor& t, int64_t v) { t.as<int64_t>()[t.as<int64_t>().size() - 1] = v; }

using FusedEdit = std::function<void(testing::Layer&, FusedQkNormRopeCacheArgs&)>;

TEST(Validation, FusedRejectsBadInputWritingNothing) {
  struct Case {
    const char* what;
    FusedEdit edit;
  };
  HostTensor q_out_small(DType::kBF16, {6, 3, 64});
  const Case cases[] = {
      {"qkv width", [](auto&, auto& a) { a.qkv.shape[1] -= 64; a.qkv.strides[0] -= 64; }},
      {"qkv non-contiguous", [](auto&, auto& a) { a.qkv.shape[0] -= 1; a.qkv.strides[0] += 64; a.qkv.shape[1] = a.cfg.qkv_width(); }},
      {"head_dim 96", [](auto&, auto& a) { a.cfg.head_dim = 96; a.cfg.rotary_dim = 96; }},
      {"num_heads_kv 3", [](auto&, auto& a) { a.cfg.num_heads_kv = 3; }},
      {"block_size 8", [](auto&, auto& a) { a.cfg.block_size = 8; }},
      {"slot == num_slots", [](auto& l, auto&) { set_last(l.slots, l.cfg.num_slots()); }},
      {"position == max_position", [](auto& l, auto&) { set_last(l.positions, l.cfg.max_position); }},
      {"negative position", [](auto& l, auto&) { set_last(l.positions, -1); }},
      {"missing k_scale", [](auto&, auto& a) { a.cache.k_scale = TensorView{}; }},
      {"missing v_scale", [](auto&, auto& a) { a.cache.v_scale = TensorView{}; }},
      {"k_scale dtype", [](auto&, auto& a) { a.cache.k_scale.dtype = DType::kFP16; }},
      {"q_weight dtype", [](auto&, auto& a) { a.q_weight.dtype = DType::kFP16; }},
      {"k_weight length", [](auto&, auto& a) { a.k_weight.shape[0] = 32; }},
      {"cos_sin dtype", [](auto&, auto& a) { a.cos_sin_cache.dtype = DType::kFP16; }},
      {"cos_sin rows", [](auto&, auto& a) { a.cos_sin_cache.shape[0] -= 1; }},
      {"cos_sin width", [](auto&, auto& a) { a.cos_sin_cache.shape[1] = 32; a.cos_sin_cache.strides[0] = 32; }},
      {"positions dtype", [](auto&, auto& a) { a.positions.dtype = DType::kFP32; }},
      {"slot_mapping length", [](auto&, auto& a) { a.slot_mapping.shape[0] -= 1; }},
      {"k_cache shape", [](auto&, auto& a) { a.cache.k_cache.shape[3] = 8; }},
      {"k_cache dtype", [](auto&, auto& a) { a.cache.k_cache.dtype = DType::kBF16; }},
      {"v_cache non-contiguous", [](auto&, auto& a) { a.cache.v_cache.strides[0] += 1; }},
      {"q_out shape", [&](auto&, auto& a) { a.q_out = q_out_small.view(); }},
      {"work limit -5", [](auto&, auto& a) { a.limit.max_units = -5; }},
      {"qkv on gpu", [](auto&, auto& a) { a.qkv.device = DeviceTag::kGpu; }},
      {"weight on gpu", [](auto&, auto& a) { a.q_weight.device = DeviceTag::kGpu; }},
  };
  int salt = 0;
  for (const Case& c : cases) {
    testing::Layer l = small_layer(KvCacheDtype::kFp8E4M3FN, salt++);
    FusedQkNormRopeCacheArgs a = l.fused_args();
    c.edit(l, a);
    CpuFusedQkNormRopeCache k;
    std::vector<const HostTensor*> watched = outputs_of(l);
    watched.push_back(&q_out_small);
    expect_rejected(std::string("fused: ") + c.what, [&] { k.run(a); }, watched);
  }
  // The unbroken layer runs (the cases above fail for their one reason only).
  testing::Layer l = small_layer(KvCacheDtype::kFp8E4M3FN, 999);
  CpuFusedQkNormRopeCache k;
  EXPECT_NO_THROW(k.run(l.fused_args()));
}

TEST(Validation, SeparateKernelsRejectBadInputWritingNothing) {
  testing::Layer l = small_layer(KvCacheDtype::kAuto, 1);
  const QkvViews v = l.qkv_views();
  const std::vector<const HostTensor*> watched = outputs_of(l);

  CpuRmsNorm rms;
  auto rms_args = [&] {
    RmsNormArgs a;
    a.input = a.output = v.q;
    a.weight = l.q_weight.view();
    return a;
  };
  EXPECT_NO_THROW({ RmsNormArgs a = rms_args(); a.limit.max_units = 0; rms.run(a); });
  expect_rejected("rms_norm weight dtype", [&] { auto a = rms_args(); a.weight.dtype = DType::kFP16; rms.run(a); }, watched);
  expect_rejected("rms_norm output shape", [&] { auto a = rms_args(); a.output = v.k; rms.run(a); }, watched);
  expect_rejected("rms_norm head_dim 32", [&] { auto a = rms_args(); a.input.shape[2] = a.output.shape[2] = 32; a.weight.shape[0] = 32; rms.run(a); }, watched);
  expect_rejected("rms_norm eps 0", [&] { auto a = rms_args(); a.eps = 0.0f; rms.run(a); }, watched);

  CpuRotaryEmbedding rot;
  auto rot_args = [&] {
    RotaryArgs a;
    a.q = v.q;
    a.k = v.k;
    a.positions = l.positions.view();
    a.cos_sin_cache = l.cos_sin.view();
    a.rotary_dim = 64;
    return a;
  };
  expect_rejected("rotary position beyond", [&] { testing::Layer m = l; set_last(m.positions, 64); auto a = rot_args(); a.positions = m.positions.view(); rot.run(a); }, watched);
  expect_rejected("rotary cos_sin dtype", [&] { auto a = rot_args(); a.cos_sin_cache.dtype = DType::kFP16; rot.run(a); }, watched);
  expect_rejected("rotary odd rotary_dim", [&] { auto a = rot_args(); a.rotary_dim = 63; rot.run(a); }, watched);
  expect_rejected("rotary rotary_dim > D", [&] { auto a = rot_args(); a.rotary_dim = 128; rot.run(a); }, watched);
  expect_rejected("rotary cache width != rotary_dim", [&] { auto a = rot_args(); a.rotary_dim = 32; rot.run(a); }, watched);
  expect_rejected("rotary k head_dim", [&] { auto a = rot_args(); a.k.shape[2] = 32; rot.run(a); }, watched);

  CpuReshapeAndCache rc;
  auto rc_args = [&](const testing::Layer& m) {
    ReshapeAndCacheArgs a;
    a.cfg = m.cfg;
    a.key = v.k;
    a.value = v.v;
    a.slot_mapping = m.slots.view();
    a.cache = m.cache();
    a.v_layout = VCacheLayout::kShuffle;
    return a;
  };
  expect_rejected("reshape slot beyond", [&] { testing::Layer m = l; set_last(m.slots, m.cfg.num_slots()); auto a = rc_args(m); a.cache = l.cache(); rc.run(a); }, watched);
  expect_rejected("reshape plain layout on 5-D v_cache", [&] { auto a = rc_args(l); a.v_layout = VCacheLayout::kPlain; rc.run(a); }, watched);
  expect_rejected("reshape key dtype", [&] { auto a = rc_args(l); a.key.dtype = DType::kFP16; rc.run(a); }, watched);

  testing::Layer f = small_layer(KvCacheDtype::kFp8E4M3FNUZ, 2);
  const QkvViews fv = f.qkv_views();
  const std::vector<const HostTensor*> fwatched = outputs_of(f);
  auto rc8 = [&] {
    ReshapeAndCacheArgs a;
    a.cfg = f.cfg;
    a.key = fv.k;
    a.value = fv.v;
    a.slot_mapping = f.slots.view();
    a.cache = f.cache();
    return a;
  };
  expect_rejected("reshape fp8 zero scale", [&] { auto a = rc8(); a.k_scale = 0.0f; rc.run(a); }, fwatched);
  expect_rejected("reshape fp8 nan scale", [&] { auto a = rc8(); a.v_scale = std::nanf(""); rc.run(a); }, fwatched);

  CpuPerTokenQuantCache pt;
  auto pt_args = [&] {
    PerTokenQuantCacheArgs a;
    a.cfg = f.cfg;
    a.key = fv.k;
    a.value = fv.v;
    a.slot_mapping = f.slots.view();
    a.cache = f.cache();
    return a;
  };
  expect_rejected("per-token missing v_scale", [&] { auto a = pt_args(); a.cache.v_scale = TensorView{}; pt.run(a); }, fwatched);
  expect_rejected("per-token auto cache", [&] { auto a = pt_args(); a.cfg.kv_cache_dtype = KvCacheDtype::kAuto; pt.run(a); }, fwatched);
  expect_rejected("per-token slot beyond", [&] { testing::Layer m = f; set_last(m.slots, 64); auto a = pt_args(); a.slot_mapping = m.slots.view(); pt.run(a); }, fwatched);

  CpuRopeReshapeCache rb;
  auto rb_args = [&] {
    RopeReshapeCacheArgs a;
    a.cfg = f.cfg;
    a.q = fv.q;
    a.k = fv.k;
    a.v = fv.v;
    a.cos_sin_cache = f.cos_sin.view();
    a.positions = f.positions.view();
    a.slot_mapping = f.slots.view();
    a.cache = f.cache();
    a.v_layout = VCacheLayout::kShuffle;
    a.apply_scale = true;
    return a;
  };
  EXPECT_NO_THROW({ auto a = rb_args(); a.limit.max_units = 0; rb.run(a); });
  expect_rejected("branch B apply_scale off for fp8", [&] { auto a = rb_args(); a.apply_scale = false; rb.run(a); }, fwatched);
  expect_rejected("branch B negative scale", [&] { auto a = rb_args(); a.k_scale_static = -1.0f; rb.run(a); }, fwatched);
  expect_rejected("branch B position beyond", [&] { testing::Layer m = f; set_last(m.positions, 64); auto a = rb_args(); a.positions = m.positions.view(); rb.run(a); }, fwatched);
  expect_rejected("branch B slot beyond", [&] { testing::Layer m = f; set_last(m.slots, 64); auto a = rb_args(); a.slot_mapping = m.slots.view(); rb.run(a); }, fwatched);

  CpuBackend backend;
  expect_rejected("non-fused missing scales", [&] { NonFusedArgs a = f.nonfused_args(); a.cache.k_scale = TensorView{}; run_nonfused(backend.kernels(), FallbackOrder::kRopeThenNorm, a); }, fwatched);
  expect_rejected("non-fused slot beyond", [&] { testing::Layer m = f; set_last(m.slots, 64); NonFusedArgs a = f.nonfused_args(); a.slot_mapping = m.slots.view(); run_nonfused(backend.kernels(), FallbackOrder::kNormThenRope, a); }, fwatched);

  HostMemoryBackend mem;
  expect_rejected("copy shape mismatch", [&] { mem.copy(v.q, l.qkv.view()); }, watched);
  expect_rejected("copy dtype mismatch", [&] { TensorView d = v.k; d.dtype = DType::kFP16; mem.copy(v.v, d); }, watched);
}

}  // namespace
}  // namespace rcsim::cpu
