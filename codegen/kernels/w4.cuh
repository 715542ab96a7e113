/* w4.cuh: int4 group-quantized weight building blocks shared by GEMM_W4, MOE_W13 and MOE_W2
 * (prepended to those kinds' sources). Weight layout (docs/kernels.md section 3): qweight i32
 * [K/8, N], nibble j of word [r, n] is row k = 8r + j; scales f16 [K/G, N];
 * W[k, n] = (q - 8) * scale[k / G, n], scales may be negative.
 *
 * GEMV core (decode, M <= 16): a block of 256 threads covers 4*LN columns; lane (ln, tk) loads
 * 16 bytes = 4 columns x 8 k of packed row r = tk + TK*i (TK = 256/LN) with a streaming load, U
 * loads in flight before the first use; the sum over a word's 8 k is done on (q - 8) and scaled
 * once (fp32). (q - 8) is made exact without a conversion: float bits 0x4B000000 | q is 2^23 + q.
 * Partial sums are reduced over tk by shuffles, then across warps in shared memory.
 *
 * MMA core (prefill): 64x128 output tile, K in steps of 64 through a 3-stage cp.async pipeline,
 * 8 warps as 2 (M) x 4 (N), each 32x32 = 2 x 4 m16n8k16 bf16 mma.sync tiles. A comes through
 * ldmatrix.x4 from padded shared rows (row gather: each tile row names its source row, -1 = zero).
 * B fragments are built in registers straight from the packed words in shared memory: a thread's
 * b0/b1 are nibbles (2c, 2c+1) of words r and r+1 of its column, turned into bf16 (128 + q) by
 * bit ops and shifted by -136 with one bf16x2 subtract, exact. The mma accumulates the unscaled
 * sum over one quantization group; at the group end it is scaled per column into fp32 accumulators
 * (so the scale is applied in fp32, as in the reference). */

__device__ __forceinline__ float mm_q8(mm_u32 w, int j) {
  return __uint_as_float(0x4B000000u | ((w >> (4 * j)) & 0xFu)) - 8388616.f;
}
/* sum_j x[j] * (q_j - 8) over the 8 nibbles of one word. */
__device__ __forceinline__ float mm_w4_dot8(mm_u32 w, const float (&xv)[8]) {
  float s = 0.f;
#pragma unroll
  for (int j = 0; j < 8; ++j) s = fmaf(xv[j], mm_q8(w, j), s);
  return s;
}
__device__ __forceinline__ void mm_load_x8(float (&xv)[8], const mm_bf16* p) {
  const uint4 v = __ldg((const uint4*)p);
  xv[0] = mm_bf_lo(v.x); xv[1] = mm_bf_hi(v.x); xv[2] = mm_bf_lo(v.y); xv[3] = mm_bf_hi(v.y);
  xv[4] = mm_bf_lo(v.z); xv[5] = mm_bf_hi(v.z); xv[6] = mm_bf_lo(v.w); xv[7] = mm_bf_hi(v.w);
}
__device__ __forceinline__ uint4 mm_ld_weights(const mm_u32* p) {
  uint4 r;
  asm("ld.global.nc.L1::no_allocate.v4.u32 {%0,%1,%2,%3}, [%4];"
      : "=r"(r.x), "=r"(r.y), "=r"(r.z), "=r"(r.w) : "l"(p));
  return r;
}
__device__ __forceinline__ void mm_ld_scales4(float (&s)[4], const __half* p) {
  const uint2 v = __ldg((const uint2*)p);
  const __half2 a = *(const __half2*)&v.x, b = *(const __half2*)&v.y;
  s[0] = __low2float(a); s[1] = __high2float(a); s[2] = __low2float(b); s[3] = __high2float(b);
}

/* GEMV partial sums. Rows of x: xrow(m) for m < MT (nullptr = skip). NC column sets col[c] (first
 * of 4 columns, in the [K/8, NLD] matrix). acc[m][c][i] += sum over this thread's rows. */
