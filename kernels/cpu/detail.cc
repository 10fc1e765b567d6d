#include "kernels/cpu/detail.h"

#include <cmath>

#include <fmt/format.h>

namespace rcsim::cpu::detail {

void require_view(const TensorView& v, std::string_view name, DType dtype,
                  std::initializer_list<int64_t> shape) {
  RCSIM_REQUIRE(!v.is_null(), "{} is missing", name);
  RCSIM_REQUIRE(v.device == DeviceTag::kHost, "{} is not a host view (CPU backend): {}", name,
                v.describe());
  RCSIM_REQUIRE(v.dtype == dtype, "{} has dtype {}, expected {}", name, dtype_name(v.dtype),
                dtype_name(dtype));
  RCSIM_REQUIRE(v.same_shape(shape), "{} has shape {}, expected {} dims [{}]", name, v.describe(),
                shape.size(), fmt::join(shape, ", "));
  for (int d = 0; d < v.rank; ++d) {
    RCSIM_REQUIRE(v.stride(d) >= 0, "{} has a negative stride: {}", name, v.describe());
  }
}

void require_contiguous(const TensorView& v, std::string_view name) {
  RCSIM_REQUIRE(v.is_contiguous(), "{} must be contiguous: {}", name, v.describe());
}

void require_head_dim(int64_t head_dim) {
  RCSIM_REQUIRE(limits::contains(limits::kHeadDimsSupported, head_dim),
                "unsupported head_dim {} (supported: 64, 128, 256)", head_dim);
}

void require_work_limit(const WorkLimit& limit) {
  RCSIM_REQUIRE(limit.max_units >= WorkLimit::kUnlimited, "WorkLimit.max_units {} is invalid",
                limit.max_units);
}

void require_positions(const TensorView& positions, int64_t max_position) {
  const int64_t n = positions.size(0);
  for (int64_t t = 0; t < n; ++t) {
    const int64_t p = load_i64(positions, t);
    RCSIM_REQUIRE(p >= 0 && p < max_position, "position {} of token {} outside [0, {})", p, t,
                  max_position);
  }
}

void require_slots(const TensorView& slots, int64_t num_slots) {
  const int64_t n = slots.size(0);
  for (int64_t t = 0; t < n; ++t) {
    const int64_t s = load_i64(slots, t);
    RCSIM_REQUIRE(s < num_slots, "slot {} of token {} is beyond the cache ({} slots)", s, t,
                  num_slots);
  }
}

void require_cache(const AttentionConfig& cfg, const KvCacheViews& cache, VCacheLayout v_layout,
                   bool need_token_scales) {
  const DType cdt = cfg.cache_storage_dtype();
  const int64_t nb = cfg.num_blocks, h = cfg.num_heads_kv, bs = cfg.block_size,
                d = cfg.head_dim, x = cfg.x();
  require_view(cache.k_cache, "k_cache", cdt, {nb, h, d / x, bs, x});
  require_contiguous(cache.k_cache, "k_cache");
  if (v_layout == VCacheLayout::kShuffle && cache.v_cache.rank == 5) {
    require_view(cache.v_cache, "v_cache", cdt, {nb, h, bs / x, d, x});
  } else {
    require_view(cache.v_cache, "v_cache", cdt, {nb, h, d, bs});
  }
  require_contiguous(cache.v_cache, "v_cache");
  if (need_token_scales) {
    require_view(cache.k_scale, "k_scale", DType::kFP32, {nb, h, bs});
    require_contiguous(cache.k_scale, "k_scale");
    require_view(cache.v_scale, "v_scale", DType::kFP32, {nb, h, bs});
    require_contiguous(cache.v_scale, "v_scale");
  }
}

void require_cos_sin(const TensorView& cos_sin, std::string_view name, DType dtype,
                     int64_t rotary_dim) {
  RCSIM_REQUIRE(!cos_sin.is_null() && cos_sin.rank == 2, "{} must be 2-D [max_pos, {}]: {}", name,
                rotary_dim, cos_sin.describe());
  require_view(cos_sin, name, dtype, {cos_sin.size(0), rotary_dim});
  RCSIM_REQUIRE(cos_sin.size(0) >= 1 && cos_sin.size(0) <= limits::kMaxPositionMax,
                "{} has {} rows, outside [1, {}]", name, cos_sin.size(0),
                limits::kMaxPositionMax);
}

void require_rotary_dim(int64_t rotary_dim, int64_t head_dim) {
  RCSIM_REQUIRE(rotary_dim >= 2 && rotary_dim <= head_dim && rotary_dim % 2 == 0,
                "rotary_dim {} must be even and in [2, head_dim {}]", rotary_dim, head_dim);
}

void load_head(const TensorView& v, int64_t token, int64_t head, int64_t head_dim, HeadBits& bits,
               HeadValues& values) {
  for (int64_t d = 0; d < head_dim; ++d) {
    const auto i = static_cast<std::size_t>(d);
    bits[i] = load_bits16(v, offset3(v, token, head, d));
    values[i] = activation_to_float(bits[i], v.dtype);
  }
}

void store_head(const TensorView& v, int64_t token, int64_t head, int64_t head_dim,
                const HeadBits& bits) {
  for (int64_t d = 0; d < head_dim; ++d) {
    store_bits16(v, offset3(v, token, head, d), bits[static_cast<std::size_t>(d)]);
  }
}

void load_cos_sin_row(const TensorView& cos_sin, int64_t position, int64_t rotary_dim,
                      HeadValues& cos_row, HeadValues& sin_row) {
  const int64_t half = rotary_dim / 2;
  for (int64_t j = 0; j < half; ++j) {
    const auto i = static_cast<std::size_t>(j);
    const int64_t row = position * cos_sin.strides[0];
    cos_row[i] = activation_to_float(load_bits16(cos_sin, row + j * cos_sin.strides[1]),
                                     cos_sin.dtype);
    sin_row[i] = activation_to_float(load_bits16(cos_sin, row + (half + j) * cos_sin.strides[1]),
                                     cos_sin.dtype);
  }
}

int64_t k_cache_offset(const AttentionConfig& cfg, const CacheSite& site, int64_t d) {
  return layout::k_xpacked_offset(cfg.cache_shape(), site.block, site.head, site.token_in_block,
                                  d);
}

int64_t v_cache_offset(const AttentionConfig& cfg, VCacheLayout v_layout, const CacheSite& site,
                       int64_t d) {
  const layout::PagedCacheShape s = cfg.cache_shape();
  return v_layout == VCacheLayout::kShuffle
             ? layout::v_shuffle_offset(s, site.block, site.head, site.token_in_block, d)
             : layout::v_plain_offset(s, site.block, site.head, site.token_in_block, d);
}

int64_t scale_offset(const AttentionConfig& cfg, const CacheSite& site) {
  return layout::scale_offset(cfg.cache_shape(), site.block, site.head, site.token_in_block);
}

namespace {
int64_t side_offset(const AttentionConfig& cfg, VCacheLayout v_layout, CacheSide side,
                    const CacheSite& site, int64_t d) {
  return side == CacheSide::kKey ? k_cache_offset(cfg, site, d)
                                 : v_cache_offset(cfg, v_layout, site, d);
}
}  // namespace

void store_head_bits(const AttentionConfig& cfg, const KvCacheViews& cache, VCacheLayout v_layout,
                     CacheSide side, const CacheSite& site, const HeadBits& bits) {
  const TensorView& dst = side == CacheSide::kKey ? cache.k_cache : cache.v_cache;
  for (int64_t d = 0; d < cfg.head_dim; ++d) {
    store_bits16(dst, side_offset(cfg, v_layout, side, site, d), bits[static_cast<std::size_t>(d)]);
  }
}

void store_head_codes(const AttentionConfig& cfg, const KvCacheViews& cache,
                      VCacheLayout v_layout, CacheSide side, const CacheSite& site,
                      const HeadCodes& codes) {
  const TensorView& dst = side == CacheSide::kKey ? cache.k_cache : cache.v_cache;
  for (int64_t d = 0; d < cfg.head_dim; ++d) {
    store_u8(dst, side_offset(cfg, v_layout, side, site, d), codes[static_cast<std::size_t>(d)]);
  }
}

}  // namespace rcsim::cpu::detail
