/* MOE_W2: expert down GEMM with the routing weight (docs/kernels.md section 5).
 *   slot s = t*TOPK + j, e = ids[t, j], c_s = weights[t, j] * (act[s] . W2_e)      fp32
 *   COMBINE = 1: y bf16[T, H], y[t] = bf16(sum_j c_{t*TOPK+j});  COMBINE = 0: y f32[T*TOPK, H] = c_s
 * Layouts: act bf16[T*TOPK, I]; w2 qweight i32[E, I/8, H] (QL 1: each expert's matrix in strips of
 *   32 columns, w4.cuh mm_qw_at); scales f16[E, I/G, H]; ids i32[T, TOPK];
 *   weights f32[T, TOPK]; offsets i32[E+1], sorted i32[T*TOPK] (GROUPED only).
 * Constants: mmp::H, I, E, TOPK, G, GROUPED, COMBINE, QL, THREADS; decode: WK, CS
 *   (MM_CLUSTER_DIMS), U (units of 64 k per register set of mm_w4_gv).
 * Variants (building blocks in w4.cuh):
 *   GROUPED = 0 (decode): the GEMV core (mm_w4_gv, M = 1). A cluster of CS blocks of WK warps owns
 *     32 output columns of one token (COMBINE) or slot. With COMBINE the K axis is the TOPK
 *     experts' groups one after another (TOPK * I/G groups, expert j's rows multiplied by act row
 *     t*TOPK + j and scaled by its routing weight), so the whole sum over experts is one split-K
 *     GEMV whose CS*WK warps each stream an equal share of the experts' weights. Routing weights
 *     scale the per-group sums in fp32. Grid (ceil(H / 32) * CS, COMBINE ? T : T*TOPK),
 *     block (32 WK).
 *   GROUPED = 1 (prefill, COMBINE must be 0; MOE_COMBINE sums): grouped mma.sync GEMM over
 *     MOE_ALIGN's expert ranges, routing weight in the epilogue. Grid
 *     (ceil(H / 128), ceil((T*TOPK + 63 E) / 64)).
 *   GROUPED = 2 (prefill): the same on the v2 core (mm_w4_mma2, BM-row tiles, see MOE_W13). */
// Resident blocks per SM the registers are budgeted for (v2 core with 128-row tiles: one).
constexpr int MM_MIN_BLOCKS = mmp::GROUPED == 2 && mmp::BM == 128 ? 1 : 512 / mmp::THREADS;

