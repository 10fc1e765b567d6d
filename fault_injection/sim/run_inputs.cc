#include "fault_injection/sim/run_inputs.h"

#include <algorithm>

#include "core/prng.h"

namespace rcsim::sim {

AttentionConfig run_attention(const SimConfig& cfg) {
  const ModelShape* model = model_by_name(cfg.model);
  AttentionConfig a;
  a.num_heads_q = model->num_heads_q;
  a.num_heads_kv = model->num_heads_kv;
  a.head_dim = model->head_dim;
  a.rotary_dim = model->head_dim;
  a.is_neox = true;
  a.eps = 1e-6f;
  a.act_dtype = DType::kBF16;
  a.kv_cache_dtype = cfg.kv_cache_dtype;
  a.block_size = cfg.block_size;
  const int64_t pages_per_request =
      (cfg.prompt_tokens_max + cfg.output_tokens_max + cfg.block_size - 1) / cfg.block_size;
  a.num_blocks = cfg.num_blocks + kLivenessRequests * pages_per_request;
  a.max_position = cfg.max_position;
  validate_attention_config(a);
  return a;
}

std::vector<Request> run_requests(const SimConfig& cfg) {
  WorkloadShape shape;
  shape.requests = cfg.requests;
  shape.prompt_tokens_max = cfg.prompt_tokens_max;
  shape.output_tokens_max = cfg.output_tokens_max;
  shape.arrival_spread_steps = std::max<int64_t>(1, cfg.steps / 2);
  std::vector<Request> requests = generate_requests(cfg.seed, shape);
  WorkloadShape live_shape = shape;
  live_shape.requests = kLivenessRequests;
  live_shape.arrival_spread_steps = 1;
  std::vector<Request> live = generate_requests(mix_seed(cfg.seed, 1), live_shape);
  for (Request& r : live) {
    r.id += cfg.requests;
    r.arrival_step = cfg.steps;
    requests.push_back(r);
  }
  return requests;
}

}  // namespace rcsim::sim
