#include "fakes/faults/unit_footprints.h"

#include "kernels/common/cache_layout.h"

namespace rcsim::fault_detail {
namespace {

bool region_hits(FaultRegion filter, FaultRegion part) {
  return filter == FaultRegion::kAll || filter == part;
}

int64_t read_slot(const TensorView& slots, int64_t token) {
  return slots.data_as<const int64_t>()[token * slots.stride(0)];
}

void emit_row(const TensorView& view3, int64_t t, int64_t h, int64_t dims, Emit& emit) {
  for (int64_t d = 0; d < dims; ++d) emit.element(view3, view3.element_offset({t, h, d}));
}

// K cache [NB, H, D/x, BS, x]: the view's strides when it is 5-D, else the contiguous formula.
void emit_k_slot(const TensorView& k_cache, const layout::PagedCacheShape& shape, int64_t slot,
                 int64_t h, Emit& emit) {
  const int64_t b = slot / shape.block_size;
  const int64_t tok = slot % shape.block_size;
  for (int64_t d = 0; d < shape.head_dim; ++d) {
    const int64_t off = k_cache.rank == 5
                            ? k_cache.element_offset({b, h, d / shape.x, tok, d % shape.x})
                            : layout::k_xpacked_offset(shape, b, h, tok, d);
    emit.element(k_cache, off);
  }
}

// V cache: 5-D = shuffle [NB, H, BS/x, D, x]; 4-D plain [NB, H, D, BS]; a 4-D view labelled
// shuffle (ATOM's v_cache label) is addressed with the contiguous shuffle formula.
void emit_v_slot(const TensorView& v_cache, VCacheLayout v_layout,
                 const layout::PagedCacheShape& shape, int64_t slot, int64_t h, Emit& emit) {
  const int64_t b = slot / shape.block_size;
  const int64_t tok = slot % shape.block_size;
  for (int64_t d = 0; d < shape.head_dim; ++d) {
    int64_t off = 0;
    if (v_cache.rank == 5) {
      off = v_cache.element_offset({b, h, tok / shape.x, d, tok % shape.x});
    } else if (v_layout == VCacheLayout::kPlain) {
      off = v_cache.element_offset({b, h, d, tok});
    } else {
      off = layout::v_shuffle_offset(shape, b, h, tok, d);
    }
    emit.element(v_cache, off);
  }
}

void emit_scale(const TensorView& scale, const layout::PagedCacheShape& shape, int64_t slot,
                int64_t h, Emit& emit) {
  if (scale.is_null() || scale.rank != 3) return;  // per-tensor scales are shared inputs
  emit.element(scale, scale.element_offset({slot / shape.block_size, h, slot % shape.block_size}));
}

}  // namespace

void footprint(const FusedQkNormRopeCacheArgs& a, int64_t g, FaultRegion filter, Emit& emit) {
  const int64_t hq = a.cfg.num_heads_q;
  const int64_t hkv = a.cfg.num_heads_kv;
  const int64_t dim = a.cfg.head_dim;
  const int64_t t = g / (hq + 2 * hkv);
  const int64_t h = g % (hq + 2 * hkv);
  const layout::PagedCacheShape shape = a.cfg.cache_shape();
  FaultRegion part = h < hq ? FaultRegion::kQ : (h < hq + hkv ? FaultRegion::kK : FaultRegion::kV);
  if (region_hits(filter, part)) {
    for (int64_t d = 0; d < dim; ++d) emit.element(a.qkv, a.qkv.element_offset({t, h * dim + d}));
    if (part == FaultRegion::kQ && !a.q_out.is_null()) emit_row(a.q_out, t, h, dim, emit);
    if (part == FaultRegion::kK && !a.k_out.is_null()) emit_row(a.k_out, t, h - hq, dim, emit);
  }
  if (part == FaultRegion::kQ || !region_hits(filter, FaultRegion::kCache)) return;
  const int64_t slot = read_slot(a.slot_mapping, t);
  if (slot < 0) return;
  if (part == FaultRegion::kK) {
    emit_k_slot(a.cache.k_cache, shape, slot, h - hq, emit);
    emit_scale(a.cache.k_scale, shape, slot, h - hq, emit);
  } else {
    emit_v_slot(a.cache.v_cache, VCacheLayout::kShuffle, shape, slot, h - hq - hkv, emit);
    emit_scale(a.cache.v_scale, shape, slot, h - hq - hkv, emit);
  }
}

void footprint(const RopeReshapeCacheArgs& a, int64_t g, FaultRegion filter, Emit& emit) {
  const int64_t hq = a.cfg.num_heads_q;
  const int64_t group = hq / a.cfg.num_heads_kv;
  const int64_t t = g / hq;
  const int64_t h = g % hq;
  const layout::PagedCacheShape shape = a.cfg.cache_shape();
  if (region_hits(filter, FaultRegion::kQ)) emit_row(a.q, t, h, a.cfg.head_dim, emit);
  if (h % group != 0) return;  // only a group's first q head handles its K head
  const int64_t kvh = h / group;
  if (region_hits(filter, FaultRegion::kK)) emit_row(a.k, t, kvh, a.cfg.head_dim, emit);
  const int64_t slot = read_slot(a.slot_mapping, t);
  if (slot < 0 || !region_hits(filter, FaultRegion::kCache)) return;
  emit_k_slot(a.cache.k_cache, shape, slot, kvh, emit);
  emit_v_slot(a.cache.v_cache, a.v_layout, shape, slot, kvh, emit);
}

void footprint(const RotaryArgs& a, int64_t g, FaultRegion filter, Emit& emit) {
  const int64_t tokens = a.q.size(0);
  const int64_t hq = a.q.size(1);
  if (g < tokens * hq) {
    if (region_hits(filter, FaultRegion::kQ)) emit_row(a.q, g / hq, g % hq, a.rotary_dim, emit);
    return;
  }
  const int64_t gk = g - tokens * hq;
  const int64_t hkv = a.k.size(1);
  if (region_hits(filter, FaultRegion::kK)) emit_row(a.k, gk / hkv, gk % hkv, a.rotary_dim, emit);
}

void footprint(const RmsNormArgs& a, int64_t g, FaultRegion filter, Emit& emit) {
  const int64_t heads = a.output.size(1);
  if (region_hits(filter, FaultRegion::kOut)) {
    emit_row(a.output, g / heads, g % heads, a.output.size(2), emit);
  }
}

void footprint(const ReshapeAndCacheArgs& a, int64_t g, FaultRegion filter, Emit& emit) {
  const int64_t slot = read_slot(a.slot_mapping, g);
  if (slot < 0 || !region_hits(filter, FaultRegion::kCache)) return;
  const layout::PagedCacheShape shape = a.cfg.cache_shape();
  for (int64_t h = 0; h < a.cfg.num_heads_kv; ++h) {
    emit_k_slot(a.cache.k_cache, shape, slot, h, emit);
    emit_v_slot(a.cache.v_cache, a.v_layout, shape, slot, h, emit);
  }
}

void footprint(const PerTokenQuantCacheArgs& a, int64_t g, FaultRegion filter, Emit& emit) {
  const int64_t hkv = a.cfg.num_heads_kv;
  const int64_t slot = read_slot(a.slot_mapping, g / hkv);
  if (slot < 0 || !region_hits(filter, FaultRegion::kCache)) return;
  const layout::PagedCacheShape shape = a.cfg.cache_shape();
  const int64_t h = g % hkv;
  emit_k_slot(a.cache.k_cache, shape, slot, h, emit);
  emit_v_slot(a.cache.v_cache, a.v_layout, shape, slot, h, emit);
  emit_scale(a.cache.k_scale, shape, slot, h, emit);
  emit_scale(a.cache.v_scale, shape, slot, h, emit);
}

}  // namespace rcsim::fault_detail
