// rcsim's reference kernels for Python (_rcsim.<kernel>), with AITER's argument order. The
// Python-facing signatures and docs live in python/rcsim/kernels.py; these functions take the
// same arguments plus three for tests and injectors:
//   fault_spec, fault_seed: run the kernel through rcsim's C++ fault decorator
//     (fakes/faults/faulty_kernels.h) with that plan and seed, exactly as the simulator does;
//   max_units: the kernel's WorkLimit (-1 = all; 0 validates, writes nothing and returns N).
// Each returns (units_total, units_completed). Bad input raises ValueError before a byte is
// written (the kernels validate everything first); kernel failures raise rcsim.errors types.
//
// Host tensors run on the CPU reference backend; device tensors on the GPU backend when the
// module is built with it (RCSIM_PYTHON_GPU), else they are a ValueError.
#include <fmt/format.h>
#include <pybind11/pybind11.h>

#include <memory>
#include <optional>
#include <string>

#include "core/attention_config.h"
#include "core/kernel_interfaces.h"
#include "fakes/faults/faulty_kernels.h"
#include "fault_injection/plan/fault_plan.h"
#include "kernels/cpu/cpu_backend.h"
#include "python/bindings/bindings.h"
#include "python/bindings/tensor_bridge.h"
#if RCSIM_PYTHON_GPU
#include "kernels/hip/gpu_backend.h"
#endif

namespace py = pybind11;

namespace rcsim::python {
namespace {

using Tensor = BorrowedTensor;

// One backend per device kind for the life of the process (kernels are stateless on the CPU;
// the GPU backend owns its device state).
KernelSet backend_kernels(DeviceTag device) {
  if (device == DeviceTag::kHost) {
    static cpu::CpuBackend cpu_backend;
    return cpu_backend.kernels();
  }
#if RCSIM_PYTHON_GPU
  // Never destroyed: at interpreter exit PyTorch may already have torn the CUDA context down.
  static gpu::GpuBackend* gpu_backend = new gpu::GpuBackend();
  return gpu_backend->kernels();
#else
  throw py::value_error(
      "a CUDA/ROCm tensor was passed, but this rcsim module was built without the GPU backend "
      "(configure with the cuda or hip-amd preset)");
#endif
}

// All present tensors of one call must live on one device.
DeviceTag common_device(std::initializer_list<const Tensor*> tensors) {
  std::optional<DeviceTag> device;
  for (const Tensor* t : tensors) {
    if (!t->present()) continue;
    if (device && *device != t->view().device) {
      throw py::value_error("tensors of one call are on different devices (host and GPU)");
    }
    device = t->view().device;
  }
  return device.value_or(DeviceTag::kHost);
}

// The kernels to call: the backend's, or the backend's wrapped in rcsim's C++ fault decorator.
class KernelChoice {
 public:
  KernelChoice(DeviceTag device, const std::string& fault_spec, uint64_t fault_seed) {
    KernelSet base = backend_kernels(device);
    if (fault_spec.empty()) {
      kernels_ = base;
      return;
    }
    faulty_ = std::make_unique<FaultyKernelSet>(base, parse_fault_plan(fault_spec), fault_seed);
    kernels_ = faulty_->kernels();
  }
  const KernelSet& kernels() const { return kernels_; }

