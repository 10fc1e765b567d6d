// Mirrors a case's tensors into device memory and back (case_device_mirror.h).
#include "fault_injection/cli/case_device_mirror.h"

#include <cstddef>
#include <cstring>

#include "core/check.h"
#include "fakes/faults/faulty_kernels.h"

namespace rcsim::cli {

CaseDeviceMirror::CaseDeviceMirror(sim::SimDevice& device, CaseTensors& ct) : device_(device) {
  for (auto& [name, t] : ct.t) pairs_.push_back({&t, device.upload_new(t)});
}

TensorView CaseDeviceMirror::to_host(const TensorView& dev) {
  if (dev.is_null() || find(dev, false) != nullptr) return remap(dev, false);
  const DeviceMemoryAccess access = device_.memory_access();
  RCSIM_ASSERT(static_cast<bool>(access.download), "case: no way to download {}", dev.describe());
  downloads_.push_back(std::make_unique<HostTensor>(access.download(dev)));
  return downloads_.back()->view();
}

RopeCacheInputs CaseDeviceMirror::to_device(const RopeCacheInputs& in) const {
  RopeCacheInputs d = in;
  for (TensorView* v : {&d.qkv, &d.q, &d.k, &d.v, &d.positions, &d.slot_mapping, &d.cos_sin_cache,
                        &d.q_weight, &d.k_weight, &d.cache.k_cache, &d.cache.v_cache,
                        &d.cache.k_scale, &d.cache.v_scale}) {
    *v = to_device(*v);
  }
  return d;
}

void CaseDeviceMirror::download_all() {
  for (Pair& p : pairs_) {
    const TensorView h = device_.host_view(p.device);
    const TensorView dst = p.host->view();
    if (p.host->bytes() > 0) {
      std::memcpy(dst.data(), h.data(), static_cast<std::size_t>(p.host->bytes()));
    }
  }
  device_.release_host_views();
}

// The pair whose buffer (host side or device side) holds the view's first element: sub-views
// such as q/k inside qkv resolve by address, whatever base and offset they were built with.
const CaseDeviceMirror::Pair* CaseDeviceMirror::find(const TensorView& v, bool host_side) const {
  const std::byte* first = v.data();
  for (const Pair& p : pairs_) {
    const TensorView b = host_side ? p.host->view() : p.device->view();
    if (first >= b.data() && first < b.data() + b.span_bytes()) return &p;
  }
  return nullptr;
}

TensorView CaseDeviceMirror::remap(const TensorView& v, bool to_dev) const {
  if (v.is_null()) return v;
  const Pair* p = find(v, to_dev);
  RCSIM_ASSERT(p != nullptr, "case: no mirror for {}", v.describe());
  const TensorView from = to_dev ? p->host->view() : p->device->view();
  const TensorView to = to_dev ? p->device->view() : p->host->view();
  TensorView out = v;
  out.base = to.data() + (v.base - from.data());
  out.device = to.device;
  return out;
}

}  // namespace rcsim::cli
