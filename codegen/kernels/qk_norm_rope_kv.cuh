/* QK_NORM_ROPE_KV: q/k RMSNorm over the whole projection, partial RoPE, paged KV write
 * (docs/kernels.md sections 4 and 5).
 *   q = RMSNorm(qkv[t, 0:NQ*D]), k = RMSNorm(qkv[t, NQ*D : NQ*D + NKV*D])  (as RMS_NORM, bf16)
 *   per head, i < DR/2, a_i = pos * THETA^(-2i/DR) (fp32):
 *     h'[i] = x1 cos a_i - x2 sin a_i,  h'[i + DR/2] = x2 cos a_i + x1 sin a_i,  rounded to bf16 once
 *   k' and v = qkv[t, NQ*D + NKV*D :] go to the pools at (seq_slots[t], positions[t]); q' to `q`.
 *   fp8 pools: per (block, row, kv head) scale = max(amax / 448, 1e-8), stored e4m3(x / scale).
 * Layouts: qkv bf16[T, (NQ + 2 NKV) D]; q_norm WDT[NQ D]; k_norm WDT[NKV D]; positions, seq_slots
 *   i32[T]; block_tables i32[*, MAX_BLOCKS]; pools [blocks, BLOCK, NKV, D] (KVDT); scales f32
 *   [blocks, BLOCK, NKV]; q bf16[T, NQ D].
 * Constants: mmp::NQ, NKV, D (multiple of 32), DR, THETA, EPS, WDT, KVDT, BLOCK, MAX_BLOCKS, THREADS.
 * Grid (T, SPLIT), block (THREADS = 32 x min(32, ceil((NQ + 2 NKV) / SPLIT))). Built for latency
 * (it sits between the qkv GEMV and attention in every decode layer): block y of a token owns the
 * head slots [y HB, (y + 1) HB), HB = ceil((NQ + 2 NKV) / SPLIT) (q, then k, then v heads); warp w
 * of it heads w, w + NW, ... and lane l the D/32 consecutive dims l*PER.. of each; the norm
 * weights (constant) are loaded before the programmatic-launch wait, the block's values once into
 * registers, both sums of squares reduced with one barrier, the rotary partner (dim d +- DR/2,
 * PER dims away in lanes) read by a shuffle. With SPLIT > 1 (decode: one token would otherwise
 * sit on one SM, 9.4 us in Nsight Compute) every block also sums the squares of the whole q|k row
 * itself (16-byte loads, the same fixed order in every block, so all blocks agree bit for bit).
 * Needs (DR/2) % (D/32) == 0 (specialize). A position whose logical block is past MAX_BLOCKS
 * writes no KV.
 * Tensor parallel (TP > 1, docs/parallel.md): NQ and NKV are this rank's heads and the norms run
 *   over all TP ranks' heads: a STATS = 1 launch writes the row's partial sums of squares to
 *   sumsq f32[T, 2] (q, k) and returns; after they are all-reduced, the TP > 1 launch normalizes
 *   with mean = sumsq / (TP * NQ * D) (and TP * NKV * D).
 * Variants: one. */
constexpr int MM_NW = mmp::THREADS / 32, MM_H3 = mmp::NQ + 2 * mmp::NKV;
constexpr int MM_HB = (MM_H3 + mmp::SPLIT - 1) / mmp::SPLIT, MM_HPW = (MM_HB + MM_NW - 1) / MM_NW;
constexpr int MM_PER = mmp::D / 32, MM_HALF = mmp::DR / 2;

