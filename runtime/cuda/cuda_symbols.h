// The one table of CUDA driver functions the runtime uses, loaded with dlopen("libcuda.so.1")
// (docs/style.md rule 6): the runtime never links libcuda, so binaries start on machines without
// a driver and report a clean error instead. Types are declared here (ABI-compatible with cuda.h)
// so that the runtime builds without the CUDA toolkit.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "support/status.h"

namespace mm::rt::cu {

using CUresult = int;
using CUdevice = int;
using CUdeviceptr = unsigned long long;
using CUcontext = struct CUctx_st*;
using CUmodule = struct CUmod_st*;
using CUfunction = struct CUfunc_st*;
using CUstream = struct CUstream_st*;
using CUevent = struct CUevent_st*;
using CUgraph = struct CUgraph_st*;
using CUgraphExec = struct CUgraphExec_st*;

constexpr CUresult CUDA_SUCCESS = 0;
constexpr int CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT = 16;
constexpr int CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE = 38;
constexpr int CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75;
constexpr int CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR = 76;
constexpr int CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN = 97;
constexpr int CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES = 8;
constexpr int CU_STREAM_NON_BLOCKING = 1;
constexpr int CU_STREAM_CAPTURE_MODE_THREAD_LOCAL = 1;
constexpr int CU_EVENT_DEFAULT = 0;
constexpr CUresult CUDA_ERROR_NOT_READY = 600;   // cuEventQuery: work still pending
constexpr int CU_MEMORYTYPE_HOST = 1;
constexpr int CU_MEMORYTYPE_DEVICE = 2;

// CUDA_MEMCPY2D_v2 of cuda.h (cuMemcpy2DAsync_v2).
struct Memcpy2D {
  size_t srcXInBytes = 0, srcY = 0;
  int srcMemoryType = 0;
  const void* srcHost = nullptr;
  CUdeviceptr srcDevice = 0;
  void* srcArray = nullptr;
  size_t srcPitch = 0;
  size_t dstXInBytes = 0, dstY = 0;
  int dstMemoryType = 0;
  void* dstHost = nullptr;
  CUdeviceptr dstDevice = 0;
  void* dstArray = nullptr;
  size_t dstPitch = 0;
  size_t WidthInBytes = 0, Height = 0;
};
static_assert(sizeof(Memcpy2D) == 128 && offsetof(Memcpy2D, dstXInBytes) == 56 && offsetof(Memcpy2D, WidthInBytes) == 112,
              "Memcpy2D must match CUDA_MEMCPY2D_v2 of cuda.h");
constexpr int CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION = 6;

// cuLaunchKernelEx's configuration (cuda.h CUlaunchAttribute / CUlaunchConfig, same layout).
struct CUlaunchAttribute {
  int id;
  char pad[4];
  union {
    char bytes[64];
    int programmatic_stream_serialization_allowed;
  } value;
};
struct CUlaunchConfig {
  unsigned grid_x, grid_y, grid_z;
  unsigned block_x, block_y, block_z;
  unsigned shared_bytes;
  CUstream stream;
  CUlaunchAttribute* attrs;
  unsigned num_attrs;
};

// X(name in the driver library, return, parameter list). Versioned names (_v2) are the ones
// cuda.h maps the plain names to.
#define MM_CUDA_SYMBOLS(X)                                                                          \
  X(cuInit, (unsigned int))                                                                         \
  X(cuDriverGetVersion, (int*))                                                                     \
  X(cuGetErrorName, (CUresult, const char**))                                                       \
  X(cuGetErrorString, (CUresult, const char**))                                                     \
  X(cuDeviceGetCount, (int*))                                                                       \
  X(cuDeviceGet, (CUdevice*, int))                                                                  \
  X(cuDeviceGetName, (char*, int, CUdevice))                                                        \
  X(cuDeviceGetAttribute, (int*, int, CUdevice))                                                    \
  X(cuDeviceTotalMem_v2, (size_t*, CUdevice))                                                       \
  X(cuDevicePrimaryCtxRetain, (CUcontext*, CUdevice))                                               \
  X(cuDevicePrimaryCtxRelease_v2, (CUdevice))                                                       \
  X(cuCtxSetCurrent, (CUcontext))                                                                   \
  X(cuMemGetInfo_v2, (size_t*, size_t*))                                                            \
  X(cuMemAlloc_v2, (CUdeviceptr*, size_t))                                                          \
  X(cuMemFree_v2, (CUdeviceptr))                                                                    \
  X(cuMemAllocHost_v2, (void**, size_t))                                                            \
  X(cuMemFreeHost, (void*))                                                                         \
  X(cuMemHostRegister_v2, (void*, size_t, unsigned int))                                            \
  X(cuMemHostUnregister, (void*))                                                                   \
  X(cuMemcpyHtoD_v2, (CUdeviceptr, const void*, size_t))                                            \
  X(cuMemcpyDtoH_v2, (void*, CUdeviceptr, size_t))                                                  \
  X(cuMemcpyDtoD_v2, (CUdeviceptr, CUdeviceptr, size_t))                                            \
  X(cuMemcpyHtoDAsync_v2, (CUdeviceptr, const void*, size_t, CUstream))                             \
  X(cuMemcpyDtoHAsync_v2, (void*, CUdeviceptr, size_t, CUstream))                                   \
  X(cuMemcpyDtoDAsync_v2, (CUdeviceptr, CUdeviceptr, size_t, CUstream))                             \
  X(cuMemcpy2DAsync_v2, (const Memcpy2D*, CUstream))                                                \
  X(cuMemsetD8_v2, (CUdeviceptr, unsigned char, size_t))                                            \
  X(cuMemsetD8Async, (CUdeviceptr, unsigned char, size_t, CUstream))                                \
  X(cuModuleLoadData, (CUmodule*, const void*))                                                     \
  X(cuModuleUnload, (CUmodule))                                                                     \
  X(cuModuleGetFunction, (CUfunction*, CUmodule, const char*))                                      \
  X(cuFuncSetAttribute, (CUfunction, int, int))                                                     \
  X(cuLaunchKernel, (CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned,        \
                     unsigned, CUstream, void**, void**))                                           \
  X(cuLaunchKernelEx, (const CUlaunchConfig*, CUfunction, void**, void**))                         \
  X(cuStreamCreate, (CUstream*, unsigned int))                                                      \
  X(cuStreamDestroy_v2, (CUstream))                                                                 \
  X(cuStreamSynchronize, (CUstream))                                                                \
  X(cuStreamBeginCapture_v2, (CUstream, int))                                                       \
  X(cuStreamEndCapture, (CUstream, CUgraph*))                                                       \
  X(cuGraphInstantiateWithFlags, (CUgraphExec*, CUgraph, unsigned long long))                       \
  X(cuGraphLaunch, (CUgraphExec, CUstream))                                                         \
  X(cuGraphExecDestroy, (CUgraphExec))                                                              \
  X(cuGraphDestroy, (CUgraph))                                                                      \
  X(cuEventCreate, (CUevent*, unsigned int))                                                        \
  X(cuEventRecord, (CUevent, CUstream))                                                             \
  X(cuEventSynchronize, (CUevent))                                                                  \
  X(cuEventQuery, (CUevent))                                                                        \
  X(cuEventElapsedTime_v2, (float*, CUevent, CUevent))                                              \
  X(cuEventDestroy_v2, (CUevent))

struct Symbols {
#define MM_CUDA_FIELD(name, params) CUresult(*name) params = nullptr;
  MM_CUDA_SYMBOLS(MM_CUDA_FIELD)
#undef MM_CUDA_FIELD
};

// Loads libcuda.so.1 once (thread-safe) and resolves every symbol; the error says which library
// or symbol is missing. cuInit(0) has been called on success.
Expected<const Symbols*> symbols();

// "cuMemAlloc_v2 failed: CUDA_ERROR_OUT_OF_MEMORY (out of memory) at runtime/cuda/device.cpp:42"
Error call_error(const char* call, CUresult rc, const char* file, int line);

}  // namespace mm::rt::cu

// Calls driver function `fn` of the symbol table `sym` (a const Symbols*), returning an mm::Error
// (converted to the enclosing function's Status / Expected) naming the call and the place.
#define MM_CU(sym, fn, ...)                                                         \
  do {                                                                              \
    const ::mm::rt::cu::CUresult mm_cu_rc_ = (sym)->fn(__VA_ARGS__);                \
    if (mm_cu_rc_ != ::mm::rt::cu::CUDA_SUCCESS)                                    \
      return ::mm::rt::cu::call_error(#fn, mm_cu_rc_, __FILE__, __LINE__);         \
  } while (0)
