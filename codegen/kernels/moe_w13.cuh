/* MOE_W13: expert gate/up GEMM with fused silu*mul (docs/kernels.md section 5).
 *   slot s = t*TOPK + j, e = ids[t, j]: g = x[t] . W1_e, u = x[t] . W3_e (fp32),
 *   act[s] = bf16(silu(g) * u), silu(z) = z / (1 + e^-z)
 * Layouts: x bf16[T, H]; w13 qweight i32[E, H/8, 2I] (columns 0..I-1 = w1, I..2I-1 = w3; QL 1:
 *   each expert's matrix in strips of 32 columns, w4.cuh mm_qw_at);
 *   scales f16[E, H/G, 2I]; ids i32[T, TOPK]; offsets i32[E+1], sorted i32[T*TOPK] (MOE_ALIGN,
 *   GROUPED only); act bf16[T*TOPK, I].
 * Constants: mmp::H, I, E, TOPK, G, GROUPED, QL, THREADS; decode: WK, CS (MM_CLUSTER_DIMS),
 *   U (units of 64 k per register set of mm_w4_gv).
 * Variants (building blocks in w4.cuh):
 *   GROUPED = 0 (decode): the GEMV core (mm_w4_gv, M = 1) per slot. A cluster of CS blocks owns
 *     32 output columns n0.. of one slot; each block has 2*WK warps: WK on w1's columns n0.. and
 *     WK on w3's columns I + n0.., each taking 1/(CS*WK) of the quantization groups; the
 *     reduction (mm_w4_gv_finish) hands g and u of a column to one thread for silu*mul. specialize()
 *     picks WK and CS so that batch 1 (TOPK slots) keeps every SM busy (two waves of resident warps).
 *     Grid (ceil(I / 32) * CS, T*TOPK), block (64 WK).
 *   GROUPED = 1 (prefill, v1 core): grouped mma.sync GEMM over MOE_ALIGN's expert ranges. Block y walks the
 *     experts' 64-row tiles (grid y is the upper bound sum_e ceil(n_e / 64) <=
 *     (T*TOPK + E*63) / 64; extra blocks exit); the 128 tile columns interleave 8 columns of w1
 *     and the same 8 of w3, so each thread holds g and u of the same element. Grid
 *     (ceil(I / 64), ceil((T*TOPK + 63 E) / 64)).
 *   GROUPED = 2 (prefill): the same grouped GEMM on the v2 core (mm_w4_mma2: B dequantized once
 *     per block into shared memory, ldmatrix for both operands) with BM-row tiles (64 or 128); an
 *     expert's rows are split evenly over its ceil(n_e / BM) tiles and m16 tiles of padding are
 *     skipped; tiles found by a block-wide scan (mm_moe_tile). Grid (ceil(I / 64),
 *     ceil((T*TOPK + (BM-1) E) / BM)); 89 or 85 KiB of dynamic shared memory. */
__device__ __forceinline__ float mm_silu_mul(float g, float u) { return g / (1.f + expf(-g)) * u; }

// Resident blocks per SM the registers are budgeted for (v2 core with 128-row tiles: one).
constexpr int MM_MIN_BLOCKS = mmp::GROUPED == 2 && mmp::BM == 128 ? 1 : 512 / mmp::THREADS;

