// The one place vendor names appear. Kernels and launchers are written against the HIP runtime
// API; this header makes that API real for both compilers:
//  - hipcc (AMD, HIP_PLATFORM=amd): the real <hip/hip_runtime.h>.
//  - nvcc (NVIDIA): Debian's HIP 5.2 NVIDIA headers do not compile against CUDA 13, so the few
//    HIP runtime calls and device intrinsics rcsim uses are mapped onto CUDA here, one by one.
// Nothing else in rcsim may include a vendor header or name a vendor type.
//
// Warp (wavefront) width differs per vendor and is only ever read from kWarpSizeLanes. The fused
// kernel's reductions run inside 32-lane groups (kGroupLanes), which fit in either width.
#pragma once

#if defined(__HIPCC__) && !defined(__CUDACC__)

#include <hip/hip_runtime.h>

namespace rcsim::gpu {
inline constexpr int kWarpSizeLanes = 64;  // CDNA (gfx90a, gfx940..): wave64
inline constexpr const char* kPlatformName = "hip-amd";
// Lane exchange inside a group of `width` lanes (width divides the wavefront).
template <typename T>
__device__ __forceinline__ T shfl_xor(T v, int lane_mask, int width) {
  return __shfl_xor(v, lane_mask, width);
}
template <typename T>
__device__ __forceinline__ T shfl_idx(T v, int src_lane, int width) {
  return __shfl(v, src_lane, width);
}
__device__ __forceinline__ void group_sync() { __syncthreads(); }
// True if a or b is NaN, as one unordered compare.
__device__ __forceinline__ bool either_nan(float a, float b) { return __builtin_isunordered(a, b); }
// True if the predicate holds on any lane of the calling wavefront (all lanes must call).
__device__ __forceinline__ bool warp_any(bool p) { return __any(p); }
// AMD GPUs give an arithmetic NaN the quiet bit and keep its payload (0x7FC00000 when made, as
// core/nan_class.h records): not the one canonical NaN the roundings could rely on.
inline constexpr bool kArithmeticNanIsCanonical = false;
// No hand-written 1/sqrt or 1/x sequences here (the CUDA branch says what they are): callers
// divide.
inline constexpr bool kHasReciprocalSequences = false;
__device__ __forceinline__ float reciprocal_in_range(float x) { return 1.0f / x; }
__device__ __forceinline__ float reciprocal_root_in_range(float x) { return 1.0f / sqrtf(x); }
// No packed fp32 -> bf16/fp16 rounding instruction on gfx90a/gfx940: the tiled kernels round in
// software (kernels/common/numeric.h) there.
inline constexpr bool kHasPackedRounding = false;
__device__ __forceinline__ uint32_t packed_round_bf16x2(float, float) { return 0; }
__device__ __forceinline__ uint32_t packed_round_fp16x2(float, float) { return 0; }
// No saturating fp32 -> e4m3 convert on gfx90a/gfx940 here: software.
inline constexpr bool kHasPackedE4m3fn = false;
__device__ __forceinline__ bool packed_e4m3fn_x2(float, float, uint32_t&) { return false; }
// 16- and 8-byte stores to global memory (the CUDA branch says why they are functions).
__device__ __forceinline__ void store_global_16(void* p, uint32_t a, uint32_t b, uint32_t c,
                                                uint32_t d) {
  *static_cast<uint4*>(p) = make_uint4(a, b, c, d);
}
__device__ __forceinline__ void store_global_8(void* p, uint32_t a, uint32_t b) {
  *static_cast<uint2*>(p) = make_uint2(a, b);
}
// A hint to fetch [p, p + bytes) into L2 (the CUDA branch issues one); none here, which is
// correct: it changes no value. Launchers skip the address math where this is false.
inline constexpr bool kHasL2Prefetch = false;
__device__ __forceinline__ void prefetch_l2(const void*, uint32_t) {}
// No programmatic dependent launch (the CUDA branch says what it is): a launch waits for the
// stream's previous work as every launch does, and the two device calls do nothing.
__device__ __forceinline__ void wait_for_previous_grid() {}
__device__ __forceinline__ void allow_next_grid_launch() {}
template <typename... Params, typename... Args>
void launch_programmatic(void (*kernel)(Params...), dim3 grid, dim3 block, hipStream_t s,
                         Args... args) {
  kernel<<<grid, block, 0, s>>>(args...);
}
}  // namespace rcsim::gpu

