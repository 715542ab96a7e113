/* MOE_W2: expert down GEMM with the routing weight (docs/kernels.md section 5).
 *   slot s = t*TOPK + j, e = ids[t, j], c_s = weights[t, j] * (act[s] . W2_e)      fp32
 *   COMBINE = 1: y bf16[T, H], y[t] = bf16(sum_j c_{t*TOPK+j});  COMBINE = 0: y f32[T*TOPK, H] = c_s
 * Layouts: act bf16[T*TOPK, I]; w2 qweight i32[E, I/8, H]; scales f16[E, I/G, H]; ids i32[T, TOPK];
 *   weights f32[T, TOPK]; offsets i32[E+1], sorted i32[T*TOPK] (GROUPED only).
 * Constants: mmp::H, I, E, TOPK, G, GROUPED, COMBINE, LN (decode), THREADS (= 256).
 * Variants (building blocks in w4.cuh):
 *   GROUPED = 0 (decode): one block per (4*LN output columns, token if COMBINE else slot); the
 *     block streams the packed rows of all its experts as one flattened list (expert, row), so a
 *     thread keeps several 16-byte loads in flight across experts; the routing weight scales each
 *     expert's partial sums in fp32. Grid (H / (4 LN), COMBINE ? T : T*TOPK).
 *   GROUPED = 1 (prefill, COMBINE must be 0; MOE_COMBINE sums): grouped mma.sync GEMM over
 *     MOE_ALIGN's expert ranges, routing weight in the epilogue. Grid
 *     (ceil(H / 128), ceil((T*TOPK + 63 E) / 64)). */
