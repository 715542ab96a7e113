/* w4.cuh: int4 group-quantized weight building blocks shared by GEMM_W4, MOE_W13 and MOE_W2
 * (prepended to those kinds' sources). Weight layout (docs/kernels.md section 3): qweight i32
 * [K/8, N], nibble j of word [r, n] is row k = 8r + j; scales f16 [K/G, N];
 * W[k, n] = (q - 8) * scale[k / G, n], scales may be negative.
 *
 * Decode GEMV core (M <= 16 rows, mm_w4_gv): tensor cores with the weights as the A operand, so
 * each weight is dequantized once whatever M is. A warp owns a strip of 32 columns and a range of
 * quantization groups; per 32 k a lane streams one 16-byte word quad (4 columns, packed row
 * 4c + (lane & 3)): a warp load covers 4 rows x 128 contiguous bytes. The mma's k order is a
 * permutation of the true k (free, since the same permutation is applied to x): nibbles j and j+4
 * of a word become one bf16x2 (128 + q, by a mask and an or, then - 136: exact q - 8), and x's
 * 8 values of a lane are paired the same way with byte permutes. A = 16 columns (two per lane word
 * pair), B = x (8 rows per n-tile, NT = 2 for M <= 16), m16n8k16 bf16 -> fp32. The mma sums one
 * quantization group unscaled; at the group end it is scaled per column in fp32 (as the
 * reference does). Two register sets of U units of 64 k (two 16-byte weight loads and the group's
 * scales each) alternate: one is loaded while the other is consumed. Warps (and the blocks of a thread block cluster) that
 * share a strip split K; mm_w4_gv_finish reduces them in shared memory, then across the cluster
 * through distributed shared memory, in a fixed order (deterministic).
 *
 * MMA core (prefill): 64x128 output tile, K in steps of 64 through a 3-stage cp.async pipeline,
 * 8 warps as 2 (M) x 4 (N), each 32x32 = 2 x 4 m16n8k16 bf16 mma.sync tiles. A comes through
 * ldmatrix.x4 from padded shared rows (row gather: each tile row names its source row, -1 = zero).
 * B fragments are built in registers straight from the packed words in shared memory: a thread's
 * b0/b1 are nibbles (2c, 2c+1) of words r and r+1 of its column, turned into bf16 (128 + q) by
 * bit ops and shifted by -136 with one bf16x2 subtract, exact. The mma accumulates the unscaled
 * sum over one quantization group; at the group end it is scaled per column into fp32 accumulators
 * (so the scale is applied in fp32, as in the reference). */

/* ---- packed-word layout ----
 * Word (row, col) of a packed matrix of KR = K/8 rows and NLD columns, by the kind's constant QL
 * (kinds.def): 0 GPTQ rows [KR, NLD]; 1 strips of 32 columns [NLD/32][KR][32], each strip's rows
 * one contiguous run (the decode GEMV's warps stream contiguous memory instead of 128 bytes at a
 * stride of a row; the loader lays weights out so, runtime/src/weight_stream.cpp). The 16-byte
 * loads start at col % 4 == 0 and so never cross a strip. */
template <int KR, int NLD>
__device__ __forceinline__ const mm_u32* mm_qw_at(const mm_u32* qw, mm_i64 row, int col) {
  if constexpr (mmp::QL == 1) {
    static_assert(NLD % 32 == 0, "strips of 32 columns need NLD % 32 == 0");
    return qw + (mm_i64)(col >> 5) * (KR * 32) + row * 32 + (col & 31);
  } else {
    return qw + row * NLD + col;
  }
}

/* ---- decode GEMV core ---- */
__device__ __forceinline__ uint4 mm_ld_weights(const mm_u32* p) {
  uint4 r;
  asm("ld.global.nc.L1::no_allocate.v4.u32 {%0,%1,%2,%3}, [%4];"
      : "=r"(r.x), "=r"(r.y), "=r"(r.z), "=r"(r.w) : "l"(p));
  return r;
}
/* (v & 0x000F000F) | 0x43004300 in one instruction: nibbles 0 and 4 of v as the bf16 pair
 * (128 + q0, 128 + q4). Written as lop3 because the compiler emits an and and an or (both
 * operands are immediates, and one instruction takes only one). */
