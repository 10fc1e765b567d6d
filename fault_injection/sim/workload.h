// The serving-engine side of the simulator: requests drawn from the seed, a block manager that hands
// out KV-cache pages from a free list in seeded order, and a scheduler that forms each step from
// decode tokens and chunked prefill up to a token budget, padded to a CUDA-graph bucket with slot -1.
// Nothing here touches tensors: a Step is the list of (request, position, slot) rows a forward pass
// processes, which the engine turns into qkv, positions and slot_mapping.
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include "core/prng.h"

namespace rcsim::sim {

struct Request {
  int64_t id = 0;
  int64_t arrival_step = 0;
  int64_t prompt_tokens = 0;
  int64_t output_tokens = 0;
  // Progress: tokens [0, processed_tokens) have been through a forward pass and are cached.
  int64_t processed_tokens = 0;
  std::vector<int64_t> block_table;  // page ids, in position order
  bool finished = false;
  int64_t total_tokens() const { return prompt_tokens + output_tokens; }
};

struct WorkloadShape {
  int64_t requests = 8;
  int64_t prompt_tokens_max = 48;
  int64_t output_tokens_max = 16;
  int64_t arrival_spread_steps = 16;  // arrivals are drawn from [0, spread)
};

// Draws the requests of one run from the seed (stream "requests"). Lengths are >= 1.
std::vector<Request> generate_requests(uint64_t seed, const WorkloadShape& shape);

// Pages from a free list whose initial order is a seeded permutation; freed pages go to the back,
// so reuse order is deterministic too. Every page is owned by at most one request (asserted).
class BlockManager {
 public:
  BlockManager(uint64_t seed, int64_t num_blocks);
  int64_t free_blocks() const { return static_cast<int64_t>(free_.size()); }
  int64_t num_blocks() const { return num_blocks_; }
  // Appends pages to `table` until it covers `tokens` positions; false (and no change) if short.
  bool grow(std::vector<int64_t>& table, int64_t tokens, int64_t block_size);
  void release(std::vector<int64_t>& table);

 private:
  int64_t num_blocks_;
  std::deque<int64_t> free_;
  std::vector<bool> owned_;
};

// One row of a step: a real token (request >= 0) or CUDA-graph padding (request -1, slot -1).
struct StepRow {
  int64_t request = -1;  // index into the request vector
  int64_t position = 0;
  int64_t slot = -1;
};

struct Step {
  int64_t index = 0;
  std::vector<StepRow> rows;  // real rows first, then padding up to the bucket
  int64_t real_tokens = 0;
  int64_t prefill_tokens = 0;
  int64_t decode_tokens = 0;
  // Per request in this step: the request index and the row of its last token (the query the
  // attention read uses).
  std::vector<std::pair<int64_t, int64_t>> last_row_of_request;
};

struct SchedulerConfig {
  int64_t token_budget = 32;  // real tokens per step
  int64_t block_size = 16;
  std::vector<int64_t> buckets = {1, 2, 4, 8, 16, 32, 64};  // CUDA-graph batch sizes
};

// Continuous batching: decode tokens of running requests first (one each), then chunked prefill
// of admitted requests in arrival order, up to the budget. A request's pages are grown before its
// tokens are scheduled; a request that cannot get pages waits (no preemption).
class Scheduler {
 public:
  Scheduler(SchedulerConfig cfg, std::vector<Request> requests, BlockManager& blocks);
  // Forms the next step; empty rows when nothing is runnable at this step.
  Step form_step(int64_t step_index);
  // The step ran to completion: advance each request's progress and free finished requests.
  void commit(const Step& step);
  bool all_finished() const;
  const std::vector<Request>& requests() const { return requests_; }
  int64_t slot_of(const Request& r, int64_t position) const;
  int64_t finished_count() const;

 private:
  SchedulerConfig cfg_;
  std::vector<Request> requests_;
  BlockManager* blocks_;
};

// Smallest bucket >= n; n itself if it exceeds every bucket.
int64_t bucket_for(const std::vector<int64_t>& buckets, int64_t n);

}  // namespace rcsim::sim
