/* GEMM_W4: int4 group-quantized GEMM, dequant in registers (docs/kernels.md section 5).
 *   y[m, n] = sum_k x[m, k] * (q(k, n) - 8) * scale(k / G, n)      fp32, rounded once to OUT
 * Layouts: x bf16[M, K]; qweight i32[K/8, N] (QL 0) or [N/32, K/8, 32] (QL 1, w4.cuh mm_qw_at);
 *   scales f16[K/G, N]; y OUT[M, N];
 *   M = dim[MDIM == 0 ? T : R].
 * Constants: mmp::K, N, G, OUT, MDIM, QL, VARIANT, THREADS; variant 0: WK (warps per block, split
 *   K), CS (blocks per thread block cluster, split K further; MM_CLUSTER_DIMS), U (units of 64 k
 *   per register set of mm_w4_gv for one n-tile; two n-tiles take half).
 * Variants (building blocks in w4.cuh):
 *   0 decode bandwidth kernel (mm_w4_gv): a cluster of CS blocks of WK warps owns a strip of 32
 *     columns; its CS*WK warps split the quantization groups evenly and are reduced in shared and
 *     distributed shared memory, so every weight byte is read once per pass of up to 16 rows
 *     (more rows loop, re-reading the weights: use variant 1 for large M). specialize() picks WK
 *     and CS so that all warps are resident at once on a 132-SM H100 with loads of the whole
 *     matrix in flight. Grid (ceil(N / 32) * CS), block (32 WK).
 *   1 prefill: mma.sync m16n8k16 bf16 tiles of 64x128, 3-stage cp.async pipeline, fp32 scale per
 *     group. Grid (ceil(N / 128), ceil(M / 64)).
 *   2 prefill on the v2 core (mm_w4_mma2: B dequantized once per block into shared memory,
 *     ldmatrix for both operands), tiles of BM (64 or 128) x 128. Grid (ceil(N / 128),
 *     ceil(M / BM)); 89 or 85 KiB of dynamic shared memory (w4.cuh mm_w4_mma2_cfg). */
template <int NT>
__device__ __forceinline__ void mm_gemm_w4_pass(const mm_bf16* x, const mm_u32* qw, const __half* sc, void* y,
                                                mm_i64 M, mm_i64 m0, float* red, float* part) {
  constexpr int WK = mmp::WK, CS = mmp::CS, P = WK * CS, NG = mmp::K / mmp::G, UPG = mmp::G / 64;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, gq = lane >> 2;
  const int strip = (int)(blockIdx.x / CS) * 32, rank = CS > 1 ? (int)mm_cluster_rank() : 0;
  const int p = rank * WK + warp, g0 = p * NG / P, g1 = (p + 1) * NG / P;
  const int col4 = strip + 4 * gq;
  const mm_bf16* xr[NT];
#pragma unroll
  for (int nt = 0; nt < NT; ++nt) {
    const mm_i64 m = m0 + nt * 8 + gq;
    xr[nt] = m < M ? x + m * mmp::K : nullptr;
  }
  float acc[NT][2][4];
#pragma unroll
  for (int nt = 0; nt < NT; ++nt)
#pragma unroll
    for (int t = 0; t < 2; ++t)
#pragma unroll
      for (int e = 0; e < 4; ++e) acc[nt][t][e] = 0.f;
  mm_w4_gv<mmp::N, mmp::G, NT, NT == 1 ? mmp::U : (mmp::U + 1) / 2, mmp::K / 8>(xr, qw, sc, col4, col4 < mmp::N, g0 * UPG, g1 * UPG, 1.f, acc);
  const int mrows = (int)(M - m0 < 8 * NT ? M - m0 : 8 * NT);
  typedef typename mm_dt<mmp::OUT>::T ot;
  mm_w4_gv_finish<NT, WK, 1, CS>(acc, mrows, red, part, [&](int m, int c, const float (&v)[1]) {
    if (strip + c < mmp::N) mm_store((ot*)y + (m0 + m) * mmp::N + strip + c, v[0]);
  });
}

/* Variant 0: L2 prefetch of the packed rows and scales this warp will stream (the same split as
 * mm_gemm_w4_pass), issued before the programmatic-launch wait. Not inlined: at the 128-register
 * cap, inlining it made ptxas spill in the main loop (sm_90, K 3072 N 8192). */
