#include "fault_injection/sim/workload.h"

#include <algorithm>

#include "core/check.h"
#include "core/limits.h"

namespace rcsim::sim {

std::vector<Request> generate_requests(uint64_t seed, const WorkloadShape& shape) {
  RCSIM_REQUIRE(shape.requests >= 1 && shape.requests <= limits::kSimRequestsMax,
                "requests {} outside [1, {}]", shape.requests, limits::kSimRequestsMax);
  RCSIM_REQUIRE(shape.prompt_tokens_max >= 1 && shape.output_tokens_max >= 1,
                "prompt/output maxima must be >= 1");
  Prng rng = Prng::stream(seed, "requests");
  std::vector<Request> out;
  out.reserve(static_cast<std::size_t>(shape.requests));
  for (int64_t i = 0; i < shape.requests; ++i) {
    Request r;
    r.id = i;
    r.arrival_step = rng.range(0, std::max<int64_t>(0, shape.arrival_spread_steps - 1));
    // 1 and the maximum are both reachable: short prompts make decode-only steps, long ones chunk.
    r.prompt_tokens = rng.range(1, shape.prompt_tokens_max);
    r.output_tokens = rng.range(1, shape.output_tokens_max);
    out.push_back(r);
  }
  // Arrival order is the admission order; ties keep the id order.
  std::stable_sort(out.begin(), out.end(), [](const Request& a, const Request& b) {
    return a.arrival_step < b.arrival_step;
  });
  return out;
}

BlockManager::BlockManager(uint64_t seed, int64_t num_blocks)
    : num_blocks_(num_blocks), owned_(static_cast<std::size_t>(num_blocks), false) {
  RCSIM_REQUIRE(num_blocks >= 1 && num_blocks <= limits::kBlocksMax, "num_blocks {} out of range",
                num_blocks);
  std::vector<int64_t> order(static_cast<std::size_t>(num_blocks));
  for (int64_t i = 0; i < num_blocks; ++i) order[static_cast<std::size_t>(i)] = i;
  // Fisher-Yates with the project PRNG: page ids are scattered, so a slot bug cannot hide behind
  // pages that happen to be contiguous.
  Prng rng = Prng::stream(seed, "free-list");
  for (int64_t i = num_blocks - 1; i > 0; --i) {
    const auto j = static_cast<std::size_t>(rng.below(static_cast<uint64_t>(i) + 1));
    std::swap(order[static_cast<std::size_t>(i)], order[j]);
  }
  free_.assign(order.begin(), order.end());
}

bool BlockManager::grow(std::vector<int64_t>& table, int64_t tokens, int64_t block_size) {
  const int64_t needed = (tokens + block_size - 1) / block_size;
  const int64_t extra = needed - static_cast<int64_t>(table.size());
  if (extra <= 0) return true;
  if (extra > free_blocks()) return false;
  for (int64_t i = 0; i < extra; ++i) {
    const int64_t page = free_.front();
    free_.pop_front();
    RCSIM_ASSERT(!owned_[static_cast<std::size_t>(page)], "page {} handed out twice", page);
    owned_[static_cast<std::size_t>(page)] = true;
    table.push_back(page);
  }
  return true;
}

void BlockManager::release(std::vector<int64_t>& table) {
  for (int64_t page : table) {
    RCSIM_ASSERT(page >= 0 && page < num_blocks_ && owned_[static_cast<std::size_t>(page)],
                 "releasing page {} that is not owned", page);
    owned_[static_cast<std::size_t>(page)] = false;
    free_.push_back(page);
  }
  table.clear();
}

int64_t bucket_for(const std::vector<int64_t>& buckets, int64_t n) {
  for (int64_t b : buckets) {
    if (b >= n) return b;
  }
  return n;
}

Scheduler::Scheduler(SchedulerConfig cfg, std::vector<Request> requests, BlockManager& blocks)
    : cfg_(std::move(cfg)), requests_(std::move(requests)), blocks_(&blocks) {
  RCSIM_REQUIRE(cfg_.token_budget >= 1 && cfg_.token_budget <= limits::kTokensPerBatchMax,
                "token budget {} out of range", cfg_.token_budget);
  for (const Request& r : requests_) {
    // A request that can never fit would wait forever: refuse the configuration up front.
    const int64_t pages = (r.total_tokens() + cfg_.block_size - 1) / cfg_.block_size;
    RCSIM_REQUIRE(pages <= blocks.num_blocks(),
                  "request {} needs {} pages, the cache has {}", r.id, pages, blocks.num_blocks());
  }
}

int64_t Scheduler::slot_of(const Request& r, int64_t position) const {
  const auto page_index = static_cast<std::size_t>(position / cfg_.block_size);
  RCSIM_ASSERT(page_index < r.block_table.size(), "position {} beyond the block table of {}",
               position, r.id);
  return r.block_table[page_index] * cfg_.block_size + position % cfg_.block_size;
}

Step Scheduler::form_step(int64_t step_index) {
  Step step;
  step.index = step_index;
  int64_t budget = cfg_.token_budget;
  auto add_tokens = [&](int64_t ri, int64_t first, int64_t count, bool decode) {
    Request& r = requests_[static_cast<std::size_t>(ri)];
    for (int64_t p = first; p < first + count; ++p) {
      step.rows.push_back({ri, p, slot_of(r, p)});
    }
    step.last_row_of_request.emplace_back(ri, static_cast<int64_t>(step.rows.size()) - 1);
    (decode ? step.decode_tokens : step.prefill_tokens) += count;
    budget -= count;
  };
  // Decode first: a running request must not starve behind prefills.
  for (std::size_t i = 0; i < requests_.size() && budget > 0; ++i) {
    Request& r = requests_[i];
    if (r.finished || r.arrival_step > step_index || r.processed_tokens < r.prompt_tokens) continue;
    if (!blocks_->grow(r.block_table, r.processed_tokens + 1, cfg_.block_size)) continue;
    add_tokens(static_cast<int64_t>(i), r.processed_tokens, 1, true);
  }
  // Then chunked prefill in arrival order.
  for (std::size_t i = 0; i < requests_.size() && budget > 0; ++i) {
    Request& r = requests_[i];
    if (r.finished || r.arrival_step > step_index || r.processed_tokens >= r.prompt_tokens) continue;
    const int64_t chunk = std::min(budget, r.prompt_tokens - r.processed_tokens);
    if (!blocks_->grow(r.block_table, r.processed_tokens + chunk, cfg_.block_size)) continue;
    add_tokens(static_cast<int64_t>(i), r.processed_tokens, chunk, false);
  }
  step.real_tokens = static_cast<int64_t>(step.rows.size());
  if (step.real_tokens == 0) return step;
  const int64_t padded = bucket_for(cfg_.buckets, step.real_tokens);
  for (int64_t i = step.real_tokens; i < padded; ++i) step.rows.push_back({-1, 0, -1});
  return step;
}

void Scheduler::commit(const Step& step) {
  for (const auto& [ri, row] : step.last_row_of_request) {
    Request& r = requests_[static_cast<std::size_t>(ri)];
    r.processed_tokens = step.rows[static_cast<std::size_t>(row)].position + 1;
    RCSIM_ASSERT(r.processed_tokens <= r.total_tokens(), "request {} over-processed", r.id);
    if (r.processed_tokens == r.total_tokens()) {
      r.finished = true;
      blocks_->release(r.block_table);
    }
  }
}

bool Scheduler::all_finished() const {
  return std::all_of(requests_.begin(), requests_.end(), [](const Request& r) { return r.finished; });
}

int64_t Scheduler::finished_count() const {
  return std::count_if(requests_.begin(), requests_.end(),
                       [](const Request& r) { return r.finished; });
}

}  // namespace rcsim::sim
