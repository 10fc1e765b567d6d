// Campaign progress on stderr: a live line on a terminal; off one (CI logs), a line every
// `every_seconds` (0: only the last) and always one at the end, with seeds done, faults injected,
// failures, elapsed time and an ETA.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "fault_injection/sim/campaign.h"

namespace rcsim::cli {

class CampaignProgressPrinter {
 public:
  explicit CampaignProgressPrinter(int64_t every_seconds);

  // After each seed: `done` seeds of r.seeds_planned have run.
  void update(int64_t done, const sim::CampaignResult& r);
  // The last line, always printed.
  void finish(const sim::CampaignResult& r);

 private:
  double seconds() const;
  static std::string line(int64_t done, const sim::CampaignResult& r, double t);

  bool tty_;
  int64_t every_seconds_;
  std::chrono::steady_clock::time_point start_;
  double last_print_ = 0;
};

}  // namespace rcsim::cli