extern "C" __global__ void __launch_bounds__(mmp::THREADS) MM_ENTRY(const mm_kernel_args args) {
  const mm_bf16* act = (const mm_bf16*)args.ptr[0];
  const mm_u32* qw = (const mm_u32*)args.ptr[1];
  const __half* sc = (const __half*)args.ptr[2];
  const int* ids = (const int*)args.ptr[3];
  const float* weights = (const float*)args.ptr[4];
  const int* offsets = (const int*)args.ptr[5];
  const int* sorted = (const int*)args.ptr[6];
  void* y = args.ptr[7];
  constexpr mm_i64 QW_E = (mm_i64)(mmp::I / 8) * mmp::H, SC_E = (mm_i64)(mmp::I / mmp::G) * mmp::H;
  const mm_i64 T = args.dim[MM_DIM_T];
  if constexpr (mmp::GROUPED == 0) {
    constexpr int LN = mmp::LN, TK = 256 / LN, ROWS = mmp::I / 8;
    constexpr int NJ = mmp::COMBINE ? mmp::TOPK : 1, ITEMS = NJ * ROWS;
    constexpr int ITER = (ITEMS + TK - 1) / TK, U = 4;
    __shared__ float red[8 * 4 * LN];
    __shared__ float fin[4 * LN];
    __shared__ int se[NJ];
    __shared__ float sw[NJ];
    const mm_i64 b = blockIdx.y;   // token (COMBINE) or slot
    if (b >= (mmp::COMBINE ? T : T * mmp::TOPK)) return;
    const mm_i64 slot0 = mmp::COMBINE ? b * mmp::TOPK : b;
    if (threadIdx.x < NJ) {
      const int e = ids[slot0 + threadIdx.x];
      const bool ok = e >= 0 && e < mmp::E;
      se[threadIdx.x] = ok ? e : 0;
      sw[threadIdx.x] = ok ? weights[slot0 + threadIdx.x] : 0.f;   // a bad id contributes nothing
    }
    __syncthreads();
    const int n0 = blockIdx.x * 4 * LN, ln = threadIdx.x % LN, tk = threadIdx.x / LN;
    const int col = n0 + 4 * ln;
    float acc[1][1][4] = {{{0.f, 0.f, 0.f, 0.f}}};
#pragma unroll 1
    for (int i0 = 0; i0 < ITER; i0 += U) {
      uint4 wv[U];
      float sv[U][4];
#pragma unroll
      for (int u = 0; u < U; ++u) {
        const int it = tk + TK * (i0 + u);
        if (i0 + u < ITER && it < ITEMS) {
          const int j = it / ROWS, r = it % ROWS, e = se[j];
          wv[u] = mm_ld_weights(qw + e * QW_E + (mm_i64)r * mmp::H + col);
          mm_ld_scales4(sv[u], sc + e * SC_E + (mm_i64)(r * 8 / mmp::G) * mmp::H + col);
        }
      }
#pragma unroll
      for (int u = 0; u < U; ++u) {
        const int it = tk + TK * (i0 + u);
        if (i0 + u < ITER && it < ITEMS) {
          const int j = it / ROWS, r = it % ROWS;
          const float wj = sw[j];
          float xv[8];
          mm_load_x8(xv, act + (slot0 + j) * mmp::I + 8 * r);
          acc[0][0][0] = fmaf(mm_w4_dot8(wv[u].x, xv), sv[u][0] * wj, acc[0][0][0]);
          acc[0][0][1] = fmaf(mm_w4_dot8(wv[u].y, xv), sv[u][1] * wj, acc[0][0][1]);
          acc[0][0][2] = fmaf(mm_w4_dot8(wv[u].z, xv), sv[u][2] * wj, acc[0][0][2]);
          acc[0][0][3] = fmaf(mm_w4_dot8(wv[u].w, xv), sv[u][3] * wj, acc[0][0][3]);
        }
      }
    }
    mm_w4_reduce<1, 1, LN>(acc, red, fin);
    if (threadIdx.x < 4 * LN && n0 + (int)threadIdx.x < mmp::H) {
      const int n = n0 + threadIdx.x;
      if constexpr (mmp::COMBINE) ((mm_bf16*)y)[b * mmp::H + n] = __float2bfloat16_rn(fin[threadIdx.x]);
      else ((float*)y)[b * mmp::H + n] = fin[threadIdx.x];
    }
  } else {
    // COMBINE == 0 here (specialize() refuses GROUPED with COMBINE): per-slot f32 rows.
    __shared__ mm_i64 arow[MM_BM];
    __shared__ float rw[MM_BM];
    __shared__ int bcol[MM_BN];
    __shared__ int sel[2];
    if (threadIdx.x == 0) {
      int rem = blockIdx.y, ex = -1, tile = 0;
      for (int k = 0; k < mmp::E; ++k) {
        const int cnt = offsets[k + 1] - offsets[k];
        const int tiles = (cnt + MM_BM - 1) / MM_BM;
        if (rem < tiles) { ex = k; tile = rem; break; }
        rem -= tiles;
      }
      sel[0] = ex;
      sel[1] = tile;
    }
    __syncthreads();
    const int ex = sel[0];
    if (ex < 0) return;
    const int r0 = offsets[ex] + sel[1] * MM_BM, r1 = offsets[ex + 1];
    const int n0 = blockIdx.x * MM_BN;
    if (threadIdx.x < MM_BM) {
      const int r = r0 + threadIdx.x;
      const mm_i64 slot = r < r1 ? sorted[r] : -1;
      arow[threadIdx.x] = slot;
      rw[threadIdx.x] = slot >= 0 ? weights[slot] : 0.f;
    }
    if (threadIdx.x < MM_BN) bcol[threadIdx.x] = n0 + (int)threadIdx.x < mmp::H ? n0 + (int)threadIdx.x : -1;
    __syncthreads();
    float acc[2][4][4];
    mm_w4_mma<mmp::I, mmp::H, mmp::G>(act, arow, bcol, qw + ex * QW_E, sc + ex * SC_E, acc);
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, wm = warp >> 2, wn = warp & 3;
#pragma unroll
    for (int mi = 0; mi < 2; ++mi)
#pragma unroll
      for (int ni = 0; ni < 4; ++ni)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int r = wm * 32 + mi * 16 + (lane >> 2) + 8 * (e >> 1);
          const int n = n0 + wn * 32 + ni * 8 + 2 * (lane & 3) + (e & 1);
          const mm_i64 slot = arow[r];
          if (slot >= 0 && n < mmp::H) ((float*)y)[slot * mmp::H + n] = rw[r] * acc[mi][ni][e];
        }
  }
}
