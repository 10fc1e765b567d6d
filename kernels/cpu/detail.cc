#include "kernels/cpu/detail.h"

#include <vector>

namespace rcsim::cpu::detail {

namespace {
std::vector<int64_t> read_host_indices(const TensorView& v) {
  std::vector<int64_t> values(static_cast<std::size_t>(v.size(0)));
  for (std::size_t t = 0; t < values.size(); ++t) {
    values[t] = load_i64(v, static_cast<int64_t>(t));
  }
  return values;
}
}  // namespace

const kernel_args::BackendRules& host_rules() {
  static const kernel_args::BackendRules rules{
      .device = DeviceTag::kHost,
      .wrong_device = "is not a host view (CPU backend)",
      .read_indices = &read_host_indices,
  };
  return rules;
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
