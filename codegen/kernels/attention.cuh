/* ATTENTION: causal GQA over the paged KV cache (docs/kernels.md sections 4 and 5).
 *   token t, head h, kv head g = h / (NQ/NKV), keys j = 0..positions[t] of sequence seq_slots[t]:
 *   o[t, h] = sum_j softmax_j(q[t,h] . k_j * D^-0.5) v_j      fp32 softmax/accumulation, one rounding
 * Layouts: q bf16[T, NQ D]; positions, seq_slots i32[T]; block_tables i32[*, MAX_BLOCKS]; pools
 *   [blocks, BLOCK, NKV, D] bf16 or fp8 e4m3 with f32 scales [blocks, BLOCK, NKV]; o bf16[T, NQ D].
 * Constants: mmp::NQ, NKV, D (multiple of 32), KVDT, BLOCK, MAX_BLOCKS, VARIANT, BQ, THREADS.
 * The prefill lowering's kernel; decode attention is ATTENTION_DECODE (attention_decode.cuh).
 * Variants:
 *   0 flash-style on FMAs, the reference-shaped kernel the GPU tests compare against: a block owns
 *     one kv head g and BQ consecutive tokens with the q heads of g's group (tokens of one
 *     sequence share every K/V tile; tokens of different sequences are handled in separate
 *     passes); keys stream through shared memory in tiles of 32 (fp8 dequantized to fp32 on
 *     load), each warp owns whole rows: lane j scores key j, online softmax in registers, p_j
 *     broadcast by shuffle for the P.V product (lane owns dims lane + 32 i). Grid
 *     (ceil(T / BQ), NKV), block (128).
 *   3 flash attention on tensor cores (mm_attn_mma below): mma.sync m16n8k16 bf16 with fp32
 *     accumulation, ldmatrix, cp.async; the common path of sm_121 and sm_90.
 * (Variants 1 and 2, split decode and its combine, became ATTENTION_DECODE.) */
constexpr int MM_KT = 32;
constexpr int MM_QH = mmp::NQ / mmp::NKV;
constexpr int MM_NR = mmp::BQ * MM_QH;
constexpr int MM_NW = mmp::THREADS / 32;
constexpr int MM_RPW = (MM_NR + MM_NW - 1) / MM_NW;
constexpr int MM_PER = mmp::D / 32;

/* ---- variant 3: prefill flash attention on tensor cores ----
 * A block owns kv head g and BQ consecutive tokens; its rows are the pairs (token, q head of g's
 * group), token-major (r = bq * QH + hh), so the QH heads sharing a K/V tile read it from shared
 * memory once. Each warp owns 16 rows (WARPS = ceil(BQ * QH / 16), rows past BQ * QH are idle).
 * Keys stream in tiles of KT = 64 through a 2-stage cp.async pipeline (the next tile is loaded
 * while this one is used), used in halves of 32 keys (half the S registers: no spills with two
 * blocks per SM). Per half and warp: S = Q K^T (Q and K fragments by ldmatrix), online softmax
 * in fp32 on the accumulators (exp2 with the D^-0.5 * log2 e scale folded in), then O += P V with P rounded to bf16 as the A operand
 * (the S accumulator layout is the A fragment layout, no shuffle) and V by ldmatrix.trans.
 * fp8 cache: raw e4m3 rows land in a staging buffer (cp.async, half the bytes) and are converted
 * once per block into a bf16 tile (e4m3 values are exact in bf16); the per-row scales stay out of
 * the tile: k_scale multiplies the S columns in fp32, v_scale the probabilities before their bf16
 * rounding (the row sum l uses the unscaled ones), so the only rounding is the one of P, as in
 * the bf16 path. Causality: key j is visible to row r iff j <= positions[t(r)] and the token is
 * of the sequence of the current pass; only tiles crossing a row's diagonal pay for the mask.
 * Tokens of different sequences in one block are handled in separate passes (one per sequence
 * slot), as in variant 0. Blocks are issued heaviest (last tokens) first. */
