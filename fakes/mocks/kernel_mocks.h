// GMock mocks of every interface in core/kernel_interfaces.h, and a bundle that hands them to a
// dispatcher as a KernelSet. Used to assert the dispatcher's contract: which kernels it calls, in
// which order, with which arguments, and what it does when one throws.
//
// MockMemoryBackend delegates to a real HostMemoryBackend unless a test overrides an action, so a
// backup really is taken and a restore really writes bytes that a test can compare.
#pragma once

#include <cstdint>
#include <memory>
#include <span>

#include <gmock/gmock.h>

#include "core/kernel_interfaces.h"
#include "fakes/mocks/host_memory.h"

namespace rcsim::fakes {

class MockFusedQkNormRopeCacheKernel : public FusedQkNormRopeCacheKernel {
 public:
  MOCK_METHOD(KernelRun, run, (const FusedQkNormRopeCacheArgs& args), (override));
};
class MockRopeReshapeCacheKernel : public RopeReshapeCacheKernel {
 public:
  MOCK_METHOD(KernelRun, run, (const RopeReshapeCacheArgs& args), (override));
};
class MockRotaryEmbeddingKernel : public RotaryEmbeddingKernel {
 public:
  MOCK_METHOD(KernelRun, run, (const RotaryArgs& args), (override));
};
class MockRmsNormKernel : public RmsNormKernel {
 public:
  MOCK_METHOD(KernelRun, run, (const RmsNormArgs& args), (override));
};
class MockReshapeAndCacheKernel : public ReshapeAndCacheKernel {
 public:
  MOCK_METHOD(KernelRun, run, (const ReshapeAndCacheArgs& args), (override));
};
class MockPerTokenQuantCacheKernel : public PerTokenQuantCacheKernel {
 public:
  MOCK_METHOD(KernelRun, run, (const PerTokenQuantCacheArgs& args), (override));
};
class MockDeviceBuffer : public DeviceBuffer {
 public:
  MOCK_METHOD(TensorView, view, (), (const, override));
};
class MockMemoryBackend : public MemoryBackend {
 public:
  MockMemoryBackend() { delegate_to_host(); }
  MOCK_METHOD(DeviceTag, device, (), (const, override));
  MOCK_METHOD(std::unique_ptr<DeviceBuffer>, allocate,
              (DType dtype, std::span<const int64_t> shape), (override));
  MOCK_METHOD(KernelRun, copy, (const TensorView& src, const TensorView& dst, WorkLimit limit),
              (override));

  // Default actions: real host memory (see HostMemoryBackend).
  void delegate_to_host() {
    ON_CALL(*this, device()).WillByDefault(::testing::Return(DeviceTag::kHost));
    ON_CALL(*this, allocate)
        .WillByDefault([this](DType dtype, std::span<const int64_t> shape) {
          return host_.allocate(dtype, shape);
        });
    ON_CALL(*this, copy).WillByDefault(
        [this](const TensorView& src, const TensorView& dst, WorkLimit limit) {
          return host_.copy(src, dst, limit);
        });
  }
  HostMemoryBackend& host() { return host_; }

 private:
  HostMemoryBackend host_;
};

// One mock of each kernel. `Mock` is NiceMock (uninteresting calls allowed) or StrictMock.
template <template <typename> class Mock = ::testing::NiceMock>
struct MockKernels {
  Mock<MockFusedQkNormRopeCacheKernel> fused;
  Mock<MockRopeReshapeCacheKernel> rope_reshape_cache;
  Mock<MockRotaryEmbeddingKernel> rotary;
  Mock<MockRmsNormKernel> rms_norm;
  Mock<MockReshapeAndCacheKernel> reshape_and_cache;
  Mock<MockPerTokenQuantCacheKernel> per_token_quant_cache;
  Mock<MockMemoryBackend> memory;

  KernelSet kernels() {
    return {&fused, &rope_reshape_cache, &rotary, &rms_norm, &reshape_and_cache,
            &per_token_quant_cache, &memory};
  }
};

}  // namespace rcsim::fakes