__device__ __forceinline__ mm_u32 mm_nib_bf2(mm_u32 v) {
  mm_u32 r;
  asm("lop3.b32 %0, %1, %2, %3, 0xEA;" : "=r"(r) : "r"(v), "n"(0x000F000F), "n"(0x43004300));
  return r;
}
/* bf16x2 (q_j - 8, q_{j+4} - 8) of nibbles j and j + 4 of a packed word. */
__device__ __forceinline__ mm_u32 mm_dq_pair(mm_u32 w, int j) {
  const mm_u32 packed = mm_nib_bf2(w >> (4 * j));
  const mm_u32 bias = 0x43084308u;
  __nv_bfloat162 r = __hsub2(*(const __nv_bfloat162*)&packed, *(const __nv_bfloat162*)&bias);
  return *(mm_u32*)&r;
}

/* acc[nt][t][e] += mul * sum over units [u0, u1) (64 k each, group aligned) of this lane's
 * outputs: column col4 + 2t + (e >> 1), row nt*8 + 2*(lane & 3) + (e & 1).
 * xr[nt]: this lane's x row nt*8 + lane/4 (K offsets only), or nullptr for a row past M.
 * col4 = strip + 4*(lane/4); cok: those 4 columns exist. qw/sc: the matrix (leading dimension
 * NLD, KR packed rows, layout mmp::QL; 16-byte aligned rows).
 * Pipeline: two register sets of U units (weights + the group-end scales); the loads of one set
 * are issued before the other is consumed, so 1-2 sets are always in flight. x (a few KB, shared
 * by every warp, L2-resident) is loaded one unit ahead of its use, keeping registers for weights. */
template <int NLD, int G, int NT, int U, int KR>
struct mm_w4_gv_set {
  uint4 w[U][2];
  uint2 s[U];
};

template <int NLD, int G, int NT, int U, int KR>
__device__ __forceinline__ void mm_w4_gv_load(mm_w4_gv_set<NLD, G, NT, U, KR>& st, const mm_u32* qw, const __half* sc,
                                              int col4, bool cok, int ub, int u1) {
  const int cq = threadIdx.x & 3;
#pragma unroll
  for (int u = 0; u < U; ++u) {
    const int un = ub + u;
    st.s[u] = make_uint2(0u, 0u);
    st.w[u][0] = st.w[u][1] = make_uint4(0u, 0u, 0u, 0u);
    if (cok && un < u1) {
#pragma unroll
      for (int h = 0; h < 2; ++h) st.w[u][h] = mm_ld_weights(mm_qw_at<KR, NLD>(qw, un * 8 + 4 * h + cq, col4));
      if (((un + 1) * 64) % G == 0) st.s[u] = __ldg((const uint2*)(sc + (mm_i64)(un * 64 / G) * NLD + col4));
    }
  }
}

/* x of unit un for this lane (zeros past M or past the range). */
template <int NT>
__device__ __forceinline__ void mm_w4_gv_x(uint4 (&xv)[2][NT], const mm_bf16* const (&xr)[NT], int un, int u1) {
  const int cq = threadIdx.x & 3;
#pragma unroll
  for (int h = 0; h < 2; ++h)
#pragma unroll
    for (int nt = 0; nt < NT; ++nt)
      xv[h][nt] = xr[nt] != nullptr && un < u1 ? __ldg((const uint4*)(xr[nt] + un * 64 + 32 * h + 8 * cq))
                                               : make_uint4(0u, 0u, 0u, 0u);
}

/* Consumes the units of one register set; xc holds the x of the set's first unit on entry and
 * that of the next unit on return (each unit's x is loaded one unit ahead, hiding its L2 latency
 * behind a unit of math). */