constexpr int MM_FA_KT = 64;
constexpr int MM_FA_DP = mmp::D + 8;   // padded bf16 row: 8 ldmatrix rows hit 8 distinct bank quads
constexpr int MM_FA_NK = mmp::D / 16;  // k-steps of Q K^T, n-tile pairs of P V
constexpr bool MM_FA_FP8 = mmp::KVDT == MM_DT_FP8E4M3;
/* Dynamic shared memory (specialize() asks for exactly this much):
 *   bf16: tile [2 stages][K, V][KT][DP] bf16
 *   fp8:  tile [1][K, V][KT][DP] bf16, raw [2 stages][K, V][KT][D] e4m3, scales [2][K, V][KT] f32
 *   then Q [16 * WARPS][DP] bf16 (Q fragments come by ldmatrix: in registers they would leave too
 *   few for two blocks per SM without spills) */
constexpr int MM_FA_TILE = 2 * MM_FA_KT * MM_FA_DP;   // bf16 elements of one (K, V) tile pair
constexpr int MM_FA_NW = mmp::THREADS / 32;
constexpr int MM_FA_QOFF = MM_FA_FP8 ? MM_FA_TILE * 2 + 4 * MM_FA_KT * mmp::D + 2 * 2 * MM_FA_KT * 4 : MM_FA_TILE * 4;

__device__ __forceinline__ void mm_ldmatrix_x4_trans(mm_u32 (&r)[4], const void* smem) {
  mm_u32 s = (mm_u32)__cvta_generic_to_shared(smem);
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(s));
}
__device__ __forceinline__ void mm_cp_async4(void* smem, const void* gmem, int src_bytes) {
  mm_u32 s = (mm_u32)__cvta_generic_to_shared(smem);
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;" ::"r"(s), "l"(gmem), "r"(src_bytes));
}
__device__ __forceinline__ mm_u32 mm_pack_bf16(float lo, float hi) {
  __nv_bfloat162 r = __floats2bfloat162_rn(lo, hi);
  return *(mm_u32*)&r;
}
/* Two e4m3 bytes -> bf16x2, exact (e4m3 -> f16 is exact, and so is f16 -> f32 -> bf16 for them). */
__device__ __forceinline__ mm_u32 mm_fp8x2_to_bf16x2(unsigned short v) {
  __half2_raw h = __nv_cvt_fp8x2_to_halfraw2((__nv_fp8x2_storage_t)v, __NV_E4M3);
  const float2 f = __half22float2(*(const __half2*)&h);
  return mm_pack_bf16(f.x, f.y);
}

/* Issues the cp.async loads of keys [j0, j0 + KT) of sequence table bt, kv head g, into stage
 * `st` (keys at or past kend are zero-filled, so P = 0 never meets garbage in V). */
