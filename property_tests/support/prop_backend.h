// The kernels the property suites run on (issue 14 item 3). By default the CPU reference; with
// RCSIM_PROPERTY_BACKEND=gpu, in a build with the GPU backend, the GPU kernels of kernels/hip:
// each call's host tensors are mirrored into device memory (one upload per host buffer the call
// touches), the GPU kernel runs on the mirrors (a WorkLimit is the kernel's own device-side unit
// limit, so torn writes happen on the device), and the mirrors are downloaded back before the
// property compares. The properties and their oracles are unchanged: the oracles that name the
// CPU reference explicitly (check_restore's composition) stay on the CPU.
//
// Without a visible GPU, RCSIM_PROPERTY_BACKEND=gpu exits the test binary with code 77 (CTest's
// SKIP_RETURN_CODE) and the reason, unless RCSIM_REQUIRE_GPU=1 makes that a failure.
#pragma once

#include <memory>
#include <string_view>

#include "core/kernel_interfaces.h"

namespace rcsim::props {

class PropBackend {
 public:
  PropBackend();
  ~PropBackend();
  PropBackend(const PropBackend&) = delete;
  PropBackend& operator=(const PropBackend&) = delete;
  KernelSet kernels();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// "cpu" or "gpu" (RCSIM_PROPERTY_BACKEND; unknown values abort with a message).
std::string_view prop_backend_name();

}  // namespace rcsim::props
