// The input tensors of a case: loaded from the .npy files the case names, the rest generated from
// the case's one seed (random and non-zero activations, a real cos/sin table, distinct slots,
// positive norm weights; caches and scales sentinel-filled so untouched memory shows), and the
// dispatcher's views onto them.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "core/dispatch/rope_cache_dispatcher.h"
#include "core/tensor.h"
#include "fault_injection/cli/case_spec.h"

namespace rcsim::cli {

// The bytes the caches and their scales start as (written to meta.json, so an outside checker
// can tell an untouched element from a written one).
inline constexpr uint8_t kCacheSentinelByte = 0xA5;
inline constexpr uint8_t kScaleSentinelByte = 0x7B;

// Every input the layer reads, by name (kCaseInputNames); inputs the layer never reads are absent.
struct CaseTensors {
  std::map<std::string, HostTensor, std::less<>> t;
  const HostTensor* get(std::string_view name) const {
    auto it = t.find(name);
    return it == t.end() ? nullptr : &it->second;
  }
};

// Loads the named input files and generates the rest; checks the token count agrees across the
// per-token inputs and fits the cache.
CaseTensors build_inputs(const CaseSpec& s);

// The dispatcher's arguments as views onto `ct` (q/k/v split out of qkv when qkv_present is false).
RopeCacheInputs views_of(const CaseTensors& ct, const CaseSpec& s);

}  // namespace rcsim::cli
