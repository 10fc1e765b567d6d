// DispatchProcess: the process-wide state of one simulated serving process (log-once, counters,
// sticky disable, device health). See rope_cache_dispatcher.h.
//
// Why a mutex around the once-set *and* the logging: the "exactly one line per (kernel, class)"
// promise is about what the sink receives. Deciding and logging under one lock means no thread can
// observe "already warned" before the line reached the sink, and the ring keeps calls in order.
#include <array>
#include <deque>
#include <set>
#include <utility>

#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>

#include "core/dispatch/rope_cache_dispatcher.h"
#include "core/mutants.h"

namespace rcsim {
namespace {

// Keeps the last kLogLinesMax formatted lines ("warning: ...", "error: ..."), oldest dropped.
class CaptureSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  std::vector<std::string> lines() {
    std::lock_guard<std::mutex> lock(mutex_);
    return {ring_.begin(), ring_.end()};
  }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    const auto level = spdlog::level::to_string_view(msg.level);
    std::string line(level.data(), level.size());
    line += ": ";
    line.append(msg.payload.data(), msg.payload.size());
    if (static_cast<int64_t>(ring_.size()) >= DispatchProcess::kLogLinesMax) ring_.pop_front();
    ring_.push_back(std::move(line));
  }
  void flush_() override {}

 private:
  std::deque<std::string> ring_;
};

constexpr std::size_t class_index(FailureClass c) { return static_cast<std::size_t>(c); }

}  // namespace

struct DispatchProcess::Impl {
  std::shared_ptr<CaptureSink> sink = std::make_shared<CaptureSink>();
  // Named but deliberately not registered with spdlog's global registry: many simulated
  // processes live in one real process, and each must have its own once-set and sink.
  std::shared_ptr<spdlog::logger> logger = std::make_shared<spdlog::logger>(std::string(kLoggerName), sink);
  mutable std::mutex once_mutex;
  std::set<std::pair<std::string, FailureClass>> warned;
  std::set<std::pair<std::string, FailureClass>> errored;
  std::array<std::atomic<int64_t>, std::size(kAllFailureClasses)> fallbacks{};
  std::atomic<bool> fused_disabled{false};
  std::atomic<bool> device_healthy{true};

  bool log_once(std::set<std::pair<std::string, FailureClass>>& seen, spdlog::level::level_enum lvl,
                std::string_view kernel, FailureClass failure_class, std::string_view message) {
    std::lock_guard<std::mutex> lock(once_mutex);
    const bool first = seen.emplace(std::string(kernel), failure_class).second;
    // The kWarnPerCall mutant models a log guard that was lost (e.g. an instance attribute
    // instead of a class attribute): the line is emitted on every call.
    const bool emit = first || (lvl == spdlog::level::warn && mutant_active(Mutant::kWarnPerCall));
    if (emit) logger->log(lvl, "{}", message);
    return emit;
  }
};

DispatchProcess::DispatchProcess() : impl_(std::make_unique<Impl>()) {
  impl_->logger->set_level(spdlog::level::trace);
}
DispatchProcess::~DispatchProcess() = default;

bool DispatchProcess::warn_fallback_once(std::string_view kernel, FailureClass failure_class,
                                         std::string_view detail) {
  // The wording follows PR #279's warning, with the failure class named so that out-of-memory and
  // invalid-argument fallbacks are distinguishable in a log.
  const std::string message =
      fmt::format("{} failed [{}] ({}), falling back to non-fused path", kernel,
                  failure_class_name(failure_class), detail);
  return impl_->log_once(impl_->warned, spdlog::level::warn, kernel, failure_class, message);
}

bool DispatchProcess::error_once(std::string_view kernel, FailureClass failure_class,
                                 std::string_view detail) {
  const std::string message =
      fmt::format("{} failed [{}] ({}), not falling back", kernel,
                  failure_class_name(failure_class), detail);
  return impl_->log_once(impl_->errored, spdlog::level::err, kernel, failure_class, message);
}

void DispatchProcess::count_fallback(FailureClass failure_class) {
  impl_->fallbacks[class_index(failure_class)].fetch_add(1, std::memory_order_relaxed);
}
int64_t DispatchProcess::fallback_count(FailureClass failure_class) const {
  return impl_->fallbacks[class_index(failure_class)].load(std::memory_order_relaxed);
}
int64_t DispatchProcess::fallback_count_total() const {
  int64_t total = 0;
  for (const auto& c : impl_->fallbacks) total += c.load(std::memory_order_relaxed);
  return total;
}

bool DispatchProcess::fused_disabled() const { return impl_->fused_disabled.load(); }
void DispatchProcess::disable_fused() { impl_->fused_disabled.store(true); }
bool DispatchProcess::device_healthy() const { return impl_->device_healthy.load(); }
void DispatchProcess::mark_device_unhealthy() { impl_->device_healthy.store(false); }

std::vector<std::string> DispatchProcess::log_lines() const { return impl_->sink->lines(); }
std::shared_ptr<spdlog::logger> DispatchProcess::logger() const { return impl_->logger; }

}  // namespace rcsim
