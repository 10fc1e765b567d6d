// Vendor runtime calls behind gpu_runtime.h, and the single mapping from vendor error codes to
// rcsim::KernelError fault classes (style.md item 4: "vendor error codes become exceptions in
// exactly one place").
#include "kernels/hip/gpu_runtime.h"

#include <cstdlib>
#include <cstring>
#include <string>

#include "core/errors.h"
#include "kernels/hip/gpu_platform.h"

namespace rcsim::gpu {
namespace {

// Errors after which a real context only returns errors are sticky; allocation failure is its own
// class; a bad launch configuration is an invalid argument; the rest may succeed on retry.
FailureClass classify(hipError_t e) {
  if (e == hipErrorOutOfMemory) return FailureClass::kOutOfMemory;
  if (e == hipErrorInvalidValue) return FailureClass::kInvalidArgument;
  if (e == hipErrorIllegalAddress || e == hipErrorLaunchFailure || e == hipErrorAssert) {
    return FailureClass::kStickyDevice;
  }
  if (e == hipErrorNoDevice) return FailureClass::kUnavailable;
  return FailureClass::kLaunchFailure;
}

void check(hipError_t e, const char* what) {
  if (e == hipSuccess) return;
  throw KernelError(classify(e), what,
                    std::string(hipGetErrorName(e)) + " (" + hipGetErrorString(e) + ")",
                    /*injected=*/false);
}

hipStream_t as_stream(void* s) { return static_cast<hipStream_t>(s); }

}  // namespace

void check_last_error(const char* what) { check(hipGetLastError(), what); }

DeviceInfo query_device() {
  DeviceInfo info;
  info.platform = kPlatformName;
  info.warp_size_lanes = kWarpSizeLanes;
  int count = 0;
  if (hipGetDeviceCount(&count) != hipSuccess || count <= 0) {
    (void)hipGetLastError();  // clear the "no device" error so later calls start clean
    return info;
  }
  info.device_count = count;
  int dev = 0;
  check(hipGetDevice(&dev), "hipGetDevice");
  hipDeviceProp_t prop{};
  check(hipGetDeviceProperties(&prop, dev), "hipGetDeviceProperties");
  info.name = prop.name;
  info.global_memory_bytes = static_cast<int64_t>(prop.totalGlobalMem);
  info.l2_cache_bytes = static_cast<int64_t>(prop.l2CacheSize);
  info.multiprocessor_count = prop.multiProcessorCount;
  return info;
}

void select_device(int device_index) { check(hipSetDevice(device_index), "hipSetDevice"); }

int ctest_assigned_device() {
  const char* spec = std::getenv("CTEST_RESOURCE_GROUP_0_GPUS");
  if (spec == nullptr) return -1;
  const char* id = std::strstr(spec, "id:");
  return id == nullptr ? -1 : std::atoi(id + 3);
}

void* device_alloc(int64_t bytes) {
  void* p = nullptr;
  check(hipMalloc(&p, static_cast<size_t>(bytes > 0 ? bytes : 1)), "hipMalloc");
  return p;
}
void device_free(void* p) noexcept {
  if (p != nullptr) (void)hipFree(p);
}
void copy_to_device(void* dst, const void* src, int64_t bytes) {
  check(hipMemcpy(dst, src, static_cast<size_t>(bytes), hipMemcpyHostToDevice), "copy_to_device");
}
void copy_to_host(void* dst, const void* src, int64_t bytes) {
  check(hipMemcpy(dst, src, static_cast<size_t>(bytes), hipMemcpyDeviceToHost), "copy_to_host");
}
void copy_device_to_device(void* dst, const void* src, int64_t bytes, void* stream) {
  check(hipMemcpyAsync(dst, src, static_cast<size_t>(bytes), hipMemcpyDeviceToDevice,
                       as_stream(stream)),
        "copy_device_to_device");
}
void copy_device_2d(void* dst, int64_t dst_pitch_bytes, const void* src, int64_t src_pitch_bytes,
                    int64_t row_bytes, int64_t rows, void* stream) {
  check(hipMemcpy2DAsync(dst, static_cast<size_t>(dst_pitch_bytes), src,
                         static_cast<size_t>(src_pitch_bytes), static_cast<size_t>(row_bytes),
                         static_cast<size_t>(rows), hipMemcpyDeviceToDevice, as_stream(stream)),
        "copy_device_2d");
}
void fill_device_bytes(void* p, uint8_t value, int64_t bytes, void* stream) {
  check(hipMemsetAsync(p, value, static_cast<size_t>(bytes), as_stream(stream)), "fill_device");
}
void synchronize() { check(hipDeviceSynchronize(), "hipDeviceSynchronize"); }

EventTimer::EventTimer() {
  hipEvent_t a = nullptr;
  hipEvent_t b = nullptr;
  check(hipEventCreate(&a), "hipEventCreate");
  check(hipEventCreate(&b), "hipEventCreate");
  start_ = a;
  stop_ = b;
}
EventTimer::~EventTimer() {
  (void)hipEventDestroy(static_cast<hipEvent_t>(start_));
  (void)hipEventDestroy(static_cast<hipEvent_t>(stop_));
}
void EventTimer::start(void* stream) {
  check(hipEventRecord(static_cast<hipEvent_t>(start_), as_stream(stream)), "hipEventRecord");
}
void EventTimer::stop(void* stream) {
  check(hipEventRecord(static_cast<hipEvent_t>(stop_), as_stream(stream)), "hipEventRecord");
}
float EventTimer::elapsed_ms() {
  check(hipEventSynchronize(static_cast<hipEvent_t>(stop_)), "hipEventSynchronize");
  float ms = 0.0f;
  check(hipEventElapsedTime(&ms, static_cast<hipEvent_t>(start_), static_cast<hipEvent_t>(stop_)),
        "hipEventElapsedTime");
  return ms;
}

GraphRunner::GraphRunner() {
  hipStream_t s = nullptr;
  check(hipStreamCreate(&s), "hipStreamCreate");
  stream_ = s;
}
GraphRunner::~GraphRunner() {
  if (exec_ != nullptr) (void)hipGraphExecDestroy(static_cast<hipGraphExec_t>(exec_));
  if (graph_ != nullptr) (void)hipGraphDestroy(static_cast<hipGraph_t>(graph_));
  (void)hipStreamDestroy(as_stream(stream_));
}
void GraphRunner::begin_capture() {
  check(hipStreamBeginCapture(as_stream(stream_), hipStreamCaptureModeGlobal), "begin_capture");
}
void GraphRunner::end_capture() {
  hipGraph_t g = nullptr;
  check(hipStreamEndCapture(as_stream(stream_), &g), "end_capture");
  graph_ = g;
  hipGraphExec_t e = nullptr;
  check(hipGraphInstantiate(&e, g, nullptr, nullptr, 0), "hipGraphInstantiate");
  exec_ = e;
}
void GraphRunner::replay() {
  check(hipGraphLaunch(static_cast<hipGraphExec_t>(exec_), as_stream(stream_)), "hipGraphLaunch");
}

}  // namespace rcsim::gpu