template <int K, int NLD, int G, int MT, int NC, int LN, int U>
__device__ __forceinline__ void mm_w4_gemv(const mm_bf16* const (&xrow)[MT], const mm_u32* qw,
                                           const __half* sc, const int (&col)[NC], float mul,
                                           float (&acc)[MT][NC][4]) {
  constexpr int TK = 256 / LN, ROWS = K / 8, ITER = (ROWS + TK - 1) / TK;
  const int tk = threadIdx.x / LN;
#pragma unroll 1
  for (int i0 = 0; i0 < ITER; i0 += U) {
    uint4 wv[U][NC];
    float sv[U][NC][4];
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const int r = tk + TK * (i0 + u);
      if (i0 + u < ITER && r < ROWS) {
#pragma unroll
        for (int c = 0; c < NC; ++c) {
          wv[u][c] = mm_ld_weights(qw + (mm_i64)r * NLD + col[c]);
          mm_ld_scales4(sv[u][c], sc + (mm_i64)(r * 8 / G) * NLD + col[c]);
        }
      }
    }
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const int r = tk + TK * (i0 + u);
      if (i0 + u < ITER && r < ROWS) {
#pragma unroll
        for (int m = 0; m < MT; ++m) {
          if (xrow[m] == nullptr) continue;
          float xv[8];
          mm_load_x8(xv, xrow[m] + 8 * r);
#pragma unroll
          for (int c = 0; c < NC; ++c) {
            acc[m][c][0] = fmaf(mm_w4_dot8(wv[u][c].x, xv), sv[u][c][0] * mul, acc[m][c][0]);
            acc[m][c][1] = fmaf(mm_w4_dot8(wv[u][c].y, xv), sv[u][c][1] * mul, acc[m][c][1]);
            acc[m][c][2] = fmaf(mm_w4_dot8(wv[u][c].z, xv), sv[u][c][2] * mul, acc[m][c][2]);
            acc[m][c][3] = fmaf(mm_w4_dot8(wv[u][c].w, xv), sv[u][c][3] * mul, acc[m][c][3]);
          }
        }
      }
    }
  }
}

/* Sum acc over the TK threads of each column group. Afterwards fin[m][c][q] (q < 4*LN, column
 * 4*ln + i of set c) holds the block's totals; a __syncthreads() has been done. */
template <int MT, int NC, int LN>
__device__ __forceinline__ void mm_w4_reduce(float (&acc)[MT][NC][4], float* red, float* fin) {
  constexpr int NW = 8, W = MT * NC * 4 * LN;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, ln = threadIdx.x % LN;
#pragma unroll
  for (int m = 0; m < MT; ++m)
#pragma unroll
    for (int c = 0; c < NC; ++c)
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        float v = acc[m][c][i];
#pragma unroll
        for (int o = LN; o < 32; o <<= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
        if (lane < LN) red[warp * W + (m * NC + c) * 4 * LN + 4 * ln + i] = v;
      }
  __syncthreads();
  for (int e = threadIdx.x; e < W; e += 256) {
    float s = 0.f;
#pragma unroll
    for (int w = 0; w < NW; ++w) s += red[w * W + e];
    fin[e] = s;
  }
  __syncthreads();
}

/* ---- MMA core ---- */
constexpr int MM_BM = 64, MM_BN = 128, MM_BK = 64, MM_STAGES = 3, MM_APAD = 8;

__device__ __forceinline__ mm_u32 mm_dq2(mm_u32 w, int c) {
  const mm_u32 x = w >> (8 * c);
  const mm_u32 packed = (x & 0x0Fu) | ((x & 0xF0u) << 12) | 0x43004300u;
  const mm_u32 bias = 0x43084308u;
  __nv_bfloat162 r = __hsub2(*(const __nv_bfloat162*)&packed, *(const __nv_bfloat162*)&bias);
  return *(mm_u32*)&r;
}

/* arow[BM]: source row of x (row stride K) per tile row, -1 = zeros. bcol[BN]: global column per
 * tile column (groups of 8 contiguous), -1 = out of range. acc[mi][ni][e]: tile row
 * wm*32 + mi*16 + lane/4 + 8*(e/2), tile column wn*32 + ni*8 + 2*(lane%4) + (e%2). */
