// Writes a case's .npy files and meta.json (case_outputs.h).
#include "fault_injection/cli/case_outputs.h"

#include <cstdint>
#include <fstream>
#include <span>

#include <fmt/format.h>

#include "core/check.h"
#include "core/io/npy.h"
#include "fault_injection/sim/attention_read.h"

namespace rcsim::cli {
namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;

json shape_json(const TensorView& v) {
  json s = json::array();
  for (int d = 0; d < v.rank; ++d) s.push_back(v.size(d));
  return s;
}

// One meta.json entry: what an outside reader needs to interpret the file without rcsim (the
// real dtype behind a uint8/uint16 .npy, and the memory layout).
json tensor_meta(const TensorView& v, std::string_view file, std::string_view layout) {
  return {{"file", file},
          {"dtype", dtype_name(v.dtype)},
          {"npy_descr", io::npy_descr(v.dtype)},
          {"shape", shape_json(v)},
          {"layout", layout}};
}

// The memory order the call wrote into v_cache (the tensor is always the 4-D label view unless a
// 5-D one was loaded): the fused kernel always shuffles; B follows the tensor's rank; C shuffles
// iff asm_layout = !use_triton_attn.
std::string v_layout_written(const DispatchRecord& r, bool ok, const LayerSpec& layer,
                             const TensorView& v_cache) {
  if (!ok) return "undefined (the call failed; partial writes possible)";
  switch (r.branch) {
    case Branch::kFused: return "shuffle [NB, Hkv, BS/x, D, x]";
    case Branch::kRopeCache:
      return v_cache.rank == 5 ? "shuffle [NB, Hkv, BS/x, D, x]" : "plain [NB, Hkv, D, BS]";
    case Branch::kNonFused:
      return layer.use_triton_attn() ? "plain [NB, Hkv, D, BS]" : "shuffle [NB, Hkv, BS/x, D, x]";
  }
  return "?";
}

// The fp8 cache of one side as attention reads it (sim::read_cache_element: the code decoded by
// numeric::fp8_bits_to_float, times its per-token scale), in the logical order [NB, Hkv, BS, D].
HostTensor dequantised_cache(const AttentionConfig& c, const KvCacheViews& cache, bool is_v,
                             VCacheLayout v_read) {
  HostTensor out(DType::kFP32, {c.num_blocks, c.num_heads_kv, c.block_size, c.head_dim});
  const std::span<float> dst = out.as<float>();
  const sim::CacheReadSpec spec{c, v_read};
  std::size_t i = 0;
  for (int64_t b = 0; b < c.num_blocks; ++b)
    for (int64_t h = 0; h < c.num_heads_kv; ++h)
      for (int64_t t = 0; t < c.block_size; ++t)
        for (int64_t d = 0; d < c.head_dim; ++d) {
          dst[i++] = sim::read_cache_element(spec, cache, is_v, b, h, t, d);
        }
  return out;
}

}  // namespace

// DIR/inputs/*.npy: every input as the call saw it; returns their meta.json entries.
json write_inputs(const fs::path& out_dir, const CaseTensors& inputs_as_given, const CaseSpec& s) {
  fs::create_directories(out_dir / "inputs");
  json inputs_meta = json::object();
  for (const auto& [name, t] : inputs_as_given.t) {
    io::write_npy(out_dir / "inputs" / (name + ".npy"), t.view());
    inputs_meta[name] = tensor_meta(t.view(), "inputs/" + name + ".npy",
                                    s.input_files.count(name) ? "loaded" : "generated");
  }
  return inputs_meta;
}

// DIR/*.npy: qkv, the caches (and scales for fp8), and q/k when the call returned; returns their
// meta.json entries.
// `emitted` receives each file's name and dtype (what --compare-to compares).
json write_outputs(const fs::path& out_dir, const CaseTensors& ct, const RopeCacheInputs& in,
                   const CallOutcome& call, const CaseSpec& s,
                   CaseOutputFiles& emitted) {
  json outputs = json::object();
  auto emit = [&](const std::string& name, const TensorView& v, std::string_view layout) {
    io::write_npy(out_dir / (name + ".npy"), v);
    outputs[name] = tensor_meta(v, name + ".npy", layout);
    emitted.emplace_back(name, v.dtype);
  };
  emit("qkv", ct.get("qkv")->view(), "[T, (Hq + 2*Hkv) * D], per token [Q heads | K heads | V heads]");
  emit("k_cache", in.cache.k_cache, "x-packed [NB, Hkv, D/x, BS, x]");
  emit("v_cache", in.cache.v_cache,
       v_layout_written(call.record, call.result.has_value(), s.layer, in.cache.v_cache));
  if (is_fp8(s.layer.attn.kv_cache_dtype)) {
    emit("k_scale", in.cache.k_scale, "per-token dequant scale [NB, Hkv, BS]");
    emit("v_scale", in.cache.v_scale, "per-token dequant scale [NB, Hkv, BS]");
    // What attention reads: every element decoded and scaled by rcsim itself, so an outside
    // model that decodes the codes above can check the fp8 decoder (independent_reference/).
    const AttentionConfig& c = s.layer.attn;
    const VCacheLayout v_read =
        s.layer.use_triton_attn() ? VCacheLayout::kPlain : VCacheLayout::kShuffle;
    for (const bool is_v : {false, true}) {
      const HostTensor dq = dequantised_cache(c, in.cache, is_v, v_read);
      emit(is_v ? "v_cache_dequant" : "k_cache_dequant", dq.view(),
           fmt::format("fp32 [NB, Hkv, BS, D]: each fp8 code decoded times its per-token scale, "
                       "read{} as attention reads it, sentinels included",
                       is_v ? (v_read == VCacheLayout::kPlain ? " plain" : " shuffle") : ""));
    }
  }
  if (call.result) {
    emit("q", call.result->q, "[T, Hq, D] as attention reads it");
    emit("k", call.result->k, "[T, Hkv, D] as attention reads it");
  }
  return outputs;
}

// DIR/meta.json: the real dtypes, shapes and layouts of every file, and the sentinels.
json meta_json(const CaseSpec& s, json outputs, json inputs_meta) {
  const AttentionConfig& c = s.layer.attn;
  return {{"config",
           {{"num_heads_q", c.num_heads_q},
            {"num_heads_kv", c.num_heads_kv},
            {"head_dim", c.head_dim},
            {"rotary_dim", c.rotary_dim},
            {"is_neox", c.is_neox},
            {"eps", c.eps},
            {"act_dtype", dtype_name(c.act_dtype)},
            {"kv_cache_dtype", kv_cache_dtype_name(c.kv_cache_dtype)},
            {"cache_storage_dtype", dtype_name(c.cache_storage_dtype())},
            {"x", c.x()},
            {"block_size", c.block_size},
            {"num_blocks", c.num_blocks},
            {"max_position", c.max_position},
            {"amax_floor", c.amax_floor},
            {"rope_theta", s.rope_theta},
            {"use_triton_attn", s.layer.use_triton_attn()}}},
          {"sentinels", {{"cache_byte", kCacheSentinelByte}, {"scale_byte", kScaleSentinelByte}}},
          {"outputs", std::move(outputs)},
          {"inputs", std::move(inputs_meta)}};
}

void write_json(const fs::path& path, const json& j) {
  std::ofstream out(path, std::ios::trunc);
  RCSIM_REQUIRE(out.good(), "{}: cannot create", path.string());
  out << j.dump(2) << "\n";
}

}  // namespace rcsim::cli