template <int NLD, int G, int NT, int U, int KR>
__device__ __forceinline__ void mm_w4_gv_use(const mm_w4_gv_set<NLD, G, NT, U, KR>& st, const mm_bf16* const (&xr)[NT],
                                             int ub, int u1, float mul, uint4 (&xc)[2][NT],
                                             float (&tmp)[NT][2][4], float (&acc)[NT][2][4]) {
#pragma unroll
  for (int u = 0; u < U; ++u) {
    const int un = ub + u;
    if (un >= u1) break;   // uniform over the warp
    uint4 xv[2][NT];
#pragma unroll
    for (int h = 0; h < 2; ++h)
#pragma unroll
      for (int nt = 0; nt < NT; ++nt) xv[h][nt] = xc[h][nt];
    mm_w4_gv_x(xc, xr, un + 1, u1);
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      mm_u32 b[NT][2][2];
#pragma unroll
      for (int nt = 0; nt < NT; ++nt) {
        const uint4 X = xv[h][nt];
        b[nt][0][0] = __byte_perm(X.x, X.z, 0x5410);
        b[nt][0][1] = __byte_perm(X.x, X.z, 0x7632);
        b[nt][1][0] = __byte_perm(X.y, X.w, 0x5410);
        b[nt][1][1] = __byte_perm(X.y, X.w, 0x7632);
      }
      const mm_u32 w[4] = {st.w[u][h].x, st.w[u][h].y, st.w[u][h].z, st.w[u][h].w};
#pragma unroll
      for (int t = 0; t < 2; ++t)
#pragma unroll
        for (int k = 0; k < 2; ++k) {
          const mm_u32 a0 = mm_dq_pair(w[2 * t], 2 * k), a1 = mm_dq_pair(w[2 * t + 1], 2 * k);
          const mm_u32 a2 = mm_dq_pair(w[2 * t], 2 * k + 1), a3 = mm_dq_pair(w[2 * t + 1], 2 * k + 1);
#pragma unroll
          for (int nt = 0; nt < NT; ++nt) mm_mma_bf16_nv(tmp[nt][t], a0, a1, a2, a3, b[nt][k][0], b[nt][k][1]);
        }
    }
    if (((un + 1) * 64) % G == 0) {   // end of a quantization group: scale in fp32
      const __half2 s01 = *(const __half2*)&st.s[u].x, s23 = *(const __half2*)&st.s[u].y;
      const float s[4] = {__low2float(s01) * mul, __high2float(s01) * mul, __low2float(s23) * mul,
                          __high2float(s23) * mul};
#pragma unroll
      for (int nt = 0; nt < NT; ++nt)
#pragma unroll
        for (int t = 0; t < 2; ++t)
#pragma unroll
          for (int e = 0; e < 4; ++e) {
            acc[nt][t][e] = fmaf(tmp[nt][t][e], s[2 * t + (e >> 1)], acc[nt][t][e]);
            tmp[nt][t][e] = 0.f;
          }
    }
  }
}

template <int NLD, int G, int NT, int U, int KR>
__device__ __forceinline__ void mm_w4_gv(const mm_bf16* const (&xr)[NT], const mm_u32* qw, const __half* sc,
                                         int col4, bool cok, int u0, int u1, float mul,
                                         float (&acc)[NT][2][4]) {
  static_assert(G % 64 == 0, "G must be a multiple of 64");
  float tmp[NT][2][4];
#pragma unroll
  for (int nt = 0; nt < NT; ++nt)
#pragma unroll
    for (int t = 0; t < 2; ++t)
#pragma unroll
      for (int e = 0; e < 4; ++e) tmp[nt][t][e] = 0.f;
  mm_w4_gv_set<NLD, G, NT, U, KR> A, B;
  uint4 xc[2][NT];
  mm_w4_gv_load(A, qw, sc, col4, cok, u0, u1);
  mm_w4_gv_x(xc, xr, u0, u1);
#pragma unroll 1
  for (int ub = u0; ub < u1; ub += 2 * U) {
    if (ub + U < u1) mm_w4_gv_load(B, qw, sc, col4, cok, ub + U, u1);
    mm_w4_gv_use(A, xr, ub, u1, mul, xc, tmp, acc);
    if (ub + U >= u1) break;
    if (ub + 2 * U < u1) mm_w4_gv_load(A, qw, sc, col4, cok, ub + 2 * U, u1);
    mm_w4_gv_use(B, xr, ub + U, u1, mul, xc, tmp, acc);
  }
}

