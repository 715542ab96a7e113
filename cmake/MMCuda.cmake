# NVRTC discovery. Only the compiler links NVRTC; the runtime opens libcuda with dlopen and never
# links the CUDA toolkit (docs/design.md section 3).
if(NOT CUDAToolkit_ROOT AND EXISTS /usr/local/cuda)
  set(CUDAToolkit_ROOT /usr/local/cuda)
endif()
find_package(CUDAToolkit REQUIRED)
set(MM_CUDA_INCLUDE_DIR "${CUDAToolkit_INCLUDE_DIRS}" CACHE PATH "CUDA headers NVRTC needs (cuda_bf16.h, cuda_fp16.h)")
list(GET MM_CUDA_INCLUDE_DIR 0 MM_CUDA_INCLUDE_DIR_FIRST)
