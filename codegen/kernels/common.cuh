/* common.cuh: helpers shared by every kernel kind (prepended to each specialization after abi.h
 * and the baked constants in namespace mmp). Plain CUDA C++17 for NVRTC: no CCCL, no <cstdint>
 * (only cuda_bf16.h / cuda_fp16.h / cuda_fp8.h, found through --include-path). */
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>

#ifndef INFINITY
#define INFINITY __int_as_float(0x7f800000)
#endif

typedef unsigned int mm_u32;
typedef unsigned long long mm_u64;
typedef long long mm_i64;
typedef __nv_bfloat16 mm_bf16;

/* Storage type of a dtype code (docs/kernels.md section 1). */
template <int DT> struct mm_dt;
template <> struct mm_dt<0> { typedef __nv_bfloat16 T; };
template <> struct mm_dt<1> { typedef __half T; };
template <> struct mm_dt<2> { typedef float T; };

__device__ __forceinline__ float mm_f(__nv_bfloat16 x) { return __bfloat162float(x); }
__device__ __forceinline__ float mm_f(__half x) { return __half2float(x); }
__device__ __forceinline__ float mm_f(float x) { return x; }
/* Round to bf16 and back: the "one rounding" points of design.md section 5. */
__device__ __forceinline__ float mm_rbf(float x) { return __bfloat162float(__float2bfloat16_rn(x)); }

__device__ __forceinline__ void mm_store(__nv_bfloat16* p, float v) { *p = __float2bfloat16_rn(v); }
__device__ __forceinline__ void mm_store(__half* p, float v) { *p = __float2half_rn(v); }
__device__ __forceinline__ void mm_store(float* p, float v) { *p = v; }

/* Two bf16 packed in a 32-bit word (low half first) to floats: a shift, no conversion unit. */
__device__ __forceinline__ float mm_bf_lo(mm_u32 w) { return __uint_as_float(w << 16); }
__device__ __forceinline__ float mm_bf_hi(mm_u32 w) { return __uint_as_float(w & 0xffff0000u); }

/* Streaming 16-byte load that does not allocate in L1: weights are read once, so keep L1 for
 * the activations that every thread re-reads. */
__device__ __forceinline__ uint4 mm_ld_stream(const void* p) {
  uint4 r;
  asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0,%1,%2,%3}, [%4];"
               : "=r"(r.x), "=r"(r.y), "=r"(r.z), "=r"(r.w) : "l"(p));
  return r;
}

__device__ __forceinline__ float mm_warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ float mm_warp_max(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

/* Block-wide sum in a fixed order (deterministic); every thread gets the result.
 * scratch: 32 floats of shared memory. */
__device__ __forceinline__ float mm_block_sum(float v, float* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = (blockDim.x + 31) >> 5;
  v = mm_warp_sum(v);
  __syncthreads();
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  float t = lane < nw ? scratch[lane] : 0.f;
  t = mm_warp_sum(t);
  return t;
}
__device__ __forceinline__ float mm_block_max(float v, float* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = (blockDim.x + 31) >> 5;
  v = mm_warp_max(v);
  __syncthreads();
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  float t = lane < nw ? scratch[lane] : -INFINITY;
  t = mm_warp_max(t);
  return t;
}

/* Zeroes an accumulator array of fragments. */
template <int A, int B, int C>
__device__ __forceinline__ void mm_zero(float (&v)[A][B][C]) {
#pragma unroll
  for (int i = 0; i < A; ++i)
#pragma unroll
    for (int j = 0; j < B; ++j)
#pragma unroll
      for (int k = 0; k < C; ++k) v[i][j][k] = 0.f;
}

/* cp.async 16 bytes global -> shared; src_bytes 0 zero-fills (rows past M). The _s forms take a
 * 32-bit shared-window address (__cvta_generic_to_shared), for loops that keep their addresses as
 * offsets from one base. */
__device__ __forceinline__ void mm_cp_async16_s(mm_u32 s, const void* gmem, int src_bytes) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" ::"r"(s), "l"(gmem), "r"(src_bytes));
}
__device__ __forceinline__ void mm_cp_async16(void* smem, const void* gmem, int src_bytes) {
  mm_cp_async16_s((mm_u32)__cvta_generic_to_shared(smem), gmem, src_bytes);
}
__device__ __forceinline__ void mm_cp_async_commit() { asm volatile("cp.async.commit_group;"); }
template <int N>
__device__ __forceinline__ void mm_cp_async_wait() { asm volatile("cp.async.wait_group %0;" ::"n"(N)); }