#elif defined(__CUDACC__)

#include <cuda_runtime.h>

// ---- runtime types and constants -------------------------------------------------------------
using hipError_t = cudaError_t;
using hipStream_t = cudaStream_t;
using hipEvent_t = cudaEvent_t;
using hipDeviceProp_t = cudaDeviceProp;
using hipMemcpyKind = cudaMemcpyKind;
using hipGraph_t = cudaGraph_t;
using hipGraphExec_t = cudaGraphExec_t;
inline constexpr hipError_t hipSuccess = cudaSuccess;
inline constexpr hipError_t hipErrorOutOfMemory = cudaErrorMemoryAllocation;
inline constexpr hipError_t hipErrorInvalidValue = cudaErrorInvalidValue;
inline constexpr hipError_t hipErrorIllegalAddress = cudaErrorIllegalAddress;
inline constexpr hipError_t hipErrorLaunchFailure = cudaErrorLaunchFailure;
inline constexpr hipError_t hipErrorAssert = cudaErrorAssert;
inline constexpr hipError_t hipErrorNoDevice = cudaErrorNoDevice;
inline constexpr hipMemcpyKind hipMemcpyHostToDevice = cudaMemcpyHostToDevice;
inline constexpr hipMemcpyKind hipMemcpyDeviceToHost = cudaMemcpyDeviceToHost;
inline constexpr hipMemcpyKind hipMemcpyDeviceToDevice = cudaMemcpyDeviceToDevice;
inline constexpr int hipStreamCaptureModeGlobal = cudaStreamCaptureModeGlobal;

// ---- runtime calls ---------------------------------------------------------------------------
inline hipError_t hipMalloc(void** p, size_t bytes) { return cudaMalloc(p, bytes); }
inline hipError_t hipFree(void* p) { return cudaFree(p); }
inline hipError_t hipMemcpy(void* dst, const void* src, size_t bytes, hipMemcpyKind kind) {
  return cudaMemcpy(dst, src, bytes, kind);
}
inline hipError_t hipMemcpyAsync(void* dst, const void* src, size_t bytes, hipMemcpyKind kind,
                                 hipStream_t s) {
  return cudaMemcpyAsync(dst, src, bytes, kind, s);
}
inline hipError_t hipMemcpy2DAsync(void* dst, size_t dpitch, const void* src, size_t spitch,
                                   size_t width, size_t height, hipMemcpyKind kind, hipStream_t s) {
  return cudaMemcpy2DAsync(dst, dpitch, src, spitch, width, height, kind, s);
}
inline hipError_t hipMemset(void* p, int value, size_t bytes) { return cudaMemset(p, value, bytes); }
inline hipError_t hipMemsetAsync(void* p, int value, size_t bytes, hipStream_t s) {
  return cudaMemsetAsync(p, value, bytes, s);
}
inline hipError_t hipDeviceSynchronize() { return cudaDeviceSynchronize(); }
inline hipError_t hipStreamSynchronize(hipStream_t s) { return cudaStreamSynchronize(s); }
inline hipError_t hipStreamCreate(hipStream_t* s) { return cudaStreamCreate(s); }
inline hipError_t hipStreamDestroy(hipStream_t s) { return cudaStreamDestroy(s); }
inline hipError_t hipGetLastError() { return cudaGetLastError(); }
inline hipError_t hipPeekAtLastError() { return cudaPeekAtLastError(); }
inline const char* hipGetErrorString(hipError_t e) { return cudaGetErrorString(e); }
inline const char* hipGetErrorName(hipError_t e) { return cudaGetErrorName(e); }
inline hipError_t hipGetDeviceCount(int* n) { return cudaGetDeviceCount(n); }
inline hipError_t hipGetDevice(int* d) { return cudaGetDevice(d); }
inline hipError_t hipSetDevice(int d) { return cudaSetDevice(d); }
inline hipError_t hipGetDeviceProperties(hipDeviceProp_t* p, int d) {
  return cudaGetDeviceProperties(p, d);
}
inline hipError_t hipMemGetInfo(size_t* free_bytes, size_t* total_bytes) {
  return cudaMemGetInfo(free_bytes, total_bytes);
}
inline hipError_t hipEventCreate(hipEvent_t* e) { return cudaEventCreate(e); }
inline hipError_t hipEventDestroy(hipEvent_t e) { return cudaEventDestroy(e); }
inline hipError_t hipEventRecord(hipEvent_t e, hipStream_t s) { return cudaEventRecord(e, s); }
inline hipError_t hipEventSynchronize(hipEvent_t e) { return cudaEventSynchronize(e); }
inline hipError_t hipEventElapsedTime(float* ms, hipEvent_t a, hipEvent_t b) {
  return cudaEventElapsedTime(ms, a, b);
}
inline hipError_t hipStreamBeginCapture(hipStream_t s, int mode) {
  return cudaStreamBeginCapture(s, static_cast<cudaStreamCaptureMode>(mode));
}
inline hipError_t hipStreamEndCapture(hipStream_t s, hipGraph_t* g) {
  return cudaStreamEndCapture(s, g);
}
inline hipError_t hipGraphInstantiate(hipGraphExec_t* e, hipGraph_t g, void*, void*, size_t) {
  return cudaGraphInstantiate(e, g, 0);
}
inline hipError_t hipGraphLaunch(hipGraphExec_t e, hipStream_t s) { return cudaGraphLaunch(e, s); }
inline hipError_t hipGraphExecDestroy(hipGraphExec_t e) { return cudaGraphExecDestroy(e); }
inline hipError_t hipGraphDestroy(hipGraph_t g) { return cudaGraphDestroy(g); }