/* Reduction of mm_w4_gv partial sums. Warp w = wn * WK + wk holds strip wn's partial sums over its
 * K range (rows < mrows); the CS blocks of the cluster hold the other K ranges. red: WK*WN*8*NT*32
 * floats, part: WN*8*NT*32 floats of shared memory. epi(m, c, v) is called once per (row m <
 * mrows, strip column c < 32) by one thread of one block of the cluster, with v[wn] the totals,
 * summed in a fixed order. Ends with a barrier (block or cluster), so red/part may be reused. */
template <int NT, int WK, int WN, int CS, class Epi>
__device__ __forceinline__ void mm_w4_gv_finish(const float (&acc)[NT][2][4], int mrows, float* red, float* part,
                                                Epi epi) {
  constexpr int RW = 8 * NT * 32, THR = 32 * WK * WN;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, gq = lane >> 2, cq = lane & 3;
#pragma unroll
  for (int nt = 0; nt < NT; ++nt)
#pragma unroll
    for (int t = 0; t < 2; ++t)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int m = nt * 8 + 2 * cq + (e & 1), c = 4 * gq + 2 * t + (e >> 1);
        if (m < mrows) red[warp * RW + m * 32 + c] = acc[nt][t][e];
      }
  __syncthreads();
  const int nv = mrows * 32;
  for (int i = threadIdx.x; i < WN * nv; i += THR) {
    const int wn = i / nv, r = i % nv;
    float s = 0.f;
#pragma unroll
    for (int wk = 0; wk < WK; ++wk) s += red[(wn * WK + wk) * RW + r];
    part[wn * RW + r] = s;
  }
  if constexpr (CS > 1) {
    mm_cluster_sync();
    const int rank = (int)mm_cluster_rank();
    for (int i = rank + CS * (int)threadIdx.x; i < nv; i += CS * THR) {
      float v[WN];
#pragma unroll
      for (int wn = 0; wn < WN; ++wn) {
        float s = 0.f;
#pragma unroll
        for (int q = 0; q < CS; ++q) s += mm_ld_dsmem(part + wn * RW + i, (unsigned)q);
        v[wn] = s;
      }
      epi(i / 32, i % 32, v);
    }
    mm_cluster_sync();   // no block leaves (or reuses part) while another still reads it
  } else {
    __syncthreads();
    for (int i = threadIdx.x; i < nv; i += THR) {
      float v[WN];
#pragma unroll
      for (int wn = 0; wn < WN; ++wn) v[wn] = part[wn * RW + i];
      epi(i / 32, i % 32, v);
    }
    __syncthreads();
  }
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
      mm_cp_async16(&Bs[stage][r][cc * 4], gc >= 0 ? mm_qw_at<K / 8, NLD>(qw, k0 / 8 + r, gc) : qw,
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

/* ---- MMA core v2 (prefill): B dequantized once per block into shared memory ----
 * The v1 core above dequantizes each B fragment in every warp that uses it (twice per element
 * with 2 warps along M), with a byte shift per nibble pair: about 6 ALU instructions per mma.
 * v2 spends them once per block: per 64-k tile the raw words arrive by cp.async (as A), the 256
 * threads turn them into a bf16 tile Bt[n][k] (k contiguous, padded rows) with 16 instructions
 * per word of 8 values, and the warps read B fragments with ldmatrix like A.
 * Dequantization stays exact: (q - 8) in bf16, unscaled sums per quantization group, the group's
 * scales applied in fp32 at its end (prefetched into registers at its start).
 * Tile: BM = 32 * MI rows x 128 columns, 8 warps as 2 (M) x 4 (N), each 16 MI x 32 (MI m16 tiles
 * x 4 n8 tiles). MI = 2 (BM 64, two blocks per SM) or 4 (BM 128, one block per SM: half the
 * B loads and dequantization per row for the register cost of 64 more accumulators).
 * The loop is lean because it is issue-bound: Nsight Compute on the H200 counted 15 instructions
 * per mma in an earlier form of this loop (addresses, stage modulo and row lookups recomputed per
 * tile, per-instruction predicates on the padding tiles). Now every address is set up once
 * (global pointers advance by a constant per tile, shared addresses are 32-bit offsets from one
 * base, stages rotate), and a warp's count of m16 tiles holding real rows (NA; rows are packed,
 * real ones first; grouped GEMMs split an expert's rows evenly over its tiles, so an 85-row
 * expert computes 96 rows, not 128) is a template parameter of the loop, not a predicate.
 * Pipeline (S stages of A and raw B words, NBT dequantized B tiles):
 *   MI 2: S 4, NBT 2: one barrier per tile; tile kt + 1 is dequantized while tile kt is multiplied.
 *   MI 4: S 3, NBT 1: dequantize, barrier, multiply (two barriers per tile), so that the block
 *         stays within the 96 KiB every target allows (sm_121: 99 KiB per block).
 * Shared memory (dynamic, mm_w4_mma2_smem(MI) bytes): As[S][BM][72] bf16, Bq[S][8][128] u32,
 * Bt[NBT][128][72] bf16, the scales of 4 groups [4][128] f16 (copied with each group's first tile). Accumulator layout: acc[mi][ni][e] is tile row wm * 16 MI + mi * 16 +
 * lane/4 + 8 (e/2), column wn * 32 + ni * 8 + 2 (lane % 4) + e % 2 (zero in m16 tiles past NA). */
template <int MI>
struct mm_w4_mma2_cfg {
  static constexpr int BM = 32 * MI, ROWB = (MM_BK + MM_APAD) * 2;   // bytes of a padded 64-k row
  static constexpr int S = MI == 2 ? 4 : 3, NBT = MI == 2 ? 2 : 1;
  static constexpr int SA = BM * ROWB, SB = (MM_BK / 8) * MM_BN * 4, SBT = MM_BN * ROWB;
  static constexpr int OFF_B = S * SA, OFF_BT = OFF_B + S * SB, OFF_SC = OFF_BT + NBT * SBT;
  static constexpr int BYTES = OFF_SC + 4 * MM_BN * 2;   // + the scales of 4 groups in flight
};
__host__ __device__ constexpr int mm_w4_mma2_smem(int mi) {
  return mi == 2 ? mm_w4_mma2_cfg<2>::BYTES : mm_w4_mma2_cfg<4>::BYTES;
}

/* One packed word (k = 8r..8r+7 of one column) -> the 8 values q - 8 as bf16 in k order. Nibbles
 * j and j + 4 land in the two halves of one word by a shift and a mask (128 + q as bf16 bits),
 * byte permutes put them in k order, one bf16x2 subtract per pair removes 136: exact. */
__device__ __forceinline__ uint4 mm_dq8(mm_u32 w) {
  mm_u32 r[4];
#pragma unroll
  for (int j = 0; j < 4; ++j) r[j] = mm_nib_bf2(w >> (4 * j));
  mm_u32 o[4] = {__byte_perm(r[0], r[1], 0x5410), __byte_perm(r[2], r[3], 0x5410), __byte_perm(r[0], r[1], 0x7632),
                 __byte_perm(r[2], r[3], 0x7632)};
  const mm_u32 bias = 0x43084308u;
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    __nv_bfloat162 v = __hsub2(*(const __nv_bfloat162*)&o[i], *(const __nv_bfloat162*)&bias);
    o[i] = *(mm_u32*)&v;
  }
  return make_uint4(o[0], o[1], o[2], o[3]);
}