 private:
  std::unique_ptr<FaultyKernelSet> faulty_;
  KernelSet kernels_;
};

KvCacheDtype kv_dtype_from(const std::string& name) {
  const auto k = kv_cache_dtype_from_name(name);
  if (!k) {
    throw py::value_error(
        fmt::format("kv_cache_dtype '{}' is not one of auto, fp8_e4m3fn, fp8_e4m3fnuz", name));
  }
  return *k;
}
std::optional<DType> fp8_of(KvCacheDtype k) {
  if (k == KvCacheDtype::kFp8E4M3FN) return DType::kFP8E4M3FN;
  if (k == KvCacheDtype::kFp8E4M3FNUZ) return DType::kFP8E4M3FNUZ;
  return std::nullopt;
}

void require_rank(const Tensor& t, int rank, const char* name, const char* shape) {
  if (!t.present() || t.view().rank != rank) {
    throw py::value_error(fmt::format("{} must be {}-D {}", name, rank, shape));
  }
}

// A [M, H*D] view seen as [M, H, D] (or [M, D] as [M, 1, D]) without copying; rank-3 unchanged.
TensorView as_heads(const TensorView& v, int64_t head_dim, const char* name) {
  if (v.is_null() || v.rank == 3) return v;
  if (v.rank != 2 || head_dim <= 0 || v.shape[1] % head_dim != 0 || v.strides[1] != 1) {
    throw py::value_error(fmt::format(
        "{} must be [T, H, D] or a [T, H*D] view with unit last stride: {}", name, v.describe()));
  }
  TensorView out = v;
  out.rank = 3;
  out.shape = {v.shape[0], v.shape[1] / head_dim, head_dim};
  out.strides = {v.strides[0], head_dim, 1};
  return out;
}

WorkLimit limit_of(int64_t max_units) {
  if (max_units < WorkLimit::kUnlimited) {
    throw py::value_error(fmt::format("max_units {} must be -1 (all) or >= 0", max_units));
  }
  return WorkLimit{max_units};
}

// Runs a kernel with the GIL released (the caller's tensors stay borrowed meanwhile) and returns
// (units_total, units_completed) once it is held again.
template <typename Run>
py::tuple run_without_gil(Run&& run) {
  KernelRun r;
  {
    py::gil_scoped_release release;
    r = run();
  }
  return py::make_tuple(r.units_total, r.units_completed);
}

py::tuple fused_qk_norm_rope_cache_quant_shuffle(
    py::handle qkv, int64_t num_heads_q, int64_t num_heads_k, int64_t num_heads_v, int64_t head_dim,
    float eps, py::handle qw, py::handle kw, py::handle cos_sin_cache, bool is_neox_style,
    py::handle pos_ids, py::handle k_cache, py::handle v_cache, py::handle slot_mapping,
    const std::string& kv_cache_dtype, py::handle k_scale, py::handle v_scale,
    const std::string& fault_spec, uint64_t fault_seed, int64_t max_units) {
  if (num_heads_v != num_heads_k) {
    throw py::value_error(
        fmt::format("num_heads_v {} must equal num_heads_k {}", num_heads_v, num_heads_k));
  }
  const KvCacheDtype kv = kv_dtype_from(kv_cache_dtype);
  Tensor t_qkv = Tensor::borrow(qkv, "qkv", std::nullopt, true);
  Tensor t_qw = Tensor::borrow(qw, "qw"), t_kw = Tensor::borrow(kw, "kw");
  Tensor t_cs = Tensor::borrow(cos_sin_cache, "cos_sin_cache");
  Tensor t_pos = Tensor::borrow(pos_ids, "pos_ids");
  Tensor t_kc = Tensor::borrow(k_cache, "k_cache", fp8_of(kv), true);
  Tensor t_vc = Tensor::borrow(v_cache, "v_cache", fp8_of(kv), true);
  Tensor t_slots = Tensor::borrow(slot_mapping, "slot_mapping");
  Tensor t_ks = Tensor::borrow_optional(k_scale, "k_scale", std::nullopt, true);
  Tensor t_vs = Tensor::borrow_optional(v_scale, "v_scale", std::nullopt, true);
  require_rank(t_kc, 5, "k_cache", "[NB, Hkv, D/x, BS, x]");
  require_rank(t_cs, 2, "cos_sin_cache", "[max_pos, rotary_dim]");
  AttentionConfig cfg;
  cfg.num_heads_q = num_heads_q;
  cfg.num_heads_kv = num_heads_k;
  cfg.head_dim = head_dim;
  cfg.rotary_dim = t_cs.view().shape[1];
  cfg.is_neox = is_neox_style;
  cfg.eps = eps;
  cfg.act_dtype = t_qkv.view().dtype;
  cfg.kv_cache_dtype = kv;
  cfg.block_size = t_kc.view().shape[3];
  cfg.num_blocks = t_kc.view().shape[0];
  cfg.max_position = t_cs.view().shape[0];
  validate_attention_config(cfg);
  FusedQkNormRopeCacheArgs a;
  a.cfg = cfg;
  a.qkv = t_qkv.view();
  a.q_weight = t_qw.view();
  a.k_weight = t_kw.view();
  a.cos_sin_cache = t_cs.view();
  a.positions = t_pos.view();
  a.slot_mapping = t_slots.view();
  a.cache = {t_kc.view(), t_vc.view(), t_ks.view(), t_vs.view()};
  a.limit = limit_of(max_units);
  const DeviceTag device =
      common_device({&t_qkv, &t_qw, &t_kw, &t_cs, &t_pos, &t_kc, &t_vc, &t_slots, &t_ks, &t_vs});
  KernelChoice choice(device, fault_spec, fault_seed);
  return run_without_gil([&] { return choice.kernels().fused->run(a); });
}

py::tuple qk_rope_reshape_and_cache(py::handle q, py::handle k, py::handle v, py::handle k_cache,
                                    py::handle v_cache, py::handle slot_mapping,
                                    py::handle positions, py::handle cos_sin_cache, float k_scale,
                                    float v_scale, bool is_neox, bool flash_layout,
                                    bool apply_scale, const std::string& kv_cache_dtype,
                                    const std::string& fault_spec, uint64_t fault_seed,
                                    int64_t max_units) {
  if (flash_layout) throw py::value_error("flash_layout=True is not modelled by rcsim");
  const KvCacheDtype kv = kv_dtype_from(kv_cache_dtype);
  Tensor t_q = Tensor::borrow(q, "q", std::nullopt, true);
  Tensor t_k = Tensor::borrow(k, "k", std::nullopt, true);
  Tensor t_v = Tensor::borrow(v, "v");
  Tensor t_kc = Tensor::borrow(k_cache, "k_cache", fp8_of(kv), true);
  Tensor t_vc = Tensor::borrow(v_cache, "v_cache", fp8_of(kv), true);
  Tensor t_slots = Tensor::borrow(slot_mapping, "slot_mapping");
  Tensor t_pos = Tensor::borrow(positions, "positions");
  Tensor t_cs = Tensor::borrow(cos_sin_cache, "cos_sin_cache");
  require_rank(t_q, 3, "q", "[T, Hq, D]");
  require_rank(t_k, 3, "k", "[T, Hkv, D]");
  require_rank(t_kc, 5, "k_cache", "[NB, Hkv, D/x, BS, x]");
  require_rank(t_cs, 2, "cos_sin_cache", "[max_pos, rotary_dim]");
  const int vrank = t_vc.view().rank;
  if (vrank != 4 && vrank != 5) {
    throw py::value_error("v_cache must be 4-D [NB, Hkv, D, BS] (plain) or 5-D (shuffle)");
  }
  AttentionConfig cfg;
  cfg.num_heads_q = t_q.view().shape[1];
  cfg.num_heads_kv = t_k.view().shape[1];
  cfg.head_dim = t_q.view().shape[2];
  cfg.rotary_dim = t_cs.view().shape[1];
  cfg.is_neox = is_neox;
  cfg.act_dtype = t_q.view().dtype;
  cfg.kv_cache_dtype = kv;
  cfg.block_size = t_kc.view().shape[3];
  cfg.num_blocks = t_kc.view().shape[0];
  cfg.max_position = t_cs.view().shape[0];
  validate_attention_config(cfg);
  RopeReshapeCacheArgs a;
  a.cfg = cfg;
  a.q = t_q.view();
  a.k = t_k.view();
  a.v = t_v.view();
  a.cos_sin_cache = t_cs.view();
  a.positions = t_pos.view();
  a.slot_mapping = t_slots.view();
  a.cache = {t_kc.view(), t_vc.view(), {}, {}};
  a.v_layout = vrank == 4 ? VCacheLayout::kPlain : VCacheLayout::kShuffle;
  a.apply_scale = apply_scale;
  a.k_scale_static = k_scale;
  a.v_scale_static = v_scale;
  a.limit = limit_of(max_units);
  const DeviceTag device = common_device({&t_q, &t_k, &t_v, &t_kc, &t_vc, &t_slots, &t_pos, &t_cs});
  KernelChoice choice(device, fault_spec, fault_seed);
  return run_without_gil([&] { return choice.kernels().rope_reshape_cache->run(a); });
}

py::tuple rotary_embedding(py::handle positions, py::handle query, py::handle key,
                           int64_t head_size, py::handle cos_sin_cache, bool is_neox,
                           const std::string& fault_spec, uint64_t fault_seed, int64_t max_units) {
  Tensor t_pos = Tensor::borrow(positions, "positions");
  Tensor t_q = Tensor::borrow(query, "query", std::nullopt, true);
  Tensor t_k = Tensor::borrow_optional(key, "key", std::nullopt, true);
  Tensor t_cs = Tensor::borrow(cos_sin_cache, "cos_sin_cache");
  require_rank(t_cs, 2, "cos_sin_cache", "[max_pos, rotary_dim]");
  RotaryArgs a;
  a.q = as_heads(t_q.view(), head_size, "query");
  a.k = as_heads(t_k.view(), head_size, "key");
  if (a.q.shape[2] != head_size) {
    throw py::value_error(
        fmt::format("query head dim {} != head_size {}", a.q.shape[2], head_size));
  }
  a.positions = t_pos.view();
  a.cos_sin_cache = t_cs.view();
  a.rotary_dim = t_cs.view().shape[1];
  a.is_neox = is_neox;
  a.limit = limit_of(max_units);
  KernelChoice choice(common_device({&t_pos, &t_q, &t_k, &t_cs}), fault_spec, fault_seed);
  return run_without_gil([&] { return choice.kernels().rotary->run(a); });
}

py::tuple rms_norm(py::handle out, py::handle input, py::handle weight, float epsilon,
                   const std::string& fault_spec, uint64_t fault_seed, int64_t max_units) {
  Tensor t_out = Tensor::borrow(out, "out", std::nullopt, true);
  Tensor t_in = Tensor::borrow(input, "input");
  Tensor t_w = Tensor::borrow(weight, "weight");
  require_rank(t_w, 1, "weight", "[D]");
  const int64_t d = t_w.view().shape[0];
  RmsNormArgs a;
  a.input = as_heads(t_in.view(), d, "input");
  a.output = as_heads(t_out.view(), d, "out");
  a.weight = t_w.view();
  a.eps = epsilon;
  a.limit = limit_of(max_units);
  KernelChoice choice(common_device({&t_out, &t_in, &t_w}), fault_spec, fault_seed);
  return run_without_gil([&] { return choice.kernels().rms_norm->run(a); });
}

// Shared by both cache kernels: the layer config a cache call implies.
AttentionConfig cache_config(const Tensor& key, const Tensor& key_cache, KvCacheDtype kv) {
  require_rank(key, 3, "key", "[T, Hkv, D]");
  require_rank(key_cache, 5, "key_cache", "[NB, Hkv, D/x, BS, x]");
  AttentionConfig cfg;
  cfg.num_heads_kv = key.view().shape[1];
  cfg.num_heads_q = cfg.num_heads_kv;  // no q here; any multiple of Hkv describes the cache
  cfg.head_dim = key.view().shape[2];
  cfg.rotary_dim = cfg.head_dim;
  cfg.act_dtype = key.view().dtype;
  cfg.kv_cache_dtype = kv;
  cfg.block_size = key_cache.view().shape[3];
  cfg.num_blocks = key_cache.view().shape[0];
  validate_attention_config(cfg);
  return cfg;
}

py::tuple reshape_and_cache(py::handle key, py::handle value, py::handle key_cache,
                            py::handle value_cache, py::handle slot_mapping,
                            const std::string& kv_cache_dtype, float k_scale, float v_scale,
                            bool asm_layout, const std::string& fault_spec, uint64_t fault_seed,
                            int64_t max_units) {
  const KvCacheDtype kv = kv_dtype_from(kv_cache_dtype);
  Tensor t_k = Tensor::borrow(key, "key"), t_v = Tensor::borrow(value, "value");
  Tensor t_kc = Tensor::borrow(key_cache, "key_cache", fp8_of(kv), true);
  Tensor t_vc = Tensor::borrow(value_cache, "value_cache", fp8_of(kv), true);
  Tensor t_slots = Tensor::borrow(slot_mapping, "slot_mapping");
  ReshapeAndCacheArgs a;
  a.cfg = cache_config(t_k, t_kc, kv);
  a.key = t_k.view();
  a.value = t_v.view();
  a.slot_mapping = t_slots.view();
  a.cache = {t_kc.view(), t_vc.view(), {}, {}};
  a.v_layout = asm_layout ? VCacheLayout::kShuffle : VCacheLayout::kPlain;
  a.k_scale = k_scale;
  a.v_scale = v_scale;
  a.limit = limit_of(max_units);
  KernelChoice choice(common_device({&t_k, &t_v, &t_kc, &t_vc, &t_slots}), fault_spec, fault_seed);
  return run_without_gil([&] { return choice.kernels().reshape_and_cache->run(a); });
}

py::tuple reshape_and_cache_with_pertoken_quant(
    py::handle key, py::handle value, py::handle key_cache, py::handle value_cache,
    py::handle k_dequant_scales, py::handle v_dequant_scales, py::handle slot_mapping,
    bool asm_layout, const std::string& kv_cache_dtype, const std::string& fault_spec,
    uint64_t fault_seed, int64_t max_units) {
  const KvCacheDtype kv = kv_dtype_from(kv_cache_dtype);
  if (!is_fp8(kv)) throw py::value_error("per-token quant needs an fp8 kv_cache_dtype");
  Tensor t_k = Tensor::borrow(key, "key"), t_v = Tensor::borrow(value, "value");
  Tensor t_kc = Tensor::borrow(key_cache, "key_cache", fp8_of(kv), true);
  Tensor t_vc = Tensor::borrow(value_cache, "value_cache", fp8_of(kv), true);
  Tensor t_ks = Tensor::borrow(k_dequant_scales, "k_dequant_scales", std::nullopt, true);
  Tensor t_vs = Tensor::borrow(v_dequant_scales, "v_dequant_scales", std::nullopt, true);
  Tensor t_slots = Tensor::borrow(slot_mapping, "slot_mapping");
  PerTokenQuantCacheArgs a;
  a.cfg = cache_config(t_k, t_kc, kv);
  a.key = t_k.view();
  a.value = t_v.view();
  a.slot_mapping = t_slots.view();
  a.cache = {t_kc.view(), t_vc.view(), t_ks.view(), t_vs.view()};
  a.v_layout = asm_layout ? VCacheLayout::kShuffle : VCacheLayout::kPlain;
  a.limit = limit_of(max_units);
  KernelChoice choice(common_device({&t_k, &t_v, &t_kc, &t_vc, &t_ks, &t_vs, &t_slots}), fault_spec,
                      fault_seed);
  return run_without_gil([&] { return choice.kernels().per_token_quant_cache->run(a); });
}

}  // namespace

void register_kernels(py::module_& m) {
  using py::arg;
  m.def("fused_qk_norm_rope_cache_quant_shuffle", &fused_qk_norm_rope_cache_quant_shuffle,
        arg("qkv"), arg("num_heads_q"), arg("num_heads_k"), arg("num_heads_v"), arg("head_dim"),
        arg("eps"), arg("qw"), arg("kw"), arg("cos_sin_cache"), arg("is_neox_style"),
        arg("pos_ids"), arg("k_cache"), arg("v_cache"), arg("slot_mapping"), arg("kv_cache_dtype"),
        arg("k_scale").none(true), arg("v_scale").none(true), arg("fault_spec") = "",
        arg("fault_seed") = 0, arg("max_units") = WorkLimit::kUnlimited);
  m.def("qk_rope_reshape_and_cache", &qk_rope_reshape_and_cache, arg("q"), arg("k"), arg("v"),
        arg("k_cache"), arg("v_cache"), arg("slot_mapping"), arg("positions"), arg("cos_sin_cache"),
        arg("k_scale"), arg("v_scale"), arg("is_neox"), arg("flash_layout"), arg("apply_scale"),
        arg("kv_cache_dtype"), arg("fault_spec") = "", arg("fault_seed") = 0,
        arg("max_units") = WorkLimit::kUnlimited);
  m.def("rotary_embedding", &rotary_embedding, arg("positions"), arg("query"),
        arg("key").none(true), arg("head_size"), arg("cos_sin_cache"), arg("is_neox"),
        arg("fault_spec") = "", arg("fault_seed") = 0, arg("max_units") = WorkLimit::kUnlimited);
  m.def("rms_norm", &rms_norm, arg("out"), arg("input"), arg("weight"), arg("epsilon"),
        arg("fault_spec") = "", arg("fault_seed") = 0, arg("max_units") = WorkLimit::kUnlimited);
  m.def("reshape_and_cache", &reshape_and_cache, arg("key"), arg("value"), arg("key_cache"),
        arg("value_cache"), arg("slot_mapping"), arg("kv_cache_dtype"), arg("k_scale"),
        arg("v_scale"), arg("asm_layout"), arg("fault_spec") = "", arg("fault_seed") = 0,
        arg("max_units") = WorkLimit::kUnlimited);
  m.def("reshape_and_cache_with_pertoken_quant", &reshape_and_cache_with_pertoken_quant, arg("key"),
        arg("value"), arg("key_cache"), arg("value_cache"), arg("k_dequant_scales"),
        arg("v_dequant_scales"), arg("slot_mapping"), arg("asm_layout"), arg("kv_cache_dtype"),
        arg("fault_spec") = "", arg("fault_seed") = 0, arg("max_units") = WorkLimit::kUnlimited);
}

}  // namespace rcsim::python