namespace rcsim::gpu {
inline constexpr int kWarpSizeLanes = 32;
inline constexpr const char* kPlatformName = "cuda";
// All 32 lanes of a warp take part: rcsim's groups exit as a whole (never lane by lane).
inline constexpr unsigned kFullWarpMask = 0xFFFFFFFFu;
template <typename T>
__device__ __forceinline__ T shfl_xor(T v, int lane_mask, int width) {
  return __shfl_xor_sync(kFullWarpMask, v, lane_mask, width);
}
template <typename T>
__device__ __forceinline__ T shfl_idx(T v, int src_lane, int width) {
  return __shfl_sync(kFullWarpMask, v, src_lane, width);
}
__device__ __forceinline__ void group_sync() { __syncthreads(); }
// True if the predicate holds on any lane of the calling warp (all lanes must call).
__device__ __forceinline__ bool warp_any(bool p) { return __any_sync(kFullWarpMask, p); }
// True if a or b is NaN, as one unordered compare (setp.nan tests both operands; nvcc emitted
// one compare per value for `v != v`, and the tiled kernels test 8 values per rounding).
__device__ __forceinline__ bool either_nan(float a, float b) {
  uint32_t r;
  asm("{\n\t.reg .pred p;\n\tsetp.nan.f32 p, %1, %2;\n\tselp.u32 %0, 1, 0, p;\n\t}"
      : "=r"(r)
      : "f"(a), "f"(b));
  return r != 0;
}
// 1.0f / x, correctly rounded, for x in the range that kReciprocalMinBits and kReciprocalSpan
// admit: [2^-126, 2^126). This is the fast sequence nvcc emits for the reciprocal (SASS, sm_90:
// MUFU.RCP and two fmas) without the range test and branch it runs first: an x in this range is
// one that the test sends down the fast sequence. gpu_backend_test compares tile::reciprocal, which
// calls it on exactly this range, with 1.0f / x for every float.
inline constexpr bool kHasReciprocalSequences = true;
__device__ __forceinline__ float reciprocal_in_range(float x) {
  float r;
  asm("{\n\t.reg .f32 r0, f;\n\t"
      "rcp.approx.ftz.f32 r0, %1;\n\t"
      "fma.rn.f32 f, r0, %1, 0fBF800000;\n\t"  // r0*x - 1
      "neg.f32 f, f;\n\t"
      "fma.rn.f32 %0, r0, f, r0;\n\t}"
      : "=f"(r)
      : "f"(x));
  return r;
}
// 1.0f / sqrtf(x), both correctly rounded, for x in the range that kReciprocalRootMinBits and
// kReciprocalRootSpan admit: [2^-101, FLT_MAX]. sqrtf's fast sequence (MUFU.RSQ and two fmas)
// without its range test, then reciprocal_in_range: an x in this range is one that sqrtf's test
// sends down its fast sequence, and its root (2^-50.5 .. 2^64) one that the reciprocal's does.
// One test instead of two saves 6 instructions a Q/K head. gpu_backend_test compares it with
// 1.0f / sqrtf(x) for every float of that range.
__device__ __forceinline__ float reciprocal_root_in_range(float x) {
  float root;
  asm("{\n\t.reg .f32 y, s, h, e;\n\t"
      "rsqrt.approx.ftz.f32 y, %1;\n\t"
      "mul.ftz.f32 s, %1, y;\n\t"
      "mul.ftz.f32 h, y, 0f3F000000;\n\t"  // 0.5 y
      "neg.f32 e, s;\n\t"
      "fma.rn.f32 e, e, s, %1;\n\t"  // x - s*s
      "fma.rn.f32 %0, e, h, s;\n\t}"
      : "=f"(root)
      : "f"(x));
  return reciprocal_in_range(root);
}
// Every NaN an fp32 arithmetic instruction returns (add, multiply, fma, division), whatever NaN
// it was given, is the canonical 0x7FFFFFFF (core/nan_class.h; gpu_backend_test's
// FusedWithNanAndInfInputsMatchesTheReferenceMapping checks what the tiled kernels build on it).
inline constexpr bool kArithmeticNanIsCanonical = true;
// Two fp32 values rounded to nearest even and packed as lo | hi << 16 by one instruction
// (sm_80+). Finite values and infinities round exactly as kernels/common/numeric.h does; a NaN
// comes out as the hardware's canonical NaN, so callers redo NaN inputs in software.
inline constexpr bool kHasPackedRounding = true;
__device__ __forceinline__ uint32_t packed_round_bf16x2(float lo, float hi) {
  uint32_t r;
  asm("cvt.rn.bf16x2.f32 %0, %1, %2;" : "=r"(r) : "f"(hi), "f"(lo));
  return r;
}
__device__ __forceinline__ uint32_t packed_round_fp16x2(float lo, float hi) {
  uint32_t r;
  asm("cvt.rn.f16x2.f32 %0, %1, %2;" : "=r"(r) : "f"(hi), "f"(lo));
  return r;
}
// Two fp32 values to OCP e4m3fn codes (lo | hi << 8), round to nearest even, finite overflow and
// infinities saturated to +-448: numeric::float_to_fp8_bits except for NaN (0x7F for either
// sign), which callers redo in software. sm_89+ only (kHasPackedE4m3fn, read in device code):
// returns false (writing nothing) below.
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 890
inline constexpr bool kHasPackedE4m3fn = true;
#else
inline constexpr bool kHasPackedE4m3fn = false;
#endif
__device__ __forceinline__ bool packed_e4m3fn_x2(float lo, float hi, uint32_t& out) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 890
  unsigned short r;
  asm("cvt.rn.satfinite.e4m3x2.f32 %0, %1, %2;" : "=h"(r) : "f"(hi), "f"(lo));
  out = r;
  return true;
#else
  (void)lo;
  (void)hi;
  (void)out;
  return false;
#endif
}
// One 16-byte (8-byte) vector store to global memory, p aligned to its size. Written as plain
// aggregate stores, nvcc emitted the tiled kernels' V-chunk and K-cache stores as four (two)
// 4-byte st.global.u32 (PTX and SASS of the bf16 fused kernel, sm_90; the same source as a small
// kernel alone stays one vector store), so each 16-byte chunk reached L2 as four partial writes.
// st.global.wb is the default store with the vector width fixed.
__device__ __forceinline__ void store_global_16(void* p, uint32_t a, uint32_t b, uint32_t c,
                                                uint32_t d) {
  __stwb(static_cast<uint4*>(p), make_uint4(a, b, c, d));
}
__device__ __forceinline__ void store_global_8(void* p, uint32_t a, uint32_t b) {
  __stwb(static_cast<uint2*>(p), make_uint2(a, b));
}
// A hint to fetch [p, p + bytes) into L2 (p 16-byte aligned, bytes a multiple of 16): one bulk
// prefetch instruction on sm_90+, which holds no register while the bytes are in flight; nothing
// below sm_90. It changes no value.
inline constexpr bool kHasL2Prefetch = true;
__device__ __forceinline__ void prefetch_l2(const void* p, uint32_t bytes) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("cp.async.bulk.prefetch.L2.global [%0], %1;" ::"l"(p), "r"(bytes) : "memory");
#else
  (void)p;
  (void)bytes;