extern "C" __global__ void __launch_bounds__(mmp::THREADS) MM_ENTRY(const mm_kernel_args args) {
  typedef typename mm_dt<mmp::WDT>::T wt;
  constexpr int QD = mmp::NQ * mmp::D, KD = mmp::NKV * mmp::D, LD = QD + 2 * KD;
  MM_OPERANDS(args);   // typed views of ptr[] (codegen/kernels/kinds.def)
  __shared__ float red[2][32];
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  // Head slot i of this warp (past MM_H3: none) and the column of its element e in the qkv row
  // (q heads, k heads, v heads back to back).
  auto head = [&](int i) {
    const int w = warp + MM_NW * i;
    return w < MM_HB ? (int)blockIdx.y * MM_HB + w : MM_H3;
  };
  auto col = [&](int i, int e) { return head(i) * mmp::D + lane * MM_PER + e; };
  float nw[MM_HPW][MM_PER];
#pragma unroll
  for (int i = 0; i < MM_HPW; ++i) {
    const int hh = head(i);
#pragma unroll
    for (int e = 0; e < MM_PER; ++e)
      nw[i][e] = hh < mmp::NQ ? mm_f(qn[col(i, e)]) : hh < mmp::NQ + mmp::NKV ? mm_f(kn[col(i, e) - QD]) : 1.f;
  }
  mm_pdl_enter();
  const mm_i64 t = blockIdx.x;
  if (t >= args.dim[MM_DIM_T]) return;
  const mm_bf16* row = qkv + t * LD;
  const int pos = positions[t];
  const int slot = seq_slots[t];
  const int lb = pos / mmp::BLOCK;
  const bool kv_ok = pos >= 0 && lb < mmp::MAX_BLOCKS && slot >= 0;
  const mm_i64 pb = kv_ok ? (mm_i64)block_tables[(mm_i64)slot * mmp::MAX_BLOCKS + lb] : 0;
  float v[MM_HPW][MM_PER];
  float sq = 0.f, sk = 0.f;
#pragma unroll
  for (int i = 0; i < MM_HPW; ++i) {
    const int hh = head(i);
#pragma unroll
    for (int e = 0; e < MM_PER; ++e) {
      v[i][e] = hh < MM_H3 ? __bfloat162float(row[col(i, e)]) : 0.f;
      if constexpr (mmp::SPLIT == 1) {
        if (hh < mmp::NQ) sq += v[i][e] * v[i][e];
        else if (hh < mmp::NQ + mmp::NKV) sk += v[i][e] * v[i][e];
      }
    }
  }
  if constexpr (mmp::SPLIT > 1) {   // the whole q|k row (QD is a multiple of 8: no word straddles)
    for (int c = tid; c < (QD + KD) / 8; c += mmp::THREADS) {
      const uint4 w = *(const uint4*)(row + 8 * c);
      const mm_u32 ws[4] = {w.x, w.y, w.z, w.w};
      float s2 = 0.f;
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const float a = mm_bf_lo(ws[j]), b = mm_bf_hi(ws[j]);
        s2 = fmaf(a, a, fmaf(b, b, s2));
      }
      if (8 * c < QD) sq += s2; else sk += s2;
    }
  }
  sq = mm_warp_sum(sq);
  sk = mm_warp_sum(sk);
  if (lane == 0) {
    red[0][warp] = sq;
    red[1][warp] = sk;
  }
  __syncthreads();
  sq = sk = 0.f;
  for (int w = 0; w < MM_NW; ++w) {   // fixed order: deterministic
    sq += red[0][w];
    sk += red[1][w];
  }
  if constexpr (mmp::STATS == 1) {
    if (tid == 0 && blockIdx.y == 0) {
      sumsq[t * 2] = sq;
      sumsq[t * 2 + 1] = sk;
    }
    return;
  }
  if constexpr (mmp::TP > 1) {
    sq = sumsq[t * 2];
    sk = sumsq[t * 2 + 1];
  }
  const float inv_q = rsqrtf(sq / (float)(QD * mmp::TP) + (float)mmp::EPS);
  const float inv_k = rsqrtf(sk / (float)(KD * mmp::TP) + (float)mmp::EPS);
  const mm_i64 prow = pb * mmp::BLOCK + pos % mmp::BLOCK;   // (block, row) index into the pools
  const bool lo = lane * MM_PER < MM_HALF;
  const int partner = lane * MM_PER < mmp::DR ? (lo ? lane + MM_HALF / MM_PER : lane - MM_HALF / MM_PER) : lane;
#pragma unroll
  for (int i = 0; i < MM_HPW; ++i) {
    const int hh = head(i);   // uniform over the warp
    if (hh >= MM_H3) break;
    const bool is_q = hh < mmp::NQ, is_k = !is_q && hh < mmp::NQ + mmp::NKV;
    float r[MM_PER];
    if (is_q || is_k) {
      const float inv = is_q ? inv_q : inv_k;
      float n[MM_PER];
#pragma unroll
      for (int e = 0; e < MM_PER; ++e) n[e] = mm_rbf(nw[i][e] * mm_rbf(v[i][e] * inv));
#pragma unroll
      for (int e = 0; e < MM_PER; ++e) {
        const float other = __shfl_sync(0xffffffffu, n[e], partner);
        const int d = lane * MM_PER + e;
        float x = n[e];
        if (d < mmp::DR) {
          const int fi = lo ? d : d - MM_HALF;
          const float inv_freq = 1.f / powf((float)mmp::THETA, (float)(2 * fi) / (float)mmp::DR);
          float sn, cs;
          sincosf((float)pos * inv_freq, &sn, &cs);
          x = lo ? x * cs - other * sn : x * cs + other * sn;
        }
        r[e] = mm_rbf(x);
      }
    } else {
#pragma unroll
      for (int e = 0; e < MM_PER; ++e) r[e] = v[i][e];
    }
    if (is_q) {
#pragma unroll
      for (int e = 0; e < MM_PER; ++e) q_out[t * QD + col(i, e)] = __float2bfloat16_rn(r[e]);
      continue;
    }
    if (!kv_ok) continue;
    const int g = is_k ? hh - mmp::NQ : hh - mmp::NQ - mmp::NKV;
    const mm_i64 base = (prow * mmp::NKV + g) * mmp::D + lane * MM_PER;
    if constexpr (mmp::KVDT == MM_DT_FP8E4M3) {
      float amax = 0.f;
#pragma unroll
      for (int e = 0; e < MM_PER; ++e) amax = fmaxf(amax, fabsf(r[e]));
      amax = mm_warp_max(amax);
      const float scale = fmaxf(amax / 448.f, 1e-8f);
      unsigned char* pool = (unsigned char*)(is_k ? k_pool : v_pool);
#pragma unroll
      for (int e = 0; e < MM_PER; ++e) pool[base + e] = mm_f_to_fp8(r[e] / scale);
      if (lane == 0) (is_k ? k_scale : v_scale)[prow * mmp::NKV + g] = scale;
    } else {
      mm_bf16* pool = (mm_bf16*)(is_k ? k_pool : v_pool);
#pragma unroll
      for (int e = 0; e < MM_PER; ++e) pool[base + e] = __float2bfloat16_rn(r[e]);
    }
  }
}
