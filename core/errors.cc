#include "core/errors.h"

namespace rcsim {

std::optional<FailureClass> failure_class_from_name(std::string_view name) {
  for (FailureClass c : kAllFailureClasses) {
    if (failure_class_name(c) == name) return c;
  }
  return std::nullopt;
}

}  // namespace rcsim
