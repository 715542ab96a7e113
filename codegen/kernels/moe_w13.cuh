/* MOE_W13: expert gate/up GEMM with fused silu*mul (docs/kernels.md section 5).
 *   slot s = t*TOPK + j, e = ids[t, j]: g = x[t] . W1_e, u = x[t] . W3_e (fp32),
 *   act[s] = bf16(silu(g) * u), silu(z) = z / (1 + e^-z)
 * Layouts: x bf16[T, H]; w13 qweight i32[E, H/8, 2I] (columns 0..I-1 = w1, I..2I-1 = w3);
 *   scales f16[E, H/G, 2I]; ids i32[T, TOPK]; offsets i32[E+1], sorted i32[T*TOPK] (MOE_ALIGN,
 *   GROUPED only); act bf16[T*TOPK, I].
 * Constants: mmp::H, I, E, TOPK, G, GROUPED, LN (decode), THREADS (= 256).
 * Variants (building blocks in w4.cuh):
 *   GROUPED = 0 (decode): one block per (4*LN columns of w1 and the same of w3, slot): the GEMV
 *     core with two column sets, silu*mul in the epilogue. Grid (I / (4 LN), T*TOPK).
 *   GROUPED = 1 (prefill): grouped mma.sync GEMM over MOE_ALIGN's expert ranges. Block y walks the
 *     experts' 64-row tiles (grid y is the upper bound sum_e ceil(n_e / 64) <=
 *     (T*TOPK + E*63) / 64; extra blocks exit); the 128 tile columns interleave 8 columns of w1
 *     and the same 8 of w3, so each thread holds g and u of the same element. Grid
 *     (ceil(I / 64), ceil((T*TOPK + 63 E) / 64)). */
__device__ __forceinline__ float mm_silu_mul(float g, float u) { return g / (1.f + expf(-g)) * u; }

extern "C" __global__ void __launch_bounds__(mmp::THREADS) MM_ENTRY(const mm_kernel_args args) {
  const mm_bf16* x = (const mm_bf16*)args.ptr[0];
  const mm_u32* qw = (const mm_u32*)args.ptr[1];
  const __half* sc = (const __half*)args.ptr[2];
  const int* ids = (const int*)args.ptr[3];
  const int* offsets = (const int*)args.ptr[4];
  const int* sorted = (const int*)args.ptr[5];
  mm_bf16* act = (mm_bf16*)args.ptr[6];
  constexpr int N2 = 2 * mmp::I;
  constexpr mm_i64 QW_E = (mm_i64)(mmp::H / 8) * N2, SC_E = (mm_i64)(mmp::H / mmp::G) * N2;
  const mm_i64 T = args.dim[MM_DIM_T];
  if constexpr (mmp::GROUPED == 0) {
    constexpr int LN = mmp::LN;
    __shared__ float red[8 * 2 * 4 * LN];
    __shared__ float fin[2 * 4 * LN];
    const mm_i64 slot = blockIdx.y;
    if (slot >= T * mmp::TOPK) return;
    const int e = ids[slot];
    if (e < 0 || e >= mmp::E) return;
    const int n0 = blockIdx.x * 4 * LN, ln = threadIdx.x % LN;
    const mm_bf16* xrow[1] = {x + (slot / mmp::TOPK) * mmp::H};
    const int col[2] = {n0 + 4 * ln, mmp::I + n0 + 4 * ln};
    float acc[1][2][4];
#pragma unroll
    for (int c = 0; c < 2; ++c)
#pragma unroll
      for (int i = 0; i < 4; ++i) acc[0][c][i] = 0.f;
    mm_w4_gemv<mmp::H, N2, mmp::G, 1, 2, LN, 4>(xrow, qw + e * QW_E, sc + e * SC_E, col, 1.f, acc);
    mm_w4_reduce<1, 2, LN>(acc, red, fin);
    if (threadIdx.x < 4 * LN && n0 + (int)threadIdx.x < mmp::I)
      act[slot * mmp::I + n0 + threadIdx.x] =
          __float2bfloat16_rn(mm_silu_mul(fin[threadIdx.x], fin[4 * LN + threadIdx.x]));
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