extern "C" __global__ void MM_CLUSTER_DIMS __launch_bounds__(mmp::THREADS, MM_MIN_BLOCKS)
    MM_ENTRY(const mm_kernel_args args) {
  MM_OPERANDS(args);   // typed views of ptr[] (codegen/kernels/kinds.def)
  constexpr mm_i64 QW_E = (mm_i64)(mmp::I / 8) * mmp::H, SC_E = (mm_i64)(mmp::I / mmp::G) * mmp::H;
  const mm_i64 T = args.dim[MM_DIM_T];
  if constexpr (mmp::GROUPED == 0) {
    constexpr int WK = mmp::WK, CS = mmp::CS, P = WK * CS, NGI = mmp::I / mmp::G, UPG = mmp::G / 64;
    constexpr int NJ = mmp::COMBINE ? mmp::TOPK : 1, NG = NJ * NGI;
    __shared__ float red[WK * 8 * 32];
    __shared__ float part[8 * 32];
    const mm_i64 b = blockIdx.y;   // token (COMBINE) or slot; the same for the whole cluster
    const mm_i64 slot0 = mmp::COMBINE ? b * mmp::TOPK : b;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, gq = lane >> 2;
    const int n0 = (int)(blockIdx.x / CS) * 32, rank = CS > 1 ? (int)mm_cluster_rank() : 0;
    const int p = rank * WK + warp, g0 = p * NG / P, g1 = (p + 1) * NG / P;
    const int col4 = n0 + 4 * gq;
    // The routed experts' rows this warp will stream go to L2 before the programmatic-launch wait.
    // `ids` was written two launches back (ROUTE_TOPK, then MOE_W13, then this: the decode
    // lowering emits them back to back), so it may be read here (common.cuh).
    if (b < (mmp::COMBINE ? T : T * mmp::TOPK) && n0 < mmp::H)
      for (int j = g0 / NGI; j < NJ && j * NGI < g1; ++j) {
        const int e = ids[slot0 + j] - mmp::E0;
        if (e < 0 || e >= mmp::E) continue;
        const int lo = (g0 > j * NGI ? g0 : j * NGI) - j * NGI;
        const int hi = (g1 < (j + 1) * NGI ? g1 : (j + 1) * NGI) - j * NGI;
        for (int r = lo * (mmp::G / 8) + lane; r < hi * (mmp::G / 8); r += 32)
          mm_prefetch_l2(mm_qw_at<mmp::I / 8, mmp::H>(qw + e * QW_E, r, n0));
        for (int g = lo + lane; g < hi; g += 32) mm_prefetch_l2(sc + e * SC_E + (mm_i64)g * mmp::H + n0);
      }
    mm_pdl_enter();
    if (b >= (mmp::COMBINE ? T : T * mmp::TOPK)) return;
    float acc[1][2][4];
#pragma unroll
    for (int t = 0; t < 2; ++t)
#pragma unroll
      for (int i = 0; i < 4; ++i) acc[0][t][i] = 0.f;
    // This warp's groups [g0, g1) of the experts' concatenated K, one expert segment at a time.
    for (int j = g0 / NGI; j < NJ && j * NGI < g1; ++j) {
      const int e = ids[slot0 + j] - mmp::E0;   // held experts [E0, E0 + E) (kinds.def)
      if (e < 0 || e >= mmp::E) continue;   // a bad id contributes nothing
      const int lo = (g0 > j * NGI ? g0 : j * NGI) - j * NGI;
      const int hi = (g1 < (j + 1) * NGI ? g1 : (j + 1) * NGI) - j * NGI;
      const mm_bf16* xr[1] = {gq == 0 ? act + (slot0 + j) * mmp::I : nullptr};
      mm_w4_gv<mmp::H, mmp::G, 1, mmp::U, mmp::I / 8>(xr, qw + e * QW_E, sc + e * SC_E, col4, col4 < mmp::H, lo * UPG, hi * UPG,
                                     weights[slot0 + j], acc);
    }
    mm_w4_gv_finish<1, WK, 1, CS>(acc, 1, red, part, [&](int, int c, const float (&v)[1]) {
      const int n = n0 + c;
      if (n >= mmp::H) return;
      if constexpr (mmp::COMBINE) ((mm_bf16*)y)[b * mmp::H + n] = __float2bfloat16_rn(v[0]);
      else ((float*)y)[b * mmp::H + n] = v[0];
    });
  } else if constexpr (mmp::GROUPED == 2) {
    constexpr int BM = mmp::BM, MI = BM / 32;
    __shared__ mm_i64 arow[BM];
    __shared__ float rw[BM];
    __shared__ int bcol[MM_BN];
    int r0 = 0, r1 = 0;
    const int ex = mm_moe_tile(offsets, mmp::E, BM, blockIdx.y, &r0, &r1);
    if (ex < 0) return;
    const int n0 = blockIdx.x * MM_BN;
    for (int i = threadIdx.x; i < BM; i += mmp::THREADS) {
      const int r = r0 + i;
      const mm_i64 slot = r < r1 ? sorted[r] : -1;
      arow[i] = slot;
      rw[i] = slot >= 0 ? weights[slot] : 0.f;
    }
    if (threadIdx.x < MM_BN) bcol[threadIdx.x] = n0 + (int)threadIdx.x < mmp::H ? n0 + (int)threadIdx.x : -1;
    __syncthreads();
    float acc[MI][4][4];
    mm_w4_mma2<mmp::I, mmp::H, mmp::G, MI>(act, arow, bcol, r1 - r0, qw + ex * QW_E, sc + ex * SC_E, acc);
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, wm = warp >> 2, wn = warp & 3;
#pragma unroll
    for (int mi = 0; mi < MI; ++mi)
#pragma unroll
      for (int ni = 0; ni < 4; ++ni)
#pragma unroll
        for (int e = 0; e < 4; e += 2) {   // two adjacent columns per 8-byte store
          const int r = wm * 16 * MI + mi * 16 + (lane >> 2) + 8 * (e >> 1);
          const int n = n0 + wn * 32 + ni * 8 + 2 * (lane & 3);
          const mm_i64 slot = arow[r];
          if (slot >= 0 && n < mmp::H)
            *(float2*)((float*)y + slot * mmp::H + n) = make_float2(rw[r] * acc[mi][ni][e], rw[r] * acc[mi][ni][e + 1]);
        }
  } else {
    mm_pdl_enter();
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