#endif
}
// Programmatic dependent launch (sm_90+): a kernel launched with launch_programmatic may be
// scheduled while the stream's previous kernel still runs, once every block of that kernel has
// called allow_next_grid_launch (or exited); its blocks then wait in wait_for_previous_grid until
// that kernel has completed and its memory is visible. So what overlaps is the launch and the
// block start-up, never a memory access: a kernel calls wait_for_previous_grid before its first
// global load or store. Without a programmatic predecessor (a copy, a plain launch, a host sync)
// the wait returns at once. Below sm_90 both are nothing.
__device__ __forceinline__ void wait_for_previous_grid() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}
__device__ __forceinline__ void allow_next_grid_launch() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}
// Whether the current device runs programmatic launches (compute capability 9.0 or newer).
inline bool device_has_programmatic_launch() {
  static const bool has = [] {
    int dev = 0, major = 0;
    return cudaGetDevice(&dev) == cudaSuccess &&
           cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) == cudaSuccess &&
           major >= 9;
  }();
  return has;
}
// kernel<<<grid, block, 0, s>>>(args...), with the programmatic-serialization attribute where the
// device has it (stream capture keeps it as a programmatic edge of the graph).
template <typename... Params, typename... Args>
void launch_programmatic(void (*kernel)(Params...), dim3 grid, dim3 block, hipStream_t s,
                         Args... args) {
  if (!device_has_programmatic_launch()) {
    kernel<<<grid, block, 0, s>>>(args...);
    return;
  }
  cudaLaunchAttribute attr[1];
  attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr[0].val.programmaticStreamSerializationAllowed = 1;
  cudaLaunchConfig_t config = {};
  config.gridDim = grid;
  config.blockDim = block;
  config.dynamicSmemBytes = 0;
  config.stream = s;
  config.attrs = attr;
  config.numAttrs = 1;
  // Errors surface as every launch's do: the launcher's check_last_error.
  (void)cudaLaunchKernelEx(&config, kernel, args...);
}
}  // namespace rcsim::gpu

#else
#error "kernels/hip/gpu_platform.h is for hipcc or nvcc only; the host-only build never includes it"
#endif

namespace rcsim::gpu {
// x's bits minus kReciprocalRootMinBits, unsigned, at most kReciprocalRootSpan: x is a float in
// [2^-101, FLT_MAX], where reciprocal_root_in_range is exact (no sign, NaN or infinity passes).
inline constexpr uint32_t kReciprocalRootMinBits = 0x0D000000u;
inline constexpr uint32_t kReciprocalRootSpan = 0x727FFFFFu;
// x's bits minus kReciprocalMinBits, unsigned, at most kReciprocalSpan: x is a float in
// [2^-126, 2^126), where reciprocal_in_range is exact (no sign, NaN, infinity or subnormal passes).
inline constexpr uint32_t kReciprocalMinBits = 0x00800000u;
inline constexpr uint32_t kReciprocalSpan = 0x7E7FFFFFu - kReciprocalMinBits;
// The fused kernel's reduction group (semantics.md 2.1): 32 lanes on every vendor.
inline constexpr int kGroupLanes = 32;
static_assert(kWarpSizeLanes % kGroupLanes == 0, "a reduction group must fit in one warp");
}  // namespace rcsim::gpu
