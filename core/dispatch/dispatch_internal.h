// Internals shared by the dispatcher's source files (not part of its interface): the stage labels
// that key the log-once table, a caught stage failure, guarded(), input validation, and the state
// of one rope_cache() call (RopeCacheDispatcher::Call).
#pragma once

#include <cstdint>
#include <memory>
#include <new>
#include <optional>
#include <string>
#include <string_view>

#include <fmt/format.h>

#include "core/dispatch/rope_cache_dispatcher.h"

namespace rcsim::dispatch_detail {

// Stage labels: the log-once key for failures outside a named kernel.
inline constexpr std::string_view kStageBackup = "qkv_backup";
inline constexpr std::string_view kStageRestore = "qkv_restore";
inline constexpr std::string_view kStageScratch = "out_of_place_scratch";
inline constexpr std::string_view kStageCommit = "out_of_place_commit";
inline constexpr std::string_view kStageNormStorage = "norm_storage";

// A failure caught at one stage of a call: what the log-once key and the DispatchError carry.
struct StageFailure {
  FailureClass failure_class = FailureClass::kLaunchFailure;
  bool injected = false;
  std::string stage;   // kernel name or stage label (log key)
  std::string detail;  // the exception's message
};

// Runs `fn`, turning every exception a kernel or the memory backend may throw into a
// StageFailure. Like PR #279's `except Exception`, nothing escapes: InvalidInput from an op's
// argument checks is the op rejecting its arguments, bad_alloc is out of memory.
template <typename Fn>
std::optional<StageFailure> guarded(std::string_view stage, Fn&& fn) {
  try {
    fn();
    return std::nullopt;
  } catch (const KernelError& e) {
    return StageFailure{e.failure_class(), e.injected(), std::string(stage), e.what()};
  } catch (const InvalidInput& e) {
    return StageFailure{FailureClass::kInvalidArgument, false, std::string(stage), e.what()};
  } catch (const std::bad_alloc& e) {
    return StageFailure{FailureClass::kOutOfMemory, false, std::string(stage), e.what()};
  } catch (const std::exception& e) {
    return StageFailure{FailureClass::kLaunchFailure, false, std::string(stage),
                        fmt::format("untyped exception: {}", e.what())};
  }
}

bool is_shape(const TensorView& t, std::initializer_list<int64_t> shape);
std::string describe_or_null(const TensorView& t);

// Derives q/k/v from qkv when the caller gave only qkv, and checks every input the chosen branch
// may read, before anything is written (InvalidInput).
RopeCacheInputs resolve_and_validate(const LayerSpec& spec, const RopeCacheInputs& raw,
                                     Branch planned);

}  // namespace rcsim::dispatch_detail

namespace rcsim {

// Everything one call needs while it runs; keeps rope_cache() readable.
class RopeCacheDispatcher::Call {
 public:
  Call(const RopeCacheDispatcher& owner, const RopeCacheInputs& in)
      : spec_(owner.spec_), k_(owner.kernels_), process_(*owner.process_), in_(in) {}

  RopeCacheResult run(Branch planned);

 private:
  // What the fused attempt keeps between its steps: the backup and the part of qkv it covers,
  // or the out-of-place scratch outputs, and the kernel's arguments.
  struct FusedGuard {
    std::unique_ptr<DeviceBuffer> backup;
    TensorView region;
    std::unique_ptr<DeviceBuffer> q_scratch, k_scratch;
    FusedQkNormRopeCacheArgs args;
  };
  bool attempt_fused(dispatch_detail::StageFailure& why);
  std::optional<dispatch_detail::StageFailure> fused_skipped_by_policy();
  FusedGuard guard_fused();
  std::optional<dispatch_detail::StageFailure> call_fused(FusedGuard& g);
  void recover_fused(const dispatch_detail::StageFailure& failure, FusedGuard& g);
  void run_fused_without_fallback();
  void run_branch_b();
  void run_branch_c();
  [[noreturn]] void surface(const dispatch_detail::StageFailure& f, std::string_view context);
  void require_kernel(const void* kernel, std::string_view name);
  std::unique_ptr<DeviceBuffer> allocate(std::string_view stage, DType dtype,
                                         std::initializer_list<int64_t> shape);
  void check(std::optional<dispatch_detail::StageFailure> f, std::string_view context) {
    if (f) surface(*f, context);
  }

  const LayerSpec& spec_;
  const KernelSet& k_;
  DispatchProcess& process_;
  const RopeCacheInputs& in_;
  RopeCacheResult result_;
  std::string fused_failure_note_;  // prefixed to a later error, so one line tells the story
};

}  // namespace rcsim