template <int K, int NLD, int G>
__device__ __forceinline__ void mm_w4_mma(const mm_bf16* x, const mm_i64* arow, const int* bcol,
                                          const mm_u32* qw, const __half* sc,
                                          float (&acc)[2][4][4]) {
  static_assert(K % MM_BK == 0 && G % MM_BK == 0, "K and G must be multiples of 64");
  __shared__ __align__(16) mm_bf16 As[MM_STAGES][MM_BM][MM_BK + MM_APAD];
  __shared__ __align__(16) mm_u32 Bs[MM_STAGES][MM_BK / 8][MM_BN];
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int wm = warp >> 2, wn = warp & 3, gq = lane >> 2, cq = lane & 3;
  constexpr int KT = K / MM_BK;
  auto load = [&](int stage, int kt) {
    const int k0 = kt * MM_BK;
#pragma unroll
    for (int l = 0; l < 2; ++l) {
      const int c = tid + 256 * l, r = c >> 3, kc = c & 7;
      const mm_i64 src = arow[r];
      mm_cp_async16(&As[stage][r][kc * 8], src >= 0 ? x + src * K + k0 + kc * 8 : x, src >= 0 ? 16 : 0);
    }
    {
      const int r = tid >> 5, cc = tid & 31, gc = bcol[cc * 4];
      mm_cp_async16(&Bs[stage][r][cc * 4], gc >= 0 ? qw + (mm_i64)(k0 / 8 + r) * NLD + gc : qw,
                    gc >= 0 ? 16 : 0);
    }
  };
  float tmp[2][4][4];
#pragma unroll
  for (int mi = 0; mi < 2; ++mi)
#pragma unroll
    for (int ni = 0; ni < 4; ++ni)
#pragma unroll
      for (int e = 0; e < 4; ++e) { acc[mi][ni][e] = 0.f; tmp[mi][ni][e] = 0.f; }
#pragma unroll
  for (int s = 0; s < MM_STAGES - 1; ++s) {
    if (s < KT) load(s, s);
    mm_cp_async_commit();
  }
#pragma unroll 1
  for (int kt = 0; kt < KT; ++kt) {
    mm_cp_async_wait<MM_STAGES - 2>();
    __syncthreads();
    if (kt + MM_STAGES - 1 < KT) load((kt + MM_STAGES - 1) % MM_STAGES, kt + MM_STAGES - 1);
    mm_cp_async_commit();
    const int st = kt % MM_STAGES;
#pragma unroll
    for (int ks = 0; ks < MM_BK / 16; ++ks) {
      mm_u32 a[2][4];
#pragma unroll
      for (int mi = 0; mi < 2; ++mi)
        mm_ldmatrix_x4(a[mi], &As[st][wm * 32 + mi * 16 + (lane & 15)][ks * 16 + (lane >> 4) * 8]);
#pragma unroll
      for (int ni = 0; ni < 4; ++ni) {
        const int n = wn * 32 + ni * 8 + gq;
        const mm_u32 b0 = mm_dq2(Bs[st][ks * 2][n], cq), b1 = mm_dq2(Bs[st][ks * 2 + 1][n], cq);
#pragma unroll
        for (int mi = 0; mi < 2; ++mi) mm_mma_bf16(tmp[mi][ni], a[mi], b0, b1);
      }
    }
    if (((kt + 1) * MM_BK) % G == 0) {   // end of a quantization group: scale and accumulate
      const int grp = kt * MM_BK / G;
#pragma unroll
      for (int ni = 0; ni < 4; ++ni) {
        float s[2];
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          const int gc = bcol[wn * 32 + ni * 8 + 2 * cq + e];
          s[e] = gc >= 0 ? __half2float(sc[(mm_i64)grp * NLD + gc]) : 0.f;
        }
#pragma unroll
        for (int mi = 0; mi < 2; ++mi)
#pragma unroll
          for (int e = 0; e < 4; ++e) {
            acc[mi][ni][e] = fmaf(tmp[mi][ni][e], s[e & 1], acc[mi][ni][e]);
            tmp[mi][ni][e] = 0.f;
          }
      }
    }
  }
  mm_cp_async_wait<0>();
}