__device__ __forceinline__ void mm_ldmatrix_x4_s(mm_u32 (&r)[4], mm_u32 s) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(s));
}
__device__ __forceinline__ void mm_ldmatrix_x4(mm_u32 (&r)[4], const void* smem) {
  mm_ldmatrix_x4_s(r, (mm_u32)__cvta_generic_to_shared(smem));
}

/* D = A(16x16 bf16, row) * B(16x8 bf16, col) + D, fp32 accumulate. A pure register operation, so
 * not volatile: the compiler may issue the next step's ldmatrix (volatile, kept in order with the
 * barriers) before this mma, overlapping fragment loads with tensor-core work. */
__device__ __forceinline__ void mm_mma_bf16(float (&d)[4], const mm_u32 (&a)[4], mm_u32 b0, mm_u32 b1) {
  asm(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

/* The same mma as mm_mma_bf16, not volatile: the compiler may interleave it with the loads and
 * conversions around it (the W4 dequant, decode attention). */
__device__ __forceinline__ void mm_mma_bf16_nv(float (&d)[4], mm_u32 a0, mm_u32 a1, mm_u32 a2, mm_u32 a3,
                                               mm_u32 b0, mm_u32 b1) {
  asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

/* fp8 e4m3 <-> float (KV cache, docs/kernels.md section 4). */
__device__ __forceinline__ float mm_fp8_to_f(unsigned char v) {
  __half_raw h = __nv_cvt_fp8_to_halfraw((__nv_fp8_storage_t)v, __NV_E4M3);
  return __half2float(__half(h));
}
__device__ __forceinline__ unsigned char mm_f_to_fp8(float v) {
  return (unsigned char)__nv_cvt_float_to_fp8(v, __NV_SATFINITE, __NV_E4M3);
}

/* Programmatic dependent launch (docs/kernels.md section 6; sm_90 and sm_121). A launch the plan
 * marks `pdl` may start while the previous launch of the program still runs. Every kernel obeys
 * one discipline so that this is safe:
 *   - before mm_pdl_wait() it reads only weights (constant during a call) and what launches two or
 *     more places back wrote, and it writes nothing;
 *   - mm_pdl_wait() returns once the previous launch has completed and its writes are visible;
 *   - mm_pdl_trigger() comes right after mm_pdl_wait() (never before it), so the next launch can
 *     only start once this one has waited: when launch N+1 starts, launch N-1 is complete, which
 *     is what makes the two-back rule above hold.
 * Both are no-ops for a launch without the attribute (and compile to nothing before sm_90). */
__device__ __forceinline__ void mm_pdl_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}
__device__ __forceinline__ void mm_pdl_trigger() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}
/* Both, in the only order allowed: the entry of a kernel with nothing to prefetch. */
__device__ __forceinline__ void mm_pdl_enter() {
  mm_pdl_wait();
  mm_pdl_trigger();
}
/* Asks L2 to fetch the 128-byte line holding p (weights a kernel will stream once it may read its
 * activations: issued before mm_pdl_wait, the fetch overlaps the previous launch's tail). */
__device__ __forceinline__ void mm_prefetch_l2(const void* p) {
  asm volatile("prefetch.global.L2 [%0];" ::"l"(p));
}

/* Thread block cluster helpers (sm_90+): rank in the cluster, a full cluster barrier with
 * release/acquire of shared memory, and a load from another block's shared memory. */
__device__ __forceinline__ unsigned mm_cluster_rank() {
  unsigned r;
  asm volatile("mov.u32 %0, %%cluster_ctarank;" : "=r"(r));
  return r;
}
__device__ __forceinline__ void mm_cluster_sync() {
  asm volatile("barrier.cluster.arrive.release.aligned;\n\tbarrier.cluster.wait.acquire.aligned;" ::: "memory");
}
__device__ __forceinline__ float mm_ld_dsmem(const float* p, unsigned rank) {
  const unsigned a = (unsigned)__cvta_generic_to_shared(p);
  unsigned r;
  float v;
  asm volatile("mapa.shared::cluster.u32 %0, %1, %2;" : "=r"(r) : "r"(a), "r"(rank));
  asm volatile("ld.shared::cluster.f32 %0, [%1];" : "=f"(v) : "r"(r) : "memory");
  return v;
}
