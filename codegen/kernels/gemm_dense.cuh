/* GEMM_DENSE: 16-bit weight GEMM (docs/kernels.md section 5).
 *   y[m, n] = sum_k x[m, k] * w[n, k]        fp32 FMA (bf16/f16 products are exact in fp32)
 * Layouts: x bf16[M, K]; w WDT[N, K] row-major; y OUT[M, N]. M = dim[MDIM == 0 ? T : R].
 * Constants: mmp::K, N, WDT, OUT, MDIM, VARIANT, THREADS.
 * Variants:
 *   0 GEMV (decode, lm_head): one warp per output column n, 16-byte streaming loads of w[n, :],
 *     activation rows read through L1, up to 16 rows per pass (more rows loop, re-reading w).
 *     Grid (ceil(N / 8)), block (256).
 *   1 tiled (f16 weights): 64x64 output tile per block, 4x4 per thread, K in steps of 16
 *     through shared memory, fp32 FMA. Element loads with two barriers per step: latency-bound
 *     (271 us for the 192-expert router at any M in Nsight Compute, 17 ms of a 62-layer prefill).
 *     Grid (ceil(N / 64), ceil(M / 64)), block (256).
 *   2 tensor cores (bf16 weights: the prefill router, unquantized projections): 64x128 output
 *     tiles, 8 warps as 2 (M) x 4 (N) of 32x32 (2 m16 x 4 n8 mma.sync bf16 -> fp32 tiles); x rows
 *     and w rows ([N, K] row-major is the mma's column-major B) in 32-k tiles through a 3-stage
 *     cp.async pipeline (rows past M or N zero-filled), both read with ldmatrix as the W4 v2 core
 *     reads A and its dequantized B (w4.cuh). Needs K % 32 == 0 (specialize).
 *     Grid (ceil(N / 128), ceil(M / 64)), block (256). */
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

/* Variant 2's tile: acc[mi][ni][e] is row m0 + wm*32 + mi*16 + lane/4 + 8(e/2), column
 * n0 + wn*32 + ni*8 + 2(lane%4) + e%2 (the W4 v2 core's layout). */
__device__ __forceinline__ void mm_dense_mma(const mm_bf16* x, const mm_bf16* w, mm_i64 M, mm_i64 m0, mm_i64 n0,
                                             float (&acc)[2][4][4]) {
  constexpr int BK = 32, LD = BK + 8, ST = 3, KT = mmp::K / BK;
  __shared__ __align__(16) mm_bf16 As[ST][64][LD];
  __shared__ __align__(16) mm_bf16 Bs[ST][128][LD];
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, wm = warp >> 2, wn = warp & 3;
  auto load = [&](int stage, int kt) {
    const int k0 = kt * BK;
    {   // A: 64 rows x 4 chunks of 16 bytes, one per thread
      const int r = tid >> 2, kc = tid & 3;
      const bool ok = m0 + r < M;
      mm_cp_async16(&As[stage][r][kc * 8], ok ? x + (m0 + r) * mmp::K + k0 + kc * 8 : x, ok ? 16 : 0);
    }
#pragma unroll
    for (int l = 0; l < 2; ++l) {   // B: 128 rows x 4 chunks, two per thread
      const int c = tid + 256 * l, r = c >> 2, kc = c & 3;
      const bool ok = n0 + r < mmp::N;
      mm_cp_async16(&Bs[stage][r][kc * 8], ok ? w + (n0 + r) * mmp::K + k0 + kc * 8 : w, ok ? 16 : 0);
    }
  };
#pragma unroll
  for (int mi = 0; mi < 2; ++mi)
#pragma unroll
    for (int ni = 0; ni < 4; ++ni)
#pragma unroll
      for (int e = 0; e < 4; ++e) acc[mi][ni][e] = 0.f;
#pragma unroll
  for (int s = 0; s < ST - 1; ++s) {
    if (s < KT) load(s, s);
    mm_cp_async_commit();
  }
#pragma unroll 1
  for (int kt = 0; kt < KT; ++kt) {
    mm_cp_async_wait<ST - 2>();
    __syncthreads();   // tile kt landed; every warp is done with stage (kt - 1) % ST
    if (kt + ST - 1 < KT) load((kt + ST - 1) % ST, kt + ST - 1);
    mm_cp_async_commit();
    const int st = kt % ST;
#pragma unroll
    for (int ks = 0; ks < BK / 16; ++ks) {
      mm_u32 a[2][4], b[4][2];
#pragma unroll
      for (int mi = 0; mi < 2; ++mi)
        mm_ldmatrix_x4(a[mi], &As[st][wm * 32 + mi * 16 + (lane & 15)][ks * 16 + (lane >> 4) * 8]);
#pragma unroll
      for (int p = 0; p < 2; ++p) {
        mm_u32 r[4];
        mm_ldmatrix_x4(r, &Bs[st][wn * 32 + (2 * p + (lane >> 4)) * 8 + (lane & 7)][ks * 16 + ((lane >> 3) & 1) * 8]);
        b[2 * p][0] = r[0]; b[2 * p][1] = r[1]; b[2 * p + 1][0] = r[2]; b[2 * p + 1][1] = r[3];
      }
#pragma unroll
      for (int mi = 0; mi < 2; ++mi)
#pragma unroll
        for (int ni = 0; ni < 4; ++ni) mm_mma_bf16(acc[mi][ni], a[mi], b[ni][0], b[ni][1]);
    }
  }
  mm_cp_async_wait<0>();
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
  } else if constexpr (mmp::VARIANT == 2) {
    mm_pdl_enter();
    const mm_i64 n0 = (mm_i64)blockIdx.x * 128, m0 = (mm_i64)blockIdx.y * 64;
    if (m0 >= M) return;
    float acc[2][4][4];
    mm_dense_mma((const mm_bf16*)x, (const mm_bf16*)w, M, m0, n0, acc);
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, wm = warp >> 2, wn = warp & 3;
#pragma unroll
    for (int mi = 0; mi < 2; ++mi)
#pragma unroll
      for (int ni = 0; ni < 4; ++ni)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const mm_i64 m = m0 + wm * 32 + mi * 16 + (lane >> 2) + 8 * (e >> 1);
          const mm_i64 n = n0 + wn * 32 + ni * 8 + 2 * (lane & 3) + (e & 1);
          if (m < M && n < mmp::N) mm_store(y + m * mmp::N + n, acc[mi][ni][e]);
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