/* The v2 loop for a warp with NA m16 tiles of real rows (mm_w4_mma2 picks NA). */
template <int K, int NLD, int G, int MI, int NA>
__device__ __forceinline__ void mm_w4_mma2_loop(const mm_bf16* x, const mm_i64* arow, const int* bcol,
                                                const mm_u32* qw, const __half* sc, float (&acc)[MI][4][4]) {
  typedef mm_w4_mma2_cfg<MI> C;
  constexpr int KT = K / MM_BK, S = C::S, NBT = C::NBT, ROWB = C::ROWB;
  // Words between the same packed row of consecutive 64-k tiles (8 packed rows per tile).
  constexpr mm_i64 KSTEP = mmp::QL == 1 ? (MM_BK / 8) * 32 : (mm_i64)(MM_BK / 8) * NLD;
  extern __shared__ __align__(16) unsigned char mm_w4_smem[];
  const mm_u32 s0 = (mm_u32)__cvta_generic_to_shared(mm_w4_smem);
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int wm = warp >> 2, wn = warp & 3, cq = lane & 3;
  // cp.async sources and destinations. A: MI chunks of 16 bytes, rows tid/8 + 32 l, k chunk tid%8.
  const mm_bf16* ag[MI];
  int an[MI];
#pragma unroll
  for (int l = 0; l < MI; ++l) {
    const mm_i64 src = arow[(tid >> 3) + 32 * l];
    ag[l] = src >= 0 ? x + src * K + (tid & 7) * 8 : x;
    an[l] = src >= 0 ? 16 : 0;
  }
  const mm_u32 a_st = s0 + (tid >> 3) * ROWB + (tid & 7) * 16;
  // B: packed row tid/32 of the tile, 4 columns from tile column 4 (tid % 32).
  const int gc = bcol[(tid & 31) * 4];
  const mm_u32* bg = gc >= 0 ? mm_qw_at<K / 8, NLD>(qw, tid >> 5, gc) : qw;
  const mm_i64 bstep = gc >= 0 ? KSTEP : 0;
  const int bn = gc >= 0 ? 16 : 0;
  const mm_u32 b_st = s0 + C::OFF_B + (tid >> 5) * (MM_BN * 4) + (tid & 31) * 16;
  // Scales: a quantization group's 128 halves (tile columns in runs of 8 contiguous, bcol) come
  // with its first tile, 16 bytes per thread of the first 16, into one of 4 slots (group % 4: a
  // slot is refilled 2 groups after its group ended, S - 1 <= 3 tiles ahead).
  const int sgc = tid < 16 ? bcol[tid * 8] : -1;
  const __half* sg = sgc >= 0 ? sc + sgc : sc;
  const mm_i64 sstep = sgc >= 0 ? NLD : 0;
  const int sn = sgc >= 0 ? 16 : 0;
  const mm_u32 s_st = s0 + C::OFF_SC + tid * 16;
  int lt = 0;   // tiles loaded so far
  auto load = [&](int stage) {   // the next tile (tiles are loaded in order): sources advance
#pragma unroll
    for (int l = 0; l < MI; ++l) {
      mm_cp_async16_s(a_st + stage * C::SA + l * 32 * ROWB, ag[l], an[l]);
      ag[l] += MM_BK;
    }
    mm_cp_async16_s(b_st + stage * C::SB, bg, bn);
    bg += bstep;
    if ((lt * MM_BK) % G == 0) {
      if (tid < 16) mm_cp_async16_s(s_st + ((lt * MM_BK / G) & 3) * (MM_BN * 2), sg, sn);
      sg += sstep;
    }
    ++lt;
  };
  // Dequantization: column tid % 128, packed rows 4 (tid / 128) .. + 3 of the tile.
  const unsigned char* dq_src = mm_w4_smem + C::OFF_B + (tid >> 7) * 4 * (MM_BN * 4) + (tid & 127) * 4;
  unsigned char* dq_dst = mm_w4_smem + C::OFF_BT + (tid & 127) * ROWB + (tid >> 7) * 4 * 16;
  auto dequant = [&](int stage, int bt) {
    mm_u32 w[4];
#pragma unroll
    for (int r = 0; r < 4; ++r) w[r] = *(const mm_u32*)(dq_src + stage * C::SB + r * (MM_BN * 4));
#pragma unroll
    for (int r = 0; r < 4; ++r) *(uint4*)(dq_dst + bt * C::SBT + r * 16) = mm_dq8(w[r]);
  };
  // ldmatrix addresses of this lane (stage, m16 tile and k step are constant offsets).
  const mm_u32 a_ld = s0 + (wm * 16 * MI + (lane & 15)) * ROWB + (lane >> 4) * 16;
  const mm_u32 b_ld = s0 + C::OFF_BT + (wn * 32 + (lane >> 4) * 8 + (lane & 7)) * ROWB + ((lane >> 3) & 1) * 16;
  // Scales of this thread: tile columns 2cq, 2cq + 1 of each n8 tile (one half2).
  const unsigned char* s_ld = mm_w4_smem + C::OFF_SC + (wn * 32 + 2 * cq) * 2;
  float tmp[NA > 0 ? NA : 1][4][4];   // this group's unscaled sums
  mm_zero(acc);
  mm_zero(tmp);
#pragma unroll
  for (int s = 0; s < S - 1; ++s) {
    if (s < KT) load(s);
    mm_cp_async_commit();
  }
  if constexpr (NBT == 2) {   // tile 0 dequantized ahead (the loop dequantizes tile kt + 1)
    mm_cp_async_wait<S - 2>();
    __syncthreads();
    dequant(0, 0);
  }
  int st = 0, ls = S - 1;   // stages of tile kt and of tile kt + S - 1
#pragma unroll 1
  for (int kt = 0; kt < KT; ++kt) {
    // The tile this iteration dequantizes (kt + NBT - 1) has landed; every warp is done with the
    // previous iteration's tiles, so stage ls and the Bt about to be written are free.
    mm_cp_async_wait<S - 1 - NBT>();
    __syncthreads();
    if (kt + S - 1 < KT) load(ls);
    mm_cp_async_commit();
    int bt = 0;
    if constexpr (NBT == 2) {
      if (kt + 1 < KT) dequant(st + 1 == S ? 0 : st + 1, (kt + 1) & 1);
      bt = kt & 1;
    } else {
      dequant(st, 0);
      __syncthreads();
    }
    if constexpr (NA > 0) {
      const mm_u32 aa = a_ld + st * C::SA, bb = b_ld + bt * C::SBT;
#pragma unroll
      for (int ks = 0; ks < MM_BK / 16; ++ks) {
        mm_u32 a[NA][4], b[4][2];
#pragma unroll
        for (int mi = 0; mi < NA; ++mi) mm_ldmatrix_x4_s(a[mi], aa + mi * 16 * ROWB + ks * 32);
#pragma unroll
        for (int p = 0; p < 2; ++p) {
          mm_u32 r[4];
          mm_ldmatrix_x4_s(r, bb + p * 16 * ROWB + ks * 32);
          b[2 * p][0] = r[0]; b[2 * p][1] = r[1]; b[2 * p + 1][0] = r[2]; b[2 * p + 1][1] = r[3];
        }
#pragma unroll
        for (int mi = 0; mi < NA; ++mi)
#pragma unroll
          for (int ni = 0; ni < 4; ++ni) mm_mma_bf16(tmp[mi][ni], a[mi], b[ni][0], b[ni][1]);
      }
      if (((kt + 1) * MM_BK) % G == 0) {   // end of a quantization group: scale and accumulate
        const unsigned char* sl = s_ld + ((kt * MM_BK / G) & 3) * (MM_BN * 2);
#pragma unroll
        for (int ni = 0; ni < 4; ++ni) {
          const __half2 sv = *(const __half2*)(sl + ni * 16);
          const float s[2] = {__low2float(sv), __high2float(sv)};
#pragma unroll
          for (int mi = 0; mi < NA; ++mi)
#pragma unroll
            for (int e = 0; e < 4; ++e) {
              acc[mi][ni][e] = fmaf(tmp[mi][ni][e], s[e & 1], acc[mi][ni][e]);
              tmp[mi][ni][e] = 0.f;
            }
        }
      }
    }
    st = st + 1 == S ? 0 : st + 1;
    ls = ls + 1 == S ? 0 : ls + 1;
  }
  mm_cp_async_wait<0>();
}

