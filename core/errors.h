// How a kernel reports failure: it throws KernelError, as the real op does through its Python
// binding. Only the dispatcher catches it. Every fault rcsim injects is tagged `injected`, so an
// untagged KernelError in a test run is a real bug in rcsim or in the code under test.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <optional>

namespace rcsim {

enum class FailureClass : uint8_t {
  kUnavailable,      // the module is not built / cannot be loaded (CK-free build). Permanent.
  kLaunchFailure,    // a launch failed; the device is fine and a retry may succeed. Transient.
  kInvalidArgument,  // the op rejected its arguments (shape, dtype, layout). A caller bug.
  kStickyDevice,     // the device context is poisoned: every later call on it fails too.
  kOutOfMemory,      // an allocation failed (the backup, a scratch buffer, the kernel's own).
};
inline constexpr FailureClass kAllFailureClasses[] = {
    FailureClass::kUnavailable, FailureClass::kLaunchFailure, FailureClass::kInvalidArgument,
    FailureClass::kStickyDevice, FailureClass::kOutOfMemory};

constexpr std::string_view failure_class_name(FailureClass c) {
  switch (c) {
    case FailureClass::kUnavailable: return "unavailable";
    case FailureClass::kLaunchFailure: return "launch_failure";
    case FailureClass::kInvalidArgument: return "invalid_argument";
    case FailureClass::kStickyDevice: return "sticky_device";
    case FailureClass::kOutOfMemory: return "out_of_memory";
  }
  return "?";
}
std::optional<FailureClass> failure_class_from_name(std::string_view name);

class KernelError : public std::runtime_error {
 public:
  KernelError(FailureClass failure_class, std::string kernel, std::string detail, bool injected)
      : std::runtime_error(std::string(kernel) + ": " + std::string(failure_class_name(failure_class)) +
                           ": " + detail + (injected ? " [injected]" : "")),
        failure_class_(failure_class),
        kernel_(std::move(kernel)),
        injected_(injected) {}

  FailureClass failure_class() const { return failure_class_; }
  const std::string& kernel() const { return kernel_; }
  bool injected() const { return injected_; }

 private:
  FailureClass failure_class_;
  std::string kernel_;
  bool injected_;
};

}  // namespace rcsim