__device__ __forceinline__ void mm_fa_load(unsigned char* smem, int st, const int* bt, int g, int j0, int kend,
                                           const void* k_pool, const void* v_pool, const float* k_scale,
                                           const float* v_scale) {
  // A thread copies a piece of PR per row (D = 128: a quarter, bf16 4 chunks of 16 bytes, fp8 2)
  // per page lookup: the lookup and the row's address cost as much as the copies, so one chunk
  // per lookup made this loop about a third of the kernel's instructions at long context. Rows of
  // a chunk count not divisible by 4 (fp8 with D = 32, 96, 160, 224) go in halves.
  constexpr int CPR = MM_FA_FP8 ? mmp::D / 16 : mmp::D / 8;   // 16-byte chunks per row
  constexpr int PR = CPR % 4 == 0 ? 4 : 2, QC = CPR / PR;     // pieces per row, chunks per piece
  static_assert(CPR % PR == 0, "D must be a multiple of 32");
  // Not unrolled: unrolled copies keep their addresses live across the caller's loop and spill.
#pragma unroll 1
  for (int c = threadIdx.x; c < 2 * MM_FA_KT * PR; c += mmp::THREADS) {
    const int which = c / (MM_FA_KT * PR), jj = (c / PR) % MM_FA_KT, part = (c % PR) * QC;
    const int j = j0 + jj;
    const bool ok = j < kend;
    const mm_i64 prow = ok ? (mm_i64)bt[j / mmp::BLOCK] * mmp::BLOCK + j % mmp::BLOCK : 0;
    const void* pool = which ? v_pool : k_pool;
    if constexpr (MM_FA_FP8) {
      unsigned char* raw = smem + MM_FA_TILE * 2 + ((st * 2 + which) * MM_FA_KT + jj) * mmp::D + part * 16;
      const unsigned char* src = (const unsigned char*)pool + (prow * mmp::NKV + g) * mmp::D + part * 16;
#pragma unroll
      for (int k = 0; k < QC; ++k) mm_cp_async16(raw + k * 16, src + k * 16, ok ? 16 : 0);
    } else {
      mm_bf16* tile = (mm_bf16*)smem + st * MM_FA_TILE + (which * MM_FA_KT + jj) * MM_FA_DP + part * 8;
      const mm_bf16* src = (const mm_bf16*)pool + (prow * mmp::NKV + g) * mmp::D + part * 8;
#pragma unroll
      for (int k = 0; k < QC; ++k) mm_cp_async16(tile + k * 8, src + k * 8, ok ? 16 : 0);
    }
  }
  if constexpr (MM_FA_FP8) {
    float* sc = (float*)(smem + MM_FA_TILE * 2 + 4 * MM_FA_KT * mmp::D) + st * 2 * MM_FA_KT;
#pragma unroll 1
    for (int c = threadIdx.x; c < 2 * MM_FA_KT; c += mmp::THREADS) {
      const int which = c / MM_FA_KT, jj = c % MM_FA_KT, j = j0 + jj;
      const bool ok = j < kend;
      const mm_i64 prow = ok ? (mm_i64)bt[j / mmp::BLOCK] * mmp::BLOCK + j % mmp::BLOCK : 0;
      mm_cp_async4(sc + c, (which ? v_scale : k_scale) + prow * mmp::NKV + g, ok ? 4 : 0);
    }
  }
}

/* fp8: raw stage `st` -> the bf16 tile. */
__device__ __forceinline__ void mm_fa_convert(unsigned char* smem, int st) {
  constexpr int CPR = mmp::D / 16;
  for (int c = threadIdx.x; c < 2 * MM_FA_KT * CPR; c += mmp::THREADS) {
    const int which = c / (MM_FA_KT * CPR), rem = c % (MM_FA_KT * CPR), jj = rem / CPR, part = rem % CPR;
    const uint4 v = *(const uint4*)(smem + MM_FA_TILE * 2 + ((st * 2 + which) * MM_FA_KT + jj) * mmp::D + part * 16);
    const mm_u32 w[4] = {v.x, v.y, v.z, v.w};
    mm_u32 o[8];
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      o[2 * i] = mm_fp8x2_to_bf16x2((unsigned short)(w[i] & 0xffffu));
      o[2 * i + 1] = mm_fp8x2_to_bf16x2((unsigned short)(w[i] >> 16));
    }
    mm_bf16* dst = (mm_bf16*)smem + (which * MM_FA_KT + jj) * MM_FA_DP + part * 16;
    *(uint4*)dst = make_uint4(o[0], o[1], o[2], o[3]);
    *(uint4*)(dst + 8) = make_uint4(o[4], o[5], o[6], o[7]);
  }
}