/* acc = x[arow] (BM x K) times the dequantized columns bcol of (qw, sc) (K x 128); rows at or past
 * `mrows` are padding (arow -1). Block-wide (every thread must call it). */
template <int K, int NLD, int G, int MI>
__device__ __forceinline__ void mm_w4_mma2(const mm_bf16* x, const mm_i64* arow, const int* bcol, int mrows,
                                           const mm_u32* qw, const __half* sc, float (&acc)[MI][4][4]) {
  static_assert(K % MM_BK == 0 && G % MM_BK == 0, "K and G must be multiples of 64");
  static_assert(MI == 2 || MI == 4, "BM must be 64 or 128");
  static_assert(mm_w4_mma2_cfg<MI>::BYTES == mmp::W4_MMA2_SMEM, "specialize.cpp w4Mma2Smem disagrees with this layout");
  // Warps of one block may run different instances of the loop (the two M halves of a short
  // tile), each with its own __syncthreads: the barriers match in number, and barrier arrival is
  // counted per warp (sm_70 and later), as in warp-specialized kernels.
  const int real = mrows - ((int)threadIdx.x >> 7) * 16 * MI;   // rows of this warp's M half
  const int na = real <= 0 ? 0 : (real >= 16 * MI ? MI : (real + 15) / 16);
  if (na == MI) mm_w4_mma2_loop<K, NLD, G, MI, MI>(x, arow, bcol, qw, sc, acc);
  else if (na == MI - 1) mm_w4_mma2_loop<K, NLD, G, MI, MI - 1>(x, arow, bcol, qw, sc, acc);
  else if (MI == 4 && na == 2) mm_w4_mma2_loop<K, NLD, G, MI, (MI == 4 ? 2 : 0)>(x, arow, bcol, qw, sc, acc);
  else if (MI == 4 && na == 1) mm_w4_mma2_loop<K, NLD, G, MI, (MI == 4 ? 1 : 0)>(x, arow, bcol, qw, sc, acc);
  else mm_w4_mma2_loop<K, NLD, G, MI, 0>(x, arow, bcol, qw, sc, acc);
}

