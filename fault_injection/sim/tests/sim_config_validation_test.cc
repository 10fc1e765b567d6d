// Goal (issue 9): every bad `rcsim run` option is rejected with InvalidInput naming the option,
// before a run starts. Method: each row edits one field of a valid config (or one override) and
// asserts validate_sim_config / sample_config throws with the expected words; the valid config
// itself is accepted, so each row fails for its own reason only.
#include <functional>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/check.h"
#include "core/limits.h"
#include "fault_injection/sim/sim_config.h"

namespace rcsim::sim {
namespace {

using ::testing::HasSubstr;

struct Row {
  std::string what;
  std::function<void(SimConfig&)> edit;
  std::string expected;
};

TEST(SimConfigValidation, EveryBadFieldIsRejectedWithItsName) {
  const SimConfig good = sample_config(7, SimOverrides{});
  ASSERT_NO_THROW(validate_sim_config(good));
  const std::vector<Row> rows = {
      {"model", [](SimConfig& c) { c.model = "qwen4"; }, "unknown model 'qwen4'"},
      {"layers 0", [](SimConfig& c) { c.layers = 0; }, "layers 0 outside"},
      {"layers max+1", [](SimConfig& c) { c.layers = limits::kLayersMax + 1; }, "layers"},
      {"steps negative", [](SimConfig& c) { c.steps = -1; }, "steps -1"},
      {"steps beyond limit", [](SimConfig& c) { c.steps = limits::kSimStepsMax; }, "steps"},
      {"backend", [](SimConfig& c) { c.backend = "tpu"; }, "backend 'tpu'"},
      {"requests 0", [](SimConfig& c) { c.requests = 0; }, "requests 0 outside"},
      {"token budget", [](SimConfig& c) { c.token_budget = limits::kTokensPerBatchMax + 1; },
       "token budget"},
      {"prompt max 0", [](SimConfig& c) { c.prompt_tokens_max = 0; }, "must be >= 1"},
      {"positions beyond the table",
       [](SimConfig& c) { c.prompt_tokens_max = c.max_position; }, "rope table"},
      {"sliding window", [](SimConfig& c) { c.sliding_window = -2; }, "sliding_window -2"},
      {"fault spec", [](SimConfig& c) { c.faults = "fused:tron"; }, "tron"},
      {"fault spec too long",
       [](SimConfig& c) { c.faults = std::string(limits::kFaultSpecCharsMax + 1, ' '); },
       "too long"},
  };
  for (const Row& row : rows) {
    SimConfig bad = good;
    row.edit(bad);
    try {
      validate_sim_config(bad);
      ADD_FAILURE() << row.what << ": accepted";
    } catch (const InvalidInput& e) {
      EXPECT_THAT(e.what(), HasSubstr(row.expected)) << row.what;
    }
  }
}

TEST(SimConfigValidation, UnknownOverrideNamesAreRejected) {
  SimOverrides bad_model;
  bad_model.model = "llama";
  EXPECT_THROW(sample_config(1, bad_model), InvalidInput);
  SimOverrides bad_faults;
  bad_faults.faults = "fused:torn(k=";
  EXPECT_THROW(sample_config(1, bad_faults), InvalidInput);
  SimOverrides bad_layers;
  bad_layers.layers = 0;
  EXPECT_THROW(sample_config(1, bad_layers), InvalidInput);
}

}  // namespace
}  // namespace rcsim::sim
