#include "fault_injection/sim/layer_state.h"

#include "core/prng.h"
#include "kernels/common/numeric.h"

namespace rcsim::sim {

LayerCache::LayerCache(SimDevice& device, const AttentionConfig& a) {
  const int64_t x = a.x();
  const DType cdt = a.cache_storage_dtype();
  const int64_t k_shape[] = {a.num_blocks, a.num_heads_kv, a.head_dim / x, a.block_size, x};
  const int64_t v_shape[] = {a.num_blocks, a.num_heads_kv, a.head_dim, a.block_size};
  k = device.allocate(cdt, k_shape, 0xA5);
  v = device.allocate(cdt, v_shape, 0x5A);
  if (is_fp8(a.kv_cache_dtype)) {
    const int64_t scale_shape[] = {a.num_blocks, a.num_heads_kv, a.block_size};
    k_scale = device.allocate(DType::kFP32, scale_shape, 0xC3);
    v_scale = device.allocate(DType::kFP32, scale_shape, 0x3C);
  }
}

KvCacheViews LayerCache::views() const {
  KvCacheViews out{k->view(), v->view(), {}, {}};
  if (k_scale) {
    out.k_scale = k_scale->view();
    out.v_scale = v_scale->view();
  }
  return out;
}

KvCacheViews LayerCache::host_views(SimDevice& device) const {
  return KvCacheViews{device.host_view(k), device.host_view(v), device.host_view(k_scale),
                      device.host_view(v_scale)};
}

void LayerCache::copy_from(SimDevice& device, const LayerCache& from) {
  device.copy(from.k->view(), k->view());
  device.copy(from.v->view(), v->view());
  if (from.k_scale) {
    device.copy(from.k_scale->view(), k_scale->view());
    device.copy(from.v_scale->view(), v_scale->view());
  }
}

void LayerCache::copy_across(SimDevice& device, SimDevice& from_device, const LayerCache& from) {
  if (&device == &from_device) {
    copy_from(device, from);
    return;
  }
  const KvCacheViews src = from.host_views(from_device);
  device.upload(src.k_cache, k->view());
  device.upload(src.v_cache, v->view());
  if (from.k_scale) {
    device.upload(src.k_scale, k_scale->view());
    device.upload(src.v_scale, v_scale->view());
  }
  from_device.release_host_views();
}

NormWeights norm_weights(const SimConfig& cfg, int64_t head_dim, int64_t layer) {
  const int64_t d = head_dim;
  NormWeights w{HostTensor(DType::kBF16, {d}), HostTensor(DType::kBF16, {d})};
  Prng rng = Prng::stream(cfg.seed, "norm-weights", layer);
  for (HostTensor* t : {&w.q, &w.k}) {
    auto bits = t->as<uint16_t>();
    for (int64_t i = 0; i < d; ++i) {
      const bool mirror = cfg.symmetric_weights && i >= d / 2;
      bits[static_cast<std::size_t>(i)] =
          mirror ? bits[static_cast<std::size_t>(i - d / 2)]
                 : numeric::float_to_bf16_bits(0.5f + rng.unit_float());
    }
  }
  return w;
}

StepInputs build_step_inputs(const SimConfig& cfg, const AttentionConfig& attn,
                             const Scheduler& scheduler, const Step& step, int64_t layer,
                             SimDevice& device, SimDevice* oracle_device) {
  const int64_t t = static_cast<int64_t>(step.rows.size());
  const int64_t width = attn.qkv_width();
  StepInputs in{HostTensor(DType::kBF16, {t, width}), HostTensor(DType::kI64, {t}),
                HostTensor(DType::kI64, {t}), nullptr, nullptr, nullptr, nullptr};
  auto qkv = in.qkv.as<uint16_t>();
  auto pos = in.positions.as<int64_t>();
  auto slot = in.slots.as<int64_t>();
  const auto& reqs = scheduler.requests();
  for (int64_t i = 0; i < t; ++i) {
    const StepRow& row = step.rows[static_cast<std::size_t>(i)];
    // Padding rows get their own non-zero values and a stale but in-range position, as
    // CUDA-graph buffers do.
    Prng rng = row.request >= 0
                   ? Prng::stream(cfg.seed, "qkv", reqs[static_cast<std::size_t>(row.request)].id,
                                  row.position, layer)
                   : Prng::stream(cfg.seed, "pad", step.index, i, layer);
    pos[static_cast<std::size_t>(i)] =
        row.request >= 0
            ? row.position
            : static_cast<int64_t>(rng.below(static_cast<uint64_t>(attn.max_position)));
    slot[static_cast<std::size_t>(i)] = row.slot;
    for (int64_t e = 0; e < width; ++e) {
      qkv[static_cast<std::size_t>(i * width + e)] =
          numeric::float_to_bf16_bits(rng.nonzero_float(0.0625f, 2.0f));
    }
  }
  in.positions_dev = device.upload_new(in.positions);
  in.slots_dev = device.upload_new(in.slots);
  if (oracle_device != nullptr) {
    in.positions_oracle = oracle_device->upload_new(in.positions);
    in.slots_oracle = oracle_device->upload_new(in.slots);
  }
  return in;
}

RopeCacheInputs make_dispatch_inputs(const AttentionConfig& attn, const LayerState& layer,
                                     const TensorView& cos_sin, const TensorView& qkv,
                                     const StepInputs& in, const LayerCache& cache, Side side) {
  const bool oracle = side == Side::kOracle;
  RopeCacheInputs r;
  r.qkv = qkv;
  const QkvViews v = split_qkv(r.qkv, attn.num_heads_q, attn.num_heads_kv, attn.head_dim);
  r.q = v.q;
  r.k = v.k;
  r.v = v.v;
  r.positions = (oracle && in.positions_oracle ? in.positions_oracle : in.positions_dev)->view();
  r.slot_mapping = (oracle && in.slots_oracle ? in.slots_oracle : in.slots_dev)->view();
  r.cos_sin_cache = cos_sin;
  r.q_weight = (oracle && layer.q_weight_oracle ? layer.q_weight_oracle : layer.q_weight)->view();
  r.k_weight = (oracle && layer.k_weight_oracle ? layer.k_weight_oracle : layer.k_weight)->view();
  r.cache = cache.views();
  return r;
}

}  // namespace rcsim::sim
