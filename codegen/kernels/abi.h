/* The calling convention shared by every generated kernel, its C++ reference and the runtime
 * (docs/kernels.md section 1). Plain C so it compiles under NVRTC and in host code. */
#ifndef MM_KERNELS_ABI_H
#define MM_KERNELS_ABI_H

#define MM_MAX_PTRS 16
#define MM_MAX_DIMS 8

/* Indices into mm_kernel_args.dim. */
#define MM_DIM_T 0    /* tokens in this call */
#define MM_DIM_R 1    /* rows whose logits are computed */
#define MM_DIM_S 2    /* sequences in this call */
#define MM_DIM_CTX 3  /* max(position) + 1 over the call's tokens */
#define MM_DIM_STEP 4 /* sampling step counter */

/* Dtype codes of kernel parameters. */
#define MM_DT_BF16 0
#define MM_DT_F16 1
#define MM_DT_F32 2
#define MM_DT_FP8E4M3 3

struct mm_kernel_args {
  void* ptr[MM_MAX_PTRS];
  long long dim[MM_MAX_DIMS];
};

#endif
