/* GEMM_W4: int4 group-quantized GEMM, dequant in registers (docs/kernels.md section 5).
 *   y[m, n] = sum_k x[m, k] * (q(k, n) - 8) * scale(k / G, n)      fp32, rounded once to OUT
 * Layouts: x bf16[M, K]; qweight i32[K/8, N]; scales f16[K/G, N]; y OUT[M, N];
 *   M = dim[MDIM == 0 ? T : R].
 * Constants: mmp::K, N, G, OUT, MDIM, VARIANT, LN (variant 0), THREADS (= 256).
 * Variants (building blocks in w4.cuh):
 *   0 decode bandwidth kernel: a block covers 4*LN columns and all of K, so the grid spreads the
 *     matrix over every SM and each weight byte is read once per pass; up to 8 activation rows
 *     per pass (more rows loop, re-reading the weights: use variant 1 for large M). Grid (N / (4 LN)).
 *   1 prefill: mma.sync m16n8k16 bf16 tiles of 64x128, 3-stage cp.async pipeline, fp32 scale per
 *     group. Grid (ceil(N / 128), ceil(M / 64)). */
template <int MT>
__device__ __forceinline__ void mm_gemm_w4_gemv(const mm_bf16* x, const mm_u32* qw, const __half* sc,
                                                void* y, mm_i64 M, mm_i64 m0, float* red, float* fin) {
  constexpr int LN = mmp::LN;
  const int ln = threadIdx.x % LN;
  const int n0 = blockIdx.x * 4 * LN;
  const mm_bf16* xrow[MT];
#pragma unroll
  for (int m = 0; m < MT; ++m) xrow[m] = m0 + m < M ? x + (m0 + m) * mmp::K : nullptr;
  const int col[1] = {n0 + 4 * ln};
  float acc[MT][1][4];
#pragma unroll
  for (int m = 0; m < MT; ++m)
#pragma unroll
    for (int i = 0; i < 4; ++i) acc[m][0][i] = 0.f;
  mm_w4_gemv<mmp::K, mmp::N, mmp::G, MT, 1, LN, (MT >= 8 ? 1 : (MT >= 4 ? 2 : 4))>(xrow, qw, sc, col, 1.f, acc);
  mm_w4_reduce<MT, 1, LN>(acc, red, fin);
  for (int e = threadIdx.x; e < MT * 4 * LN; e += 256) {
    const int m = e / (4 * LN), n = n0 + e % (4 * LN);
    if (m0 + m < M && n < mmp::N) mm_store((typename mm_dt<mmp::OUT>::T*)y + (m0 + m) * mmp::N + n, fin[e]);
  }
  __syncthreads();   // red/fin are reused by the next pass
}

/* At least two blocks per SM: the decode variant needs the warps to keep enough loads in flight. */
extern "C" __global__ void __launch_bounds__(mmp::THREADS, 2) MM_ENTRY(const mm_kernel_args args) {
  const mm_bf16* x = (const mm_bf16*)args.ptr[0];
  const mm_u32* qw = (const mm_u32*)args.ptr[1];
  const __half* sc = (const __half*)args.ptr[2];
  void* y = args.ptr[3];
  const mm_i64 M = args.dim[mmp::MDIM == 0 ? MM_DIM_T : MM_DIM_R];
  if constexpr (mmp::VARIANT == 0) {
    __shared__ float red[8 * 8 * 4 * mmp::LN];
    __shared__ float fin[8 * 4 * mmp::LN];
    for (mm_i64 m0 = 0; m0 < M; m0 += 8) {
      const mm_i64 left = M - m0;
      // Three row counts keep the compile short and registers <= 128 (two blocks per SM);
      // missing rows are skipped at run time.
      if (left > 4) mm_gemm_w4_gemv<8>(x, qw, sc, y, M, m0, red, fin);
      else if (left > 1) mm_gemm_w4_gemv<4>(x, qw, sc, y, M, m0, red, fin);
      else mm_gemm_w4_gemv<1>(x, qw, sc, y, M, m0, red, fin);
    }
  } else {
    __shared__ mm_i64 arow[MM_BM];
    __shared__ int bcol[MM_BN];
    const mm_i64 m0 = (mm_i64)blockIdx.y * MM_BM;
    const int n0 = blockIdx.x * MM_BN;
    if (m0 >= M) return;
    if (threadIdx.x < MM_BM) arow[threadIdx.x] = m0 + threadIdx.x < M ? m0 + threadIdx.x : -1;
    if (threadIdx.x < MM_BN) bcol[threadIdx.x] = n0 + (int)threadIdx.x < mmp::N ? n0 + (int)threadIdx.x : -1;
    __syncthreads();
    float acc[2][4][4];
    mm_w4_mma<mmp::K, mmp::N, mmp::G>(x, arow, bcol, qw, sc, acc);
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, wm = warp >> 2, wn = warp & 3;
    typedef typename mm_dt<mmp::OUT>::T ot;
#pragma unroll
    for (int mi = 0; mi < 2; ++mi)
#pragma unroll
      for (int ni = 0; ni < 4; ++ni)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const mm_i64 m = m0 + wm * 32 + mi * 16 + (lane >> 2) + 8 * (e >> 1);
          const int n = n0 + wn * 32 + ni * 8 + 2 * (lane & 3) + (e & 1);
          if (m < M && n < mmp::N) mm_store((ot*)y + m * mmp::N + n, acc[mi][ni][e]);
        }
  }
}