__device__ __forceinline__ void mm_attn_mma(const mm_bf16* q, const int* positions, const int* seq_slots,
                                            const int* block_tables, const void* k_pool, const void* v_pool,
                                            const float* k_scale, const float* v_scale, mm_bf16* o, mm_i64 T) {
  extern __shared__ __align__(16) unsigned char mm_fa_smem[];
  __shared__ int tpos[mmp::BQ], tslot[mmp::BQ];
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, gq = lane >> 2, cq = lane & 3;
  const int g = blockIdx.y;
  const mm_i64 t0 = (mm_i64)(gridDim.x - 1 - blockIdx.x) * mmp::BQ;   // heaviest blocks first
  if (tid < mmp::BQ) {
    const mm_i64 t = t0 + tid;
    tpos[tid] = t < T ? positions[t] : -1;
    tslot[tid] = t < T ? seq_slots[t] : -1;
  }
  // The block's Q rows into shared memory (cp.async, in the first tile's group; padding rows 0).
  mm_bf16* Qs = (mm_bf16*)(mm_fa_smem + MM_FA_QOFF);
#pragma unroll 1
  for (int c = tid; c < MM_FA_NW * 16 * (mmp::D / 8); c += mmp::THREADS) {
    const int r = c / (mmp::D / 8), part = c % (mmp::D / 8), bq = r / MM_QH;
    const mm_i64 t = t0 + bq;
    const bool ok = r < mmp::BQ * MM_QH && t < T;
    mm_cp_async16(Qs + r * MM_FA_DP + part * 8,
                  ok ? q + (t * mmp::NQ + g * MM_QH + r % MM_QH) * mmp::D + part * 8 : q, ok ? 16 : 0);
  }
  // This thread's two rows (gq and gq + 8 of the warp's 16): token and output offset.
  int rbq[2];
  mm_i64 roff[2];
#pragma unroll
  for (int i = 0; i < 2; ++i) {
    const int r = warp * 16 + gq + 8 * i, bq = r / MM_QH;
    const mm_i64 t = t0 + bq;
    const bool ok = r < mmp::BQ * MM_QH && t < T;
    rbq[i] = ok ? bq : -1;
    roff[i] = ok ? (t * mmp::NQ + g * MM_QH + r % MM_QH) * mmp::D : -1;
  }
  const mm_bf16* Qw = Qs + (warp * 16 + (lane & 15)) * MM_FA_DP + (lane >> 4) * 8;   // ldmatrix row
  const float sl2 = rsqrtf((float)mmp::D) * 1.4426950408889634f;   // D^-0.5 * log2(e)
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.f, 0.f};
  float acc[2 * MM_FA_NK][4];
#pragma unroll
  for (int n = 0; n < 2 * MM_FA_NK; ++n)
