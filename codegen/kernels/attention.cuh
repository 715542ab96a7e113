/* ATTENTION: causal GQA over the paged KV cache (docs/kernels.md sections 4 and 5).
 *   token t, head h, kv head g = h / (NQ/NKV), keys j = 0..positions[t] of sequence seq_slots[t]:
 *   o[t, h] = sum_j softmax_j(q[t,h] . k_j * D^-0.5) v_j      fp32 softmax/accumulation, one rounding
 * Layouts: q bf16[T, NQ D]; positions, seq_slots i32[T]; block_tables i32[*, MAX_BLOCKS]; pools
 *   [blocks, BLOCK, NKV, D] bf16 or fp8 e4m3 with f32 scales [blocks, BLOCK, NKV]; partial f32
 *   [T, NQ, SPLITS, D + 2] (split-K scratch: unnormalized acc[D], running max m, sum l);
 *   o bf16[T, NQ D].
 * Constants: mmp::NQ, NKV, D (multiple of 32), KVDT, BLOCK, MAX_BLOCKS, VARIANT, SPLITS, BQ, THREADS.
 * Structure (variants 0 and 1): a block owns one kv head g and the rows (token, q head of g's
 * group); keys stream through shared memory in tiles of 32 (fp8 dequantized to fp32 on load), each
 * warp owns whole rows: lane j scores key j, online softmax in registers, p_j broadcast by
 * shuffle for the P.V product (lane owns dims lane + 32 i).
 * Variants:
 *   0 prefill (flash-style): BQ consecutive tokens per block (tokens of one sequence share every
 *     K/V tile; tokens of different sequences are handled in separate passes). Grid
 *     (ceil(T / BQ), NKV), block (128).
 *   1 decode split-K: one token per block, keys split into SPLITS contiguous chunks over grid z.
 *     SPLITS == 1 writes o directly; otherwise each block writes its (acc, m, l) to `partial` and
 *     a second launch of variant 2 combines. Grid (T, NKV, SPLITS), block (128).
 *   2 split-K combine: o[t, h] = sum_s acc_s e^(m_s - M) / sum_s l_s e^(m_s - M).
 *     Grid (T, NQ), block (128). Same operands as variant 1. */
constexpr int MM_KT = 32;
constexpr int MM_QH = mmp::NQ / mmp::NKV;
constexpr int MM_NR = mmp::BQ * MM_QH;
constexpr int MM_NW = mmp::THREADS / 32;
constexpr int MM_RPW = (MM_NR + MM_NW - 1) / MM_NW;
constexpr int MM_PER = mmp::D / 32;

extern "C" __global__ void __launch_bounds__(mmp::THREADS) MM_ENTRY(const mm_kernel_args args) {
  MM_OPERANDS(args);   // typed views of ptr[] (codegen/kernels/kinds.def)
  const mm_i64 T = args.dim[MM_DIM_T];
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;

  if constexpr (mmp::VARIANT == 2) {
    const mm_i64 t = blockIdx.x;
    const int h = blockIdx.y;
    if (t >= T) return;
    const float* p = partial + ((t * mmp::NQ + h) * mmp::SPLITS) * (mmp::D + 2);
    float M = -INFINITY;
    for (int s = 0; s < mmp::SPLITS; ++s) M = fmaxf(M, p[s * (mmp::D + 2) + mmp::D]);
    for (int d = tid; d < mmp::D; d += mmp::THREADS) {
      float num = 0.f, den = 0.f;
      if (M != -INFINITY) {
        for (int s = 0; s < mmp::SPLITS; ++s) {
          const float* ps = p + s * (mmp::D + 2);
          const float ms = ps[mmp::D];
          if (ms == -INFINITY) continue;
          const float f = expf(ms - M);
          num += ps[d] * f;
          den += ps[mmp::D + 1] * f;
        }
      }
      o[(t * mmp::NQ + h) * mmp::D + d] = __float2bfloat16_rn(den > 0.f ? num / den : 0.f);
    }
    return;
  } else {
    __shared__ float qs[MM_NR][mmp::D];
    __shared__ float ks[MM_KT][mmp::D + 1];
    __shared__ float vs[MM_KT][mmp::D];
    __shared__ int tpos[mmp::BQ], tslot[mmp::BQ];
    const int g = blockIdx.y;
    const mm_i64 t0 = mmp::VARIANT == 0 ? (mm_i64)blockIdx.x * mmp::BQ : (mm_i64)blockIdx.x;
    const int split = mmp::VARIANT == 1 ? (int)blockIdx.z : 0;
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
      int kbeg = 0;
      if constexpr (mmp::VARIANT == 1) {
        int chunk = (kend + mmp::SPLITS - 1) / mmp::SPLITS;
        chunk = (chunk + MM_KT - 1) / MM_KT * MM_KT;
        kbeg = split * chunk;
        kend = min(kend, kbeg + chunk);
      }
      const int* bt = block_tables + (mm_i64)S * mmp::MAX_BLOCKS;
      for (int j0 = kbeg; j0 < kend; j0 += MM_KT) {
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
      if (mmp::VARIANT == 1 && mmp::SPLITS > 1) {
        float* p = partial + ((t * mmp::NQ + h) * mmp::SPLITS + split) * (mmp::D + 2);
#pragma unroll
        for (int c = 0; c < MM_PER; ++c) p[lane + 32 * c] = acc[i][c];
        if (lane == 0) { p[mmp::D] = m[i]; p[mmp::D + 1] = l[i]; }
      } else {
        const float inv = l[i] > 0.f ? 1.f / l[i] : 0.f;
#pragma unroll
        for (int c = 0; c < MM_PER; ++c)
          o[(t * mmp::NQ + h) * mmp::D + lane + 32 * c] = __float2bfloat16_rn(acc[i][c] * inv);
      }
    }
  }
}
