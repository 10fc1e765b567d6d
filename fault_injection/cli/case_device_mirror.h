// The GPU side of a case: every input tensor mirrored into device memory, the views remapped onto
// the mirrors, and after the call every mirror downloaded back into the host tensors (so the
// outputs are written exactly as on the CPU backend).
#pragma once

#include <memory>
#include <vector>

#include "core/dispatch/rope_cache_dispatcher.h"
#include "core/tensor.h"
#include "fault_injection/cli/case_inputs.h"
#include "fault_injection/sim/sim_device.h"

namespace rcsim::cli {

class CaseDeviceMirror {
 public:
  // Uploads every tensor of `ct`; `ct` must outlive the mirror (download_all writes into it).
  CaseDeviceMirror(sim::SimDevice& device, CaseTensors& ct);

  TensorView to_device(const TensorView& host) const { return remap(host, true); }
  // Every view of the call's arguments remapped onto the device mirrors.
  RopeCacheInputs to_device(const RopeCacheInputs& in) const;
  // A device output that aliases no mirrored input (branch C's q/k live in the dispatcher's own
  // norm storage) is downloaded into a host tensor this mirror keeps.
  TensorView to_host(const TensorView& dev);
  // Copies every mirror back into its host tensor (after the call).
  void download_all();

 private:
  struct Pair {
    HostTensor* host;
    sim::DeviceTensor device;
  };
  const Pair* find(const TensorView& v, bool host_side) const;
  TensorView remap(const TensorView& v, bool to_dev) const;

  sim::SimDevice& device_;
  std::vector<Pair> pairs_;
  std::vector<std::unique_ptr<HostTensor>> downloads_;
};

}  // namespace rcsim::cli