#pragma unroll
    for (int e = 0; e < 4; ++e) acc[n][e] = 0.f;
  __syncthreads();

  unsigned done = 0;   // tokens already handled (one pass per sequence slot)
  for (;;) {
    int S = -1, kend = 0;
    for (int bq = 0; bq < mmp::BQ; ++bq) {
      if ((done >> bq) & 1u || tpos[bq] < 0) continue;
      if (S < 0) S = tslot[bq];
      if (tslot[bq] == S) kend = max(kend, tpos[bq] + 1);
    }
    if (S < 0) break;
    unsigned active = 0;
    for (int bq = 0; bq < mmp::BQ; ++bq)
      if (!((done >> bq) & 1u) && tpos[bq] >= 0 && tslot[bq] == S) active |= 1u << bq;
    // Last visible key of each of this thread's rows in this pass (-1: none), and the warp's range.
    int rpos[2];
#pragma unroll
    for (int i = 0; i < 2; ++i) rpos[i] = rbq[i] >= 0 && ((active >> rbq[i]) & 1u) ? tpos[rbq[i]] : -1;
    int wmin = min(rpos[0], rpos[1]), wmax = max(rpos[0], rpos[1]);
#pragma unroll
    for (int o2 = 16; o2 > 0; o2 >>= 1) {
      wmin = min(wmin, __shfl_xor_sync(0xffffffffu, wmin, o2));
      wmax = max(wmax, __shfl_xor_sync(0xffffffffu, wmax, o2));
    }
    const int* bt = block_tables + (mm_i64)S * mmp::MAX_BLOCKS;
    mm_fa_load(mm_fa_smem, 0, bt, g, 0, kend, k_pool, v_pool, k_scale, v_scale);
    mm_cp_async_commit();
    for (int j0 = 0, it = 0; j0 < kend; j0 += MM_FA_KT, ++it) {
      const int st = it & 1;
      mm_cp_async_wait<0>();
      __syncthreads();   // tile `it` landed; every warp is done with the buffers the next load reuses
      if (j0 + MM_FA_KT < kend)
        mm_fa_load(mm_fa_smem, st ^ 1, bt, g, j0 + MM_FA_KT, kend, k_pool, v_pool, k_scale, v_scale);
      mm_cp_async_commit();
      const mm_bf16* Kt;
      const float* ksc = nullptr;
      const float* vsc = nullptr;
      if constexpr (MM_FA_FP8) {
        mm_fa_convert(mm_fa_smem, st);
        __syncthreads();
        Kt = (const mm_bf16*)mm_fa_smem;
        ksc = (const float*)(mm_fa_smem + MM_FA_TILE * 2 + 4 * MM_FA_KT * mmp::D) + st * 2 * MM_FA_KT;
        vsc = ksc + MM_FA_KT;
      } else {
        Kt = (const mm_bf16*)mm_fa_smem + st * MM_FA_TILE;
      }
      const mm_bf16* Vt = Kt + MM_FA_KT * MM_FA_DP;
      // Two halves of 32 keys, each with its own softmax update: half the S registers.
#pragma unroll 1
      for (int hf = 0; hf < 2; ++hf) {
        const int jh = j0 + hf * 32;
        if (jh > wmax) break;   // no row of this warp sees these keys (uniform over the warp)
        // S = Q K^T: 16 rows x 32 keys per warp.
        float s[4][4];
#pragma unroll
        for (int n = 0; n < 4; ++n)
#pragma unroll
          for (int e = 0; e < 4; ++e) s[n][e] = 0.f;
#pragma unroll
        for (int ks = 0; ks < MM_FA_NK; ++ks) {
          mm_u32 qa[4];
          mm_ldmatrix_x4(qa, Qw + ks * 16);
#pragma unroll
          for (int np = 0; np < 2; ++np) {
            mm_u32 b[4];
            mm_ldmatrix_x4(b, Kt + (hf * 32 + np * 16 + ((lane >> 4) & 1) * 8 + (lane & 7)) * MM_FA_DP + ks * 16 +
                                  ((lane >> 3) & 1) * 8);
            mm_mma_bf16(s[2 * np], qa, b[0], b[1]);
            mm_mma_bf16(s[2 * np + 1], qa, b[2], b[3]);
          }
        }
        // Scale (log2 domain), mask, running max.
        const bool need_mask = jh + 31 > wmin;
        float mx[2] = {-INFINITY, -INFINITY};
#pragma unroll
        for (int n = 0; n < 4; ++n)
#pragma unroll
          for (int e = 0; e < 4; ++e) {
            const int jj = hf * 32 + n * 8 + 2 * cq + (e & 1);
            float v = s[n][e] * sl2;
            if constexpr (MM_FA_FP8) v *= ksc[jj];
            if (need_mask && j0 + jj > rpos[e >> 1]) v = -INFINITY;
            s[n][e] = v;
            mx[e >> 1] = fmaxf(mx[e >> 1], v);
          }
        float mu[2], alpha[2];
#pragma unroll
        for (int i = 0; i < 2; ++i) {
          mx[i] = fmaxf(mx[i], __shfl_xor_sync(0xffffffffu, mx[i], 1));
          mx[i] = fmaxf(mx[i], __shfl_xor_sync(0xffffffffu, mx[i], 2));
          const float mn = fmaxf(m[i], mx[i]);
          mu[i] = mn == -INFINITY ? 0.f : mn;   // a row with nothing visible yet keeps p = 0
          alpha[i] = exp2f(m[i] - mu[i]);
          m[i] = mn;
        }
        // P as bf16 A fragments (two k-steps of 16 keys, straight from the S accumulator layout).
        // bf16 cache: the row sum adds the rounded probabilities, so o is an exact convex
        // combination of the v rows with the weights the tensor cores used. fp8: the v scale is
        // folded into P before its rounding and the row sum adds the unscaled probabilities.
        float rs[2] = {0.f, 0.f};
        mm_u32 pa[2][4];
#pragma unroll
        for (int kk = 0; kk < 2; ++kk) {
          float p[2][4];
#pragma unroll
          for (int h2 = 0; h2 < 2; ++h2)
#pragma unroll
            for (int e = 0; e < 4; ++e) p[h2][e] = exp2f(s[2 * kk + h2][e] - mu[e >> 1]);
          if constexpr (MM_FA_FP8) {
            const int jb = hf * 32 + kk * 16 + 2 * cq;
            const float vs[4] = {vsc[jb], vsc[jb + 1], vsc[jb + 8], vsc[jb + 9]};
#pragma unroll
            for (int h2 = 0; h2 < 2; ++h2)
#pragma unroll
              for (int e = 0; e < 4; ++e) rs[e >> 1] += p[h2][e];
            pa[kk][0] = mm_pack_bf16(p[0][0] * vs[0], p[0][1] * vs[1]);
            pa[kk][1] = mm_pack_bf16(p[0][2] * vs[0], p[0][3] * vs[1]);
            pa[kk][2] = mm_pack_bf16(p[1][0] * vs[2], p[1][1] * vs[3]);
            pa[kk][3] = mm_pack_bf16(p[1][2] * vs[2], p[1][3] * vs[3]);
          } else {
            pa[kk][0] = mm_pack_bf16(p[0][0], p[0][1]);
            pa[kk][1] = mm_pack_bf16(p[0][2], p[0][3]);
            pa[kk][2] = mm_pack_bf16(p[1][0], p[1][1]);
            pa[kk][3] = mm_pack_bf16(p[1][2], p[1][3]);
#pragma unroll
            for (int i = 0; i < 4; ++i) rs[i & 1] += mm_bf_lo(pa[kk][i]) + mm_bf_hi(pa[kk][i]);
          }
        }
#pragma unroll
        for (int i = 0; i < 2; ++i) l[i] = l[i] * alpha[i] + rs[i];
        // Rescale O only when some row's max moved (alpha != 1): past the first tiles of a long
        // context the max rarely moves, and the 64 multiplies per half cost as much issue as a
        // quarter of its mma. Multiplying by exactly 1 changes nothing, so skipping is exact.
        if (__any_sync(0xffffffffu, alpha[0] != 1.f || alpha[1] != 1.f)) {
#pragma unroll
          for (int n = 0; n < 2 * MM_FA_NK; ++n)
#pragma unroll
            for (int e = 0; e < 4; ++e) acc[n][e] *= alpha[e >> 1];
        }
        // O += P V, V fragments by ldmatrix.trans.
#pragma unroll
        for (int kk = 0; kk < 2; ++kk) {
#pragma unroll
          for (int dp = 0; dp < MM_FA_NK; ++dp) {
            mm_u32 b[4];
            mm_ldmatrix_x4_trans(b, Vt + (hf * 32 + kk * 16 + (lane & 15)) * MM_FA_DP + dp * 16 + (lane >> 4) * 8);
            mm_mma_bf16(acc[2 * dp], pa[kk], b[0], b[1]);
            mm_mma_bf16(acc[2 * dp + 1], pa[kk], b[2], b[3]);
          }
        }
      }
    }
    mm_cp_async_wait<0>();
    __syncthreads();   // the next pass reloads stage 0
    done |= active;
  }
  // The quad's partial row sums, then o = acc / l rounded once.
