// cuBLAS through dlopen, for `mmrun bench` only: the bf16 GEMM rate that is the prefill roofline's
// denominator. The runtime never links cuBLAS (it runs the plan's own kernels); the library is
// looked for at bench time (libcublas.so.13 on the loader's path, then under /usr/local/cuda and
// $CUDA_HOME), and its absence is a "n/a" in the report, not an error. Types and constants are
// declared here (ABI-compatible with cublas_api.h and library_types.h) so that nothing needs the
// CUDA toolkit to build.
#pragma once

#include <cstdint>
#include <string>

#include "runtime/cuda/cuda_symbols.h"
#include "support/status.h"

namespace mm::rt::cublas {

using Handle = struct cublasContext*;
using Status = int;                        // cublasStatus_t
constexpr Status kSuccess = 0;             // CUBLAS_STATUS_SUCCESS
constexpr int kOpN = 0, kOpT = 1;          // cublasOperation_t
constexpr int kR16BF = 14, kR32F = 0;      // cudaDataType: CUDA_R_16BF, CUDA_R_32F
constexpr int kCompute32F = 68;            // cublasComputeType_t: CUBLAS_COMPUTE_32F
constexpr int kGemmDefault = -1;           // cublasGemmAlgo_t: CUBLAS_GEMM_DEFAULT

struct Symbols {
  std::string library;  // the file dlopen found
  Status (*cublasCreate_v2)(Handle*) = nullptr;
  Status (*cublasDestroy_v2)(Handle) = nullptr;
  Status (*cublasSetStream_v2)(Handle, cu::CUstream) = nullptr;
  Status (*cublasGemmEx)(Handle, int, int, int, int, int, const void*, const void*, int, int, const void*, int, int,
                         const void*, void*, int, int, int, int) = nullptr;
  const char* (*cublasGetStatusString)(Status) = nullptr;  // optional
};

// Loads cuBLAS once (thread-safe); the error names the files tried or the missing symbol.
Expected<const Symbols*> symbols();

}  // namespace mm::rt::cublas
