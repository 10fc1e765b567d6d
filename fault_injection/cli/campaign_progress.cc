// Prints a campaign's progress (campaign_progress.h).
#include "fault_injection/cli/campaign_progress.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

#include <fmt/format.h>

namespace rcsim::cli {
namespace {

// "42s", "3m07s" or "2h05m": short enough for a progress line, exact enough for an ETA.
std::string format_seconds(double seconds) {
  const auto s = static_cast<int64_t>(std::llround(std::max(0.0, seconds)));
  if (s < 120) return fmt::format("{}s", s);
  if (s < 7200) return fmt::format("{}m{:02}s", s / 60, s % 60);
  return fmt::format("{}h{:02}m", s / 3600, s % 3600 / 60);
}

}  // namespace

CampaignProgressPrinter::CampaignProgressPrinter(int64_t every_seconds)
    : tty_(isatty(STDERR_FILENO) != 0), every_seconds_(every_seconds),
      start_(std::chrono::steady_clock::now()) {}

void CampaignProgressPrinter::update(int64_t done, const sim::CampaignResult& r) {
  const double t = seconds();
  if (tty_) {
    fmt::print(stderr, "\r{}", line(done, r, t));
    std::fflush(stderr);
  } else if (every_seconds_ > 0 && t - last_print_ >= static_cast<double>(every_seconds_)) {
    fmt::print(stderr, "{}\n", line(done, r, t));
    last_print_ = t;
  }
}

void CampaignProgressPrinter::finish(const sim::CampaignResult& r) {
  fmt::print(stderr, "{}{} (done)\n", tty_ ? "\r" : "", line(r.runs, r, seconds()));
}

double CampaignProgressPrinter::seconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

std::string CampaignProgressPrinter::line(int64_t done, const sim::CampaignResult& r, double t) {
  const int64_t total = r.seeds_planned;
  const double eta =
      done > 0 ? t / static_cast<double>(done) * static_cast<double>(total - done) : 0;
  return fmt::format("progress: {}/{} seeds, {} faults, {} failed, {} elapsed, ETA {}", done, total,
                     r.faults.injection_count_total(), r.failed, format_seconds(t),
                     done > 0 ? format_seconds(eta) : "?");
}

}  // namespace rcsim::cli
