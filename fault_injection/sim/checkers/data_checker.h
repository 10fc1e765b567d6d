// Checks the data one call returned and wrote against the expected run (the same inputs through
// the branch the record reports, fault-free, on clean kernels): q and k bit-exact (a NaN equal to
// any NaN: the expected run is on the CPU, the system under test may be a GPU), V returned
// untouched, the V region of qkv untouched, and the whole KV cache (untouched slots and scales
// included) bit-exact, decoded under the V layout the record says the branch wrote.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/dispatch/rope_cache_dispatcher.h"
#include "core/nan_class.h"
#include "fakes/faults/fault_stats.h"
#include "fault_injection/sim/checkers/check_failure.h"

namespace rcsim::sim {

// Compares two [T, H, D] views of 16-bit elements bit for bit under `rule` (kNanClass for the
// computed q and k: any NaN equals any NaN, core/nan_class.h; kBitExact for V, which is data);
// returns the first mismatch as (token, head, dim).
std::optional<std::string> compare_heads(const TensorView& got, const TensorView& want,
                                         std::string_view what, NanRule rule);
// First differing cache element, decoded as (block, kv head, token-in-block, dim) = slot; each
// part under cache_part_nan_rule.
std::optional<std::string> compare_cache(const AttentionConfig& attn, const KvCacheViews& got,
                                         const KvCacheViews& want, VCacheLayout v_layout);

// Host-readable views of everything the data check reads for one call.
struct CallData {
  TensorView q_returned, k_returned, v_returned;  // what the dispatcher handed to attention
  TensorView q_expected, k_expected;              // the expected run's q and k
  TensorView qkv_original;                        // the call's input, before any kernel
  TensorView qkv_after;                           // the system under test's qkv after the call
  KvCacheViews cache_got, cache_expected;
};
std::vector<std::string> data_problems(const AttentionConfig& attn, const CallData& d,
                                       VCacheLayout written_v_layout);

// Turns problems into the verdict: a HazardStop where a policy's documented promise ("the fused
// kernel writes only q/k") broke under a scribbling fault, a correctness failure otherwise.
// `before`/`after`: the device's fault counters around the call.
[[noreturn]] void judge_data_problems(const CheckContext& ctx, const DispatchRecord& rec,
                                      const std::vector<std::string>& problems,
                                      const FaultStats& before, const FaultStats& after);

}  // namespace rcsim::sim