extern "C" __global__ void MM_CLUSTER_DIMS __launch_bounds__(mmp::THREADS, MM_MIN_BLOCKS)
    MM_ENTRY(const mm_kernel_args args) {
  MM_OPERANDS(args);   // typed views of ptr[] (codegen/kernels/kinds.def)
  constexpr int N2 = 2 * mmp::I;
  constexpr mm_i64 QW_E = (mm_i64)(mmp::H / 8) * N2, SC_E = (mm_i64)(mmp::H / mmp::G) * N2;
  const mm_i64 T = args.dim[MM_DIM_T];
  // The experts to stream come from the previous launch (the router): nothing to prefetch.
  mm_pdl_enter();
  if constexpr (mmp::GROUPED == 0) {
    constexpr int WK = mmp::WK, CS = mmp::CS, P = WK * CS, NG = mmp::H / mmp::G, UPG = mmp::G / 64;
    __shared__ float red[2 * WK * 8 * 32];
    __shared__ float part[2 * 8 * 32];
    // Every block of a cluster has the same slot, so these exits leave whole clusters.
    const mm_i64 slot = blockIdx.y;
    if (slot >= T * mmp::TOPK) return;
    const int e = ids[slot] - mmp::E0;   // held experts [E0, E0 + E) (kinds.def)
    if (e < 0 || e >= mmp::E) return;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, gq = lane >> 2;
    const int wn = warp / WK, wk = warp % WK;
    const int n0 = (int)(blockIdx.x / CS) * 32, rank = CS > 1 ? (int)mm_cluster_rank() : 0;
    const int p = rank * WK + wk, g0 = p * NG / P, g1 = (p + 1) * NG / P;
    const mm_bf16* xr[1] = {gq == 0 ? x + (slot / mmp::TOPK) * mmp::H : nullptr};
    float acc[1][2][4];
#pragma unroll
    for (int t = 0; t < 2; ++t)
#pragma unroll
      for (int i = 0; i < 4; ++i) acc[0][t][i] = 0.f;
    mm_w4_gv<N2, mmp::G, 1, mmp::U, mmp::H / 8>(xr, qw + e * QW_E, sc + e * SC_E, (wn ? mmp::I : 0) + n0 + 4 * gq,
                               n0 + 4 * gq < mmp::I, g0 * UPG, g1 * UPG, 1.f, acc);
    mm_w4_gv_finish<1, WK, 2, CS>(acc, 1, red, part, [&](int, int c, const float (&v)[2]) {
      if (n0 + c < mmp::I) act[slot * mmp::I + n0 + c] = __float2bfloat16_rn(mm_silu_mul(v[0], v[1]));
    });
  } else if constexpr (mmp::GROUPED == 2) {
    constexpr int BM = mmp::BM, MI = BM / 32;
    __shared__ mm_i64 arow[BM];
    __shared__ mm_i64 orow[BM];
    __shared__ int bcol[MM_BN];
    int r0 = 0, r1 = 0;
    const int ex = mm_moe_tile(offsets, mmp::E, BM, blockIdx.y, &r0, &r1);
    if (ex < 0) return;
    const int n0 = blockIdx.x * 64;
    for (int i = threadIdx.x; i < BM; i += mmp::THREADS) {
      const int r = r0 + i;
      const mm_i64 slot = r < r1 ? sorted[r] : -1;
      orow[i] = slot;
      arow[i] = slot >= 0 ? slot / mmp::TOPK : -1;
    }
    if (threadIdx.x < MM_BN) {
      const int c = threadIdx.x, nt = c >> 3, n = n0 + (nt >> 1) * 8 + (c & 7);
      bcol[c] = n < mmp::I ? ((nt & 1) ? mmp::I : 0) + n : -1;
    }
    __syncthreads();
    float acc[MI][4][4];
    mm_w4_mma2<mmp::H, N2, mmp::G, MI>(x, arow, bcol, r1 - r0, qw + ex * QW_E, sc + ex * SC_E, acc);
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, wm = warp >> 2, wn = warp & 3;
#pragma unroll
    for (int mi = 0; mi < MI; ++mi)
#pragma unroll
      for (int p = 0; p < 2; ++p)          // n8 tiles 2p (w1) and 2p+1 (w3) cover the same columns
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int r = wm * 16 * MI + mi * 16 + (lane >> 2) + 8 * (e >> 1);
          const int n = n0 + (wn * 2 + p) * 8 + 2 * (lane & 3) + (e & 1);
          const mm_i64 slot = orow[r];
          if (slot >= 0 && n < mmp::I)
            act[slot * mmp::I + n] = __float2bfloat16_rn(mm_silu_mul(acc[mi][2 * p][e], acc[mi][2 * p + 1][e]));
        }
  } else {
    __shared__ mm_i64 arow[MM_BM];
    __shared__ mm_i64 orow[MM_BM];
    __shared__ int bcol[MM_BN];
    __shared__ int sel[2];   // expert, row tile
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
    const int n0 = blockIdx.x * 64;
    if (threadIdx.x < MM_BM) {
      const int r = r0 + threadIdx.x;
      const mm_i64 slot = r < r1 ? sorted[r] : -1;
      orow[threadIdx.x] = slot;
      arow[threadIdx.x] = slot >= 0 ? slot / mmp::TOPK : -1;
    }
    if (threadIdx.x < MM_BN) {
      const int c = threadIdx.x, nt = c >> 3, n = n0 + (nt >> 1) * 8 + (c & 7);
      bcol[c] = n < mmp::I ? ((nt & 1) ? mmp::I : 0) + n : -1;
    }
    __syncthreads();
    float acc[2][4][4];
    mm_w4_mma<mmp::H, N2, mmp::G>(x, arow, bcol, qw + ex * QW_E, sc + ex * SC_E, acc);
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, wm = warp >> 2, wn = warp & 3;
#pragma unroll
    for (int mi = 0; mi < 2; ++mi)
#pragma unroll
      for (int p = 0; p < 2; ++p)          // n8 tiles 2p (w1) and 2p+1 (w3) cover the same columns
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int r = wm * 32 + mi * 16 + (lane >> 2) + 8 * (e >> 1);
          const int n = n0 + (wn * 2 + p) * 8 + 2 * (lane & 3) + (e & 1);
          const mm_i64 slot = orow[r];
          if (slot >= 0 && n < mmp::I)
            act[slot * mmp::I + n] = __float2bfloat16_rn(mm_silu_mul(acc[mi][2 * p][e], acc[mi][2 * p + 1][e]));
        }
  }
}
