// Goal: the mocks are usable stand-ins for every interface of core/kernel_interfaces.h, and the
// host MemoryBackend they delegate to honours the WorkLimit contract (exactly the first k
// elements, row-major, any strides; nothing else touched).
// Method: a StrictMock set proves each mock overrides its interface's method; copies into
// sentinel-filled destinations are checked element by element.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/prng.h"
#include "fakes/mocks/kernel_mocks.h"

namespace rcsim::fakes {
namespace {

using ::testing::_;
using ::testing::Return;

TEST(Mocks, EveryInterfaceIsMockedAndReachableThroughKernelSet) {
  MockKernels<::testing::StrictMock> m;
  const KernelSet k = m.kernels();
  EXPECT_CALL(m.fused, run(_)).WillOnce(Return(KernelRun{3, 1}));
  EXPECT_CALL(m.rope_reshape_cache, run(_)).WillOnce(Return(KernelRun{}));
  EXPECT_CALL(m.rotary, run(_)).WillOnce(Return(KernelRun{}));
  EXPECT_CALL(m.rms_norm, run(_)).WillOnce(Return(KernelRun{}));
  EXPECT_CALL(m.reshape_and_cache, run(_)).WillOnce(Return(KernelRun{}));
  EXPECT_CALL(m.per_token_quant_cache, run(_)).WillOnce(Return(KernelRun{}));
  EXPECT_CALL(m.memory, device()).WillOnce(Return(DeviceTag::kGpu));
  EXPECT_EQ(k.fused->run({}).units_completed, 1);
  k.rope_reshape_cache->run({});
  k.rotary->run({});
  k.rms_norm->run({});
  k.reshape_and_cache->run({});
  k.per_token_quant_cache->run({});
  EXPECT_EQ(k.memory->device(), DeviceTag::kGpu);
  MockDeviceBuffer buffer;
  EXPECT_CALL(buffer, view()).WillOnce(Return(TensorView{}));
  EXPECT_TRUE(buffer.view().is_null());
}

TEST(Mocks, MemoryMockDelegatesToRealHostMemory) {
  ::testing::NiceMock<MockMemoryBackend> memory;
  const int64_t shape[] = {3, 4};
  auto buffer = memory.allocate(DType::kFP32, shape);
  ASSERT_NE(buffer, nullptr);
  EXPECT_TRUE(buffer->view().same_shape({3, 4}));
  EXPECT_EQ(memory.device(), DeviceTag::kHost);
}

TEST(HostMemory, CopyStopsAfterExactlyKElementsInRowMajorOrder) {
  Prng rng = Prng::stream(0xC0FFEE, "host-memory");
  HostTensor src(DType::kBF16, {4, 6});
  for (uint16_t& e : src.as<uint16_t>()) e = static_cast<uint16_t>(1 + rng.below(0xFFFE));
  // Destination: the first 6 columns of a [4, 9] buffer, so strides differ from the source's.
  HostTensor wide(DType::kBF16, {4, 9});
  HostMemoryBackend memory;
  for (int64_t k : {int64_t{0}, int64_t{1}, int64_t{7}, int64_t{23}, int64_t{24}, int64_t{99}}) {
    wide.fill_pattern(0xEE);
    TensorView dst = wide.view();
    dst.shape[1] = 6;
    const KernelRun run = memory.copy(src.view(), dst, WorkLimit{k});
    EXPECT_EQ(run.units_total, 24);
    EXPECT_EQ(run.units_completed, std::min<int64_t>(k, 24));
    for (int64_t r = 0; r < 4; ++r) {
      for (int64_t c = 0; c < 9; ++c) {
        const uint16_t got = wide.as<uint16_t>()[static_cast<std::size_t>(r * 9 + c)];
        const bool copied = c < 6 && r * 6 + c < k;
        const uint16_t want =
            copied ? src.as<uint16_t>()[static_cast<std::size_t>(r * 6 + c)] : uint16_t{0xEEEE};
        ASSERT_EQ(got, want) << "k=" << k << " row " << r << " col " << c;
      }
    }
  }
  HostTensor other(DType::kFP16, {4, 6});
  EXPECT_THROW(memory.copy(src.view(), other.view()), InvalidInput);
}

}  // namespace
}  // namespace rcsim::fakes
