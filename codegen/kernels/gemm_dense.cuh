/* GEMM_DENSE: 16-bit weight GEMM (docs/kernels.md section 5).
 *   y[m, n] = sum_k x[m, k] * w[n, k]        fp32 FMA (bf16/f16 products are exact in fp32)
 * Layouts: x bf16[M, K]; w WDT[N, K] row-major; y OUT[M, N]. M = dim[MDIM == 0 ? T : R].
 * Constants: mmp::K, N, WDT, OUT, MDIM, VARIANT, THREADS.
 * Variants:
 *   0 GEMV (decode, lm_head): one warp per output column n, 16-byte streaming loads of w[n, :],
 *     activation rows read through L1, up to 16 rows per pass (more rows loop, re-reading w).
 *     Grid (ceil(N / 8)), block (256).
 *   1 tiled (prefill router, unquantized projections): 64x64 output tile per block, 4x4 per
 *     thread, K in steps of 16 through shared memory, fp32 FMA.
 *     Grid (ceil(N / 64), ceil(M / 64)), block (256). */
typedef typename mm_dt<mmp::WDT>::T mm_wt;
typedef typename mm_dt<mmp::OUT>::T mm_ot;

template <int MT>
__device__ __forceinline__ void mm_dense_gemv(const mm_bf16* x, const mm_wt* w, mm_ot* y, mm_i64 M,
                                              mm_i64 m0, mm_i64 n, int lane) {
  float acc[MT];
#pragma unroll
  for (int m = 0; m < MT; ++m) acc[m] = 0.f;
  const mm_wt* row = w + n * mmp::K;
#pragma unroll 2
  for (int k = lane * 8; k < mmp::K; k += 256) {
    const uint4 wv = mm_ld_stream(row + k);
    const mm_wt* pw = (const mm_wt*)&wv;
    float wf[8];
#pragma unroll
    for (int i = 0; i < 8; ++i) wf[i] = mm_f(pw[i]);
#pragma unroll
    for (int m = 0; m < MT; ++m) {
      if (m0 + m < M) {
        const uint4 xv = __ldg((const uint4*)(x + (m0 + m) * mmp::K + k));
        const mm_u32* px = (const mm_u32*)&xv;
#pragma unroll
        for (int i = 0; i < 4; ++i) {
          acc[m] = fmaf(mm_bf_lo(px[i]), wf[2 * i], acc[m]);
          acc[m] = fmaf(mm_bf_hi(px[i]), wf[2 * i + 1], acc[m]);
        }
      }
    }
  }
#pragma unroll
  for (int m = 0; m < MT; ++m) {
    const float v = mm_warp_sum(acc[m]);
    if (lane == m && m0 + m < M) mm_store(y + (m0 + m) * mmp::N + n, v);
  }
}

extern "C" __global__ void __launch_bounds__(mmp::THREADS) MM_ENTRY(const mm_kernel_args args) {
  MM_OPERANDS(args);   // typed views of ptr[] (codegen/kernels/kinds.def)
  const mm_i64 M = args.dim[mmp::MDIM == 0 ? MM_DIM_T : MM_DIM_R];
  if constexpr (mmp::VARIANT == 0) {
    const int lane = threadIdx.x & 31;
    const mm_i64 n = (mm_i64)blockIdx.x * (mmp::THREADS / 32) + (threadIdx.x >> 5);
    // The first 1 KB of this warp's weight row goes to L2 while the previous launch drains.
    if (n < mmp::N && lane * 128 < mmp::K * (int)sizeof(mm_wt) && lane < 8)
      mm_prefetch_l2((const char*)(w + n * mmp::K) + lane * 128);
    mm_pdl_enter();
    if (n >= mmp::N) return;
    for (mm_i64 m0 = 0; m0 < M; m0 += 16) {
      const mm_i64 left = M - m0;
      // Three row counts keep the compile short; missing rows are skipped at run time.
      if (left > 4) mm_dense_gemv<16>(x, w, y, M, m0, n, lane);
      else if (left > 1) mm_dense_gemv<4>(x, w, y, M, m0, n, lane);
      else mm_dense_gemv<1>(x, w, y, M, m0, n, lane);
    }
  } else {
    mm_pdl_enter();
    __shared__ float xs[16][64 + 4];
    __shared__ float ws[16][64 + 4];
    const int tx = threadIdx.x & 15, ty = threadIdx.x >> 4;
    const mm_i64 n0 = (mm_i64)blockIdx.x * 64, m0 = (mm_i64)blockIdx.y * 64;
    if (m0 >= M) return;
    float acc[4][4];
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
      for (int j = 0; j < 4; ++j) acc[i][j] = 0.f;
    for (int k0 = 0; k0 < mmp::K; k0 += 16) {
#pragma unroll
      for (int l = 0; l < 4; ++l) {
        const int e = threadIdx.x + l * 256;   // 0..1023: row e/16, k e%16
        const int rr = e >> 4, kk = e & 15;
        const mm_i64 m = m0 + rr, n = n0 + rr, k = k0 + kk;
        xs[kk][rr] = (m < M && k < mmp::K) ? __bfloat162float(x[m * mmp::K + k]) : 0.f;
        ws[kk][rr] = (n < mmp::N && k < mmp::K) ? mm_f(w[n * mmp::K + k]) : 0.f;
      }
      __syncthreads();
#pragma unroll
      for (int kk = 0; kk < 16; ++kk) {
        float a[4], b[4];
#pragma unroll
        for (int i = 0; i < 4; ++i) a[i] = xs[kk][ty + 16 * i];
#pragma unroll
        for (int j = 0; j < 4; ++j) b[j] = ws[kk][tx + 16 * j];
#pragma unroll
        for (int i = 0; i < 4; ++i)
#pragma unroll
          for (int j = 0; j < 4; ++j) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
      }
      __syncthreads();
    }
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const mm_i64 m = m0 + ty + 16 * i, n = n0 + tx + 16 * j;
        if (m < M && n < mmp::N) mm_store(y + m * mmp::N + n, acc[i][j]);
      }
  }
}