/* Grouped GEMM tile of block `bid` over MOE_ALIGN's expert ranges (v2): expert e owns
 * ceil(n_e / BM) tiles that split its n_e rows evenly. The running count of tiles is a block-wide
 * scan over the experts (THREADS at a time), not a serial walk by one thread. Returns the expert
 * (-1: past the last tile) and the range [r0, r1) of `sorted` rows. Block-wide; ends synced. */
__device__ __forceinline__ int mm_moe_tile(const int* offsets, int E, int BM, int bid, int* r0, int* r1) {
  __shared__ int wsum[32];
  __shared__ int sel[3];
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, nw = (blockDim.x + 31) >> 5;
  if (tid == 0) sel[0] = -1;
  int base = 0;
  for (int e0 = 0; e0 < E; e0 += blockDim.x) {
    const int e = e0 + tid;
    const int cnt = e < E ? offsets[e + 1] - offsets[e] : 0;
    const int tiles = (cnt + BM - 1) / BM;
    int inc = tiles;
#pragma unroll
    for (int o = 1; o < 32; o <<= 1) {
      const int v = __shfl_up_sync(0xffffffffu, inc, o);
      if (lane >= o) inc += v;
    }
    __syncthreads();   // wsum is free (previous chunk)
    if (lane == 31) wsum[warp] = inc;
    __syncthreads();
    int before = base, total = 0;
    for (int w = 0; w < nw; ++w) {
      if (w < warp) before += wsum[w];
      total += wsum[w];
    }
    const int excl = before + inc - tiles;
    if (tiles > 0 && bid >= excl && bid < excl + tiles) {
      sel[0] = e;
      sel[1] = bid - excl;
      sel[2] = tiles;
    }
    base += total;
  }
  __syncthreads();
  const int e = sel[0];
  if (e >= 0) {
    const int lo = offsets[e], n = offsets[e + 1] - lo, i = sel[1], t = sel[2];
    *r0 = lo + (int)((long long)i * n / t);
    *r1 = lo + (int)((long long)(i + 1) * n / t);
  }
  return e;
}
