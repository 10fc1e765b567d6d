// The non-fused composition (see nonfused_reference.h). Kernel order per call:
//   kRopeThenNorm: rotary(q, k), rms_norm(q, q_weight), rms_norm(k, k_weight), cache;
//   kNormThenRope: rms_norm(q), rms_norm(k), rotary(q, k), cache.
// cache = reshape_and_cache("auto") or reshape_and_cache_with_pertoken_quant (fp8), as ATOM's
// branch C; each kernel runs unlimited.
#include "kernels/cpu/nonfused_reference.h"

#include <string>
#include <utility>

#include "core/check.h"
#include "kernels/cpu/detail.h"

namespace rcsim::cpu {

void validate_nonfused(const NonFusedArgs& a) {
  using namespace kernel_args;
  const BackendRules& host = detail::host_rules();
  const AttentionConfig& cfg = a.cfg;
  validate_attention_config(cfg);
  RCSIM_REQUIRE(!a.q.is_null() && a.q.rank == 3, "q must be [T, Hq, D]: {}", a.q.describe());
  const int64_t tokens = a.q.size(0);
  RCSIM_REQUIRE(tokens <= limits::kTokensPerBatchMax, "{} tokens exceed the limit {}", tokens,
                limits::kTokensPerBatchMax);
  require_view(host, a.q, "q", cfg.act_dtype, {tokens, cfg.num_heads_q, cfg.head_dim});
  require_view(host, a.k, "k", cfg.act_dtype, {tokens, cfg.num_heads_kv, cfg.head_dim});
  require_view(host, a.v, "v", cfg.act_dtype, {tokens, cfg.num_heads_kv, cfg.head_dim});
  require_view(host, a.q_weight, "q_weight", cfg.act_dtype, {cfg.head_dim});
  require_view(host, a.k_weight, "k_weight", cfg.act_dtype, {cfg.head_dim});
  require_cos_sin(host, a.cos_sin_cache, "cos_sin_cache", cfg.act_dtype, cfg.rotary_dim);
  require_view(host, a.positions, "positions", DType::kI64, {tokens});
  require_view(host, a.slot_mapping, "slot_mapping", DType::kI64, {tokens});
  require_cache(host, cfg, a.cache, a.v_layout, is_fp8(cfg.kv_cache_dtype));
  require_positions(host, a.positions, a.cos_sin_cache.size(0));
  require_slots(host, a.slot_mapping, cfg.num_slots());
}

namespace {

void require_one_device(const NonFusedArgs& a) {
  const DeviceTag device = a.q.device;
  for (const auto& [name, v] :
       {std::pair{"k", a.k}, {"v", a.v}, {"q_weight", a.q_weight}, {"k_weight", a.k_weight},
        {"cos_sin_cache", a.cos_sin_cache}, {"positions", a.positions},
        {"slot_mapping", a.slot_mapping}, {"k_cache", a.cache.k_cache},
        {"v_cache", a.cache.v_cache}}) {
    RCSIM_REQUIRE(!v.is_null() && v.device == device,
                  "{} is missing or not on q's device: {} (q {})", name,
                  v.is_null() ? std::string("null") : v.describe(), a.q.describe());
  }
}

}  // namespace

void run_nonfused(const KernelSet& kernels, FallbackOrder order, const NonFusedArgs& a) {
  RCSIM_REQUIRE(kernels.rotary != nullptr && kernels.rms_norm != nullptr &&
                    kernels.reshape_and_cache != nullptr &&
                    kernels.per_token_quant_cache != nullptr,
                "run_nonfused: the kernel set lacks a non-fused kernel");
  // validate_nonfused() reads positions and slots, so it needs host views. On another backend's
  // memory (a graph replay on the GPU under test) the views only have to share one device; each of
  // that backend's kernels validates its own arguments before it writes.
  if (a.q.device == DeviceTag::kHost) {
    validate_nonfused(a);
  } else {
    require_one_device(a);
  }
  const AttentionConfig& cfg = a.cfg;
  auto rope = [&] {
    RotaryArgs r;
    r.q = a.q;
    r.k = a.k;
    r.positions = a.positions;
    r.cos_sin_cache = a.cos_sin_cache;
    r.rotary_dim = cfg.rotary_dim;
    r.is_neox = cfg.is_neox;
    kernels.rotary->run(r);
  };
  auto norms = [&] {
    RmsNormArgs n;
    n.eps = cfg.eps;
    n.input = n.output = a.q;
    n.weight = a.q_weight;
    kernels.rms_norm->run(n);
    n.input = n.output = a.k;
    n.weight = a.k_weight;
    kernels.rms_norm->run(n);
  };
  if (order == FallbackOrder::kRopeThenNorm) {
    rope();
    norms();
  } else {
    norms();
    rope();
  }
  if (is_fp8(cfg.kv_cache_dtype)) {
    PerTokenQuantCacheArgs c;
    c.cfg = cfg;
    c.key = a.k;
    c.value = a.v;
    c.slot_mapping = a.slot_mapping;
    c.cache = a.cache;
    c.v_layout = a.v_layout;
    kernels.per_token_quant_cache->run(c);
  } else {
    ReshapeAndCacheArgs c;
    c.cfg = cfg;
    c.key = a.k;
    c.value = a.v;
    c.slot_mapping = a.slot_mapping;
    c.cache = a.cache;
    c.v_layout = a.v_layout;
    kernels.reshape_and_cache->run(c);
  }
}

}  // namespace rcsim::cpu
