// Marks functions shared by the CPU reference and the HIP/CUDA kernels. The host-only build
// sees plain inline functions; hipcc and nvcc see __host__ __device__ ones. This header holds no
// vendor names beyond the two compiler macros that tell which compiler is reading it.
#pragma once

#if defined(__HIPCC__) || defined(__CUDACC__)
#define RCSIM_HD __host__ __device__ __forceinline__
#else
#define RCSIM_HD inline
#endif
