#include "core/dtype.h"

namespace rcsim {

std::optional<DType> dtype_from_name(std::string_view name) {
  for (DType t : {DType::kBF16, DType::kFP16, DType::kFP32, DType::kFP8E4M3FN,
                  DType::kFP8E4M3FNUZ, DType::kI64}) {
    if (dtype_name(t) == name) return t;
  }
  return std::nullopt;
}

std::optional<KvCacheDtype> kv_cache_dtype_from_name(std::string_view name) {
  for (KvCacheDtype k : {KvCacheDtype::kAuto, KvCacheDtype::kFp8E4M3FN, KvCacheDtype::kFp8E4M3FNUZ}) {
    if (kv_cache_dtype_name(k) == name) return k;
  }
  return std::nullopt;
}

}  // namespace rcsim