#pragma unroll
  for (int i = 0; i < 2; ++i) {
    l[i] += __shfl_xor_sync(0xffffffffu, l[i], 1);
    l[i] += __shfl_xor_sync(0xffffffffu, l[i], 2);
    if (roff[i] < 0) continue;
    const float inv = l[i] > 0.f ? 1.f / l[i] : 0.f;
#pragma unroll
    for (int n = 0; n < 2 * MM_FA_NK; ++n)
      *(mm_u32*)(o + roff[i] + n * 8 + 2 * cq) = mm_pack_bf16(acc[n][2 * i] * inv, acc[n][2 * i + 1] * inv);
  }
}

// Variant 3 is budgeted for two resident blocks per SM: left to itself, ptxas picks fewer
// registers at 128 threads and spills. 0 leaves variant 0 as without the bound.
constexpr int MM_ATT_MIN_BLOCKS = mmp::VARIANT == 3 ? 2 : 0;

extern "C" __global__ void __launch_bounds__(mmp::THREADS, MM_ATT_MIN_BLOCKS) MM_ENTRY(const mm_kernel_args args) {
  MM_OPERANDS(args);   // typed views of ptr[] (codegen/kernels/kinds.def)
  const mm_i64 T = args.dim[MM_DIM_T];
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;

  if constexpr (mmp::VARIANT == 3) {
    mm_attn_mma(q, positions, seq_slots, block_tables, k_pool, v_pool, k_scale, v_scale, o, T);
  } else {
    __shared__ float qs[MM_NR][mmp::D];
    __shared__ float ks[MM_KT][mmp::D + 1];
    __shared__ float vs[MM_KT][mmp::D];
    __shared__ int tpos[mmp::BQ], tslot[mmp::BQ];
    const int g = blockIdx.y;
    const mm_i64 t0 = (mm_i64)blockIdx.x * mmp::BQ;
    if (t0 >= T) return;
    if (tid < mmp::BQ) {
      const mm_i64 t = t0 + tid;
      tpos[tid] = t < T ? positions[t] : -1;
      tslot[tid] = t < T ? seq_slots[t] : -1;
    }
    const float qscale = rsqrtf((float)mmp::D);
    for (int e = tid; e < MM_NR * mmp::D; e += mmp::THREADS) {
      const int r = e / mmp::D, d = e % mmp::D, bq = r / MM_QH, h = g * MM_QH + r % MM_QH;
      const mm_i64 t = t0 + bq;
      qs[r][d] = t < T ? __bfloat162float(q[(t * mmp::NQ + h) * mmp::D + d]) * qscale : 0.f;
    }
    __syncthreads();
    float m[MM_RPW], l[MM_RPW], acc[MM_RPW][MM_PER];
#pragma unroll
    for (int i = 0; i < MM_RPW; ++i) {
      m[i] = -INFINITY;
      l[i] = 0.f;
#pragma unroll
      for (int c = 0; c < MM_PER; ++c) acc[i][c] = 0.f;
    }
    unsigned done = 0;   // tokens of the tile already handled (one pass per sequence slot)
    for (;;) {
      int S = -1, kend = 0;
      for (int bq = 0; bq < mmp::BQ; ++bq) {
        if ((done >> bq) & 1u || tpos[bq] < 0) continue;
        if (S < 0) S = tslot[bq];
        if (tslot[bq] == S) kend = max(kend, tpos[bq] + 1);
      }
      if (S < 0) break;
      unsigned active = 0;
      for (int bq = 0; bq < mmp::BQ; ++bq)
        if (!((done >> bq) & 1u) && tpos[bq] >= 0 && tslot[bq] == S) active |= 1u << bq;
      const int* bt = block_tables + (mm_i64)S * mmp::MAX_BLOCKS;
      for (int j0 = 0; j0 < kend; j0 += MM_KT) {
        __syncthreads();   // the previous tile is consumed
        if constexpr (mmp::KVDT == MM_DT_FP8E4M3) {
          for (int c = tid; c < MM_KT * mmp::D / 16; c += mmp::THREADS) {
            const int jj = c / (mmp::D / 16), d0 = (c % (mmp::D / 16)) * 16, j = j0 + jj;
            float kf[16], vf[16];
            if (j < kend) {
              const mm_i64 prow = (mm_i64)bt[j / mmp::BLOCK] * mmp::BLOCK + j % mmp::BLOCK;
              const mm_i64 idx = (prow * mmp::NKV + g) * mmp::D + d0;
              const uint4 kv = *(const uint4*)((const unsigned char*)k_pool + idx);
              const uint4 vv = *(const uint4*)((const unsigned char*)v_pool + idx);
              const float ksc = k_scale[prow * mmp::NKV + g], vsc = v_scale[prow * mmp::NKV + g];
              const unsigned char* kb = (const unsigned char*)&kv;
              const unsigned char* vb = (const unsigned char*)&vv;
#pragma unroll
              for (int i = 0; i < 16; ++i) { kf[i] = mm_fp8_to_f(kb[i]) * ksc; vf[i] = mm_fp8_to_f(vb[i]) * vsc; }
            } else {
#pragma unroll
              for (int i = 0; i < 16; ++i) { kf[i] = 0.f; vf[i] = 0.f; }
            }
#pragma unroll
            for (int i = 0; i < 16; ++i) { ks[jj][d0 + i] = kf[i]; vs[jj][d0 + i] = vf[i]; }
          }
        } else {
          for (int c = tid; c < MM_KT * mmp::D / 8; c += mmp::THREADS) {
            const int jj = c / (mmp::D / 8), d0 = (c % (mmp::D / 8)) * 8, j = j0 + jj;
            uint4 kv = make_uint4(0, 0, 0, 0), vv = make_uint4(0, 0, 0, 0);
            if (j < kend) {
              const mm_i64 prow = (mm_i64)bt[j / mmp::BLOCK] * mmp::BLOCK + j % mmp::BLOCK;
              const mm_i64 idx = (prow * mmp::NKV + g) * mmp::D + d0;
              kv = *(const uint4*)((const mm_bf16*)k_pool + idx);
              vv = *(const uint4*)((const mm_bf16*)v_pool + idx);
            }
            const mm_u32* kw = (const mm_u32*)&kv;
            const mm_u32* vw = (const mm_u32*)&vv;
#pragma unroll
            for (int i = 0; i < 4; ++i) {
              ks[jj][d0 + 2 * i] = mm_bf_lo(kw[i]);
              ks[jj][d0 + 2 * i + 1] = mm_bf_hi(kw[i]);
              vs[jj][d0 + 2 * i] = mm_bf_lo(vw[i]);
              vs[jj][d0 + 2 * i + 1] = mm_bf_hi(vw[i]);
            }
          }
        }
        __syncthreads();
#pragma unroll
        for (int i = 0; i < MM_RPW; ++i) {
          const int r = warp + MM_NW * i;
          if (r >= MM_NR) continue;
          const int bq = r / MM_QH;
          if (!((active >> bq) & 1u)) continue;
          const int pos = tpos[bq];
          const int j = j0 + lane;
          float s = 0.f;
#pragma unroll 8
          for (int d = 0; d < mmp::D; ++d) s = fmaf(qs[r][d], ks[lane][d], s);
          if (j > pos || j >= kend) s = -INFINITY;
          const float tmax = mm_warp_max(s);
          const float mnew = fmaxf(m[i], tmax);
          if (mnew == -INFINITY) continue;   // no visible key yet for this row
          const float p = s == -INFINITY ? 0.f : expf(s - mnew);
          const float alpha = m[i] == -INFINITY ? 0.f : expf(m[i] - mnew);
          l[i] = l[i] * alpha + mm_warp_sum(p);
          m[i] = mnew;
#pragma unroll
          for (int c = 0; c < MM_PER; ++c) acc[i][c] *= alpha;
#pragma unroll 4
          for (int jj = 0; jj < MM_KT; ++jj) {
            const float pj = __shfl_sync(0xffffffffu, p, jj);
#pragma unroll
            for (int c = 0; c < MM_PER; ++c) acc[i][c] = fmaf(pj, vs[jj][lane + 32 * c], acc[i][c]);
          }
        }
      }
      done |= active;
    }
#pragma unroll
    for (int i = 0; i < MM_RPW; ++i) {
      const int r = warp + MM_NW * i;
      if (r >= MM_NR) continue;
      const int bq = r / MM_QH, h = g * MM_QH + r % MM_QH;
      const mm_i64 t = t0 + bq;
      if (t >= T || tpos[bq] < 0) continue;
      const float inv = l[i] > 0.f ? 1.f / l[i] : 0.f;
#pragma unroll
      for (int c = 0; c < MM_PER; ++c)
        o[(t * mmp::NQ + h) * mmp::D + lane + 32 * c] = __float2bfloat16_rn(acc[i][c] * inv);
    }
  }
}
