// The device runtime as the rest of rcsim sees it: allocation, host<->device copies, events and
// device facts, with no vendor names (the implementation, gpu_runtime.hip, is the one place where
// vendor error codes become rcsim::KernelError). Host-compiler clean.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace rcsim::gpu {

struct DeviceInfo {
  int device_count = 0;
  std::string name;          // e.g. "NVIDIA H100 80GB HBM3"
  std::string platform;      // "cuda" or "hip-amd"
  int64_t global_memory_bytes = 0;
  int64_t l2_cache_bytes = 0;
  int multiprocessor_count = 0;
  int warp_size_lanes = 0;
};
// Returns device_count == 0 (and no throw) when the runtime finds no device.
DeviceInfo query_device();

// Makes `device_index` current for this thread (CTest resource groups hand one GPU to each test).
void select_device(int device_index);
// The GPU CTest assigned through CTEST_RESOURCE_GROUP_0_GPUS ("id:N,slots:1"), or -1 when unset.
int ctest_assigned_device();

// Throws KernelError(kOutOfMemory) when the device has no room.
void* device_alloc(int64_t bytes);
void device_free(void* p) noexcept;
void copy_to_device(void* dst, const void* src, int64_t bytes);
void copy_to_host(void* dst, const void* src, int64_t bytes);
void copy_device_to_device(void* dst, const void* src, int64_t bytes, void* stream);
// rows x row_bytes between pitched device buffers (the q/k slice of qkv, for instance).
void copy_device_2d(void* dst, int64_t dst_pitch_bytes, const void* src, int64_t src_pitch_bytes,
                    int64_t row_bytes, int64_t rows, void* stream);
void fill_device_bytes(void* p, uint8_t value, int64_t bytes, void* stream);
void synchronize();

// Raises the last launch/runtime error of this thread as KernelError naming `what`.
void check_last_error(const char* what);

// Device-event timing for the benchmarks (time between two recorded points, milliseconds).
class EventTimer {
 public:
  EventTimer();
  ~EventTimer();
  EventTimer(const EventTimer&) = delete;
  EventTimer& operator=(const EventTimer&) = delete;
  void start(void* stream);
  void stop(void* stream);
  float elapsed_ms();

 private:
  void* start_ = nullptr;
  void* stop_ = nullptr;
};

// A stream and a captured graph of whatever ran between begin_capture and end_capture.
class GraphRunner {
 public:
  GraphRunner();
  ~GraphRunner();
  GraphRunner(const GraphRunner&) = delete;
  GraphRunner& operator=(const GraphRunner&) = delete;
  void* stream() const { return stream_; }
  void begin_capture();
  void end_capture();
  void replay();

 private:
  void* stream_ = nullptr;
  void* graph_ = nullptr;
  void* exec_ = nullptr;
};

}  // namespace rcsim::gpu