__device__ __noinline__ void mm_gemm_w4_prefetch(const mm_u32* qw, const __half* sc) {
  constexpr int WK = mmp::WK, CS = mmp::CS, P = WK * CS, NG = mmp::K / mmp::G, RPG = mmp::G / 8;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int strip = (int)(blockIdx.x / CS) * 32, rank = CS > 1 ? (int)mm_cluster_rank() : 0;
  const int p = rank * WK + warp, g0 = p * NG / P, g1 = (p + 1) * NG / P;
  if (strip >= mmp::N) return;
  for (int r = g0 * RPG + lane; r < g1 * RPG; r += 32) mm_prefetch_l2(mm_qw_at<mmp::K / 8, mmp::N>(qw, r, strip));
  for (int g = g0 + lane; g < g1; g += 32) mm_prefetch_l2(sc + (mm_i64)g * mmp::N + strip);
}

/* The prefill core of the variant (a template, so that the core not taken is not instantiated
 * for this MI). */
template <int MI>
__device__ __forceinline__ void mm_gemm_w4_core(const mm_bf16* x, const mm_i64* arow, const int* bcol, int mrows,
                                                const mm_u32* qw, const __half* sc, float (&acc)[MI][4][4]) {
  if constexpr (mmp::VARIANT == 2)
    mm_w4_mma2<mmp::K, mmp::N, mmp::G, MI>(x, arow, bcol, mrows, qw, sc, acc);
  else
    mm_w4_mma<mmp::K, mmp::N, mmp::G>(x, arow, bcol, qw, sc, acc);
}

// Resident blocks per SM the registers are budgeted for: the v2 core with 128-row tiles keeps 128
// accumulators per thread and runs one block per SM.
constexpr int MM_MIN_BLOCKS = mmp::VARIANT == 2 && mmp::BM == 128 ? 1 : 512 / mmp::THREADS;

extern "C" __global__ void MM_CLUSTER_DIMS __launch_bounds__(mmp::THREADS, MM_MIN_BLOCKS)
    MM_ENTRY(const mm_kernel_args args) {
  MM_OPERANDS(args);   // typed views of ptr[] (codegen/kernels/kinds.def)
  const mm_i64 M = args.dim[mmp::MDIM == 0 ? MM_DIM_T : MM_DIM_R];
  if constexpr (mmp::VARIANT == 0) {
    mm_gemm_w4_prefetch(qw, sc);   // this warp's weights to L2 while the previous launch drains
    mm_pdl_enter();
    __shared__ float red[mmp::WK * 16 * 32];
    __shared__ float part[16 * 32];
    // Passes of 16 rows; the last one takes one n-tile (8 rows) when that is enough. The loop
    // bound is uniform over the cluster, so its barriers match.
    for (mm_i64 m0 = 0; m0 < M; m0 += 16) {
      if (M - m0 > 8) mm_gemm_w4_pass<2>(x, qw, sc, y, M, m0, red, part);
      else mm_gemm_w4_pass<1>(x, qw, sc, y, M, m0, red, part);
    }
  } else {
    mm_pdl_enter();
    // v1: 64-row tiles (mm_w4_mma, MI = 2); v2: BM-row tiles (mm_w4_mma2, MI = BM / 32).
    constexpr int BM = mmp::VARIANT == 2 ? mmp::BM : MM_BM, MI = BM / 32;
    __shared__ mm_i64 arow[BM];
    __shared__ int bcol[MM_BN];
    const mm_i64 m0 = (mm_i64)blockIdx.y * BM;
    const int n0 = blockIdx.x * MM_BN;
    if (m0 >= M) return;
    for (int r = threadIdx.x; r < BM; r += mmp::THREADS) arow[r] = m0 + r < M ? m0 + r : -1;
    if (threadIdx.x < MM_BN) bcol[threadIdx.x] = n0 + (int)threadIdx.x < mmp::N ? n0 + (int)threadIdx.x : -1;
    __syncthreads();
    float acc[MI][4][4];
    mm_gemm_w4_core<MI>(x, arow, bcol, (int)(M - m0 < BM ? M - m0 : BM), qw, sc, acc);
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, wm = warp >> 2, wn = warp & 3;
    typedef typename mm_dt<mmp::OUT>::T ot;
#pragma unroll
    for (int mi = 0; mi < MI; ++mi)
#pragma unroll
      for (int ni = 0; ni < 4; ++ni)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const mm_i64 m = m0 + wm * 16 * MI + mi * 16 + (lane >> 2) + 8 * (e >> 1);
          const int n = n0 + wn * 32 + ni * 8 + 2 * (lane & 3) + (e & 1);
          if (m < M && n < mmp::N) mm_store((ot*)y + m * mmp::N + n, acc[mi][ni][e]);
        }
  }
}
