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
 * Grid (T), block (THREADS = 256). Pass 1: both sums of squares (block reductions). Pass 2: one
 * warp per head (q heads, k heads, then v heads), the head staged in shared memory so each lane
 * can read its rotary partner. A position whose logical block is past MAX_BLOCKS writes no KV.
 * Variants: one. */
extern "C" __global__ void __launch_bounds__(mmp::THREADS) MM_ENTRY(const mm_kernel_args args) {
  typedef typename mm_dt<mmp::WDT>::T wt;
  constexpr int QD = mmp::NQ * mmp::D, KD = mmp::NKV * mmp::D, LD = QD + 2 * KD;
  constexpr int NW = mmp::THREADS / 32, PER = mmp::D / 32, HALF = mmp::DR / 2;
  MM_OPERANDS(args);   // typed views of ptr[] (codegen/kernels/kinds.def)
  __shared__ float scratch[32];
  __shared__ float buf[NW][mmp::D];
  const mm_i64 t = blockIdx.x;
  if (t >= args.dim[MM_DIM_T]) return;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const mm_bf16* row = qkv + t * LD;
  float sq = 0.f, sk = 0.f;
  for (int c = tid; c < QD; c += mmp::THREADS) { const float h = __bfloat162float(row[c]); sq += h * h; }
  for (int c = tid; c < KD; c += mmp::THREADS) { const float h = __bfloat162float(row[QD + c]); sk += h * h; }
  sq = mm_block_sum(sq, scratch);
  sk = mm_block_sum(sk, scratch);
  const float inv_q = rsqrtf(sq / (float)QD + (float)mmp::EPS);
  const float inv_k = rsqrtf(sk / (float)KD + (float)mmp::EPS);
  const int pos = positions[t];
  const int slot = seq_slots[t];
  const int lb = pos / mmp::BLOCK;
  const bool kv_ok = pos >= 0 && lb < mmp::MAX_BLOCKS && slot >= 0;
  const mm_i64 pb = kv_ok ? (mm_i64)block_tables[(mm_i64)slot * mmp::MAX_BLOCKS + lb] : 0;
  const mm_i64 prow = pb * mmp::BLOCK + pos % mmp::BLOCK;   // (block, row) index into the pools
  for (int hh = warp; hh < mmp::NQ + 2 * mmp::NKV; hh += NW) {
    const bool is_q = hh < mmp::NQ, is_k = !is_q && hh < mmp::NQ + mmp::NKV;
    float r[PER];
    if (is_q || is_k) {
      const int off = is_q ? hh * mmp::D : QD + (hh - mmp::NQ) * mmp::D;
      const float inv = is_q ? inv_q : inv_k;
#pragma unroll
      for (int i = 0; i < PER; ++i) {
        const int d = lane + 32 * i;
        const float w = is_q ? mm_f(qn[off + d]) : mm_f(kn[off - QD + d]);
        buf[warp][d] = mm_rbf(w * mm_rbf(__bfloat162float(row[off + d]) * inv));
      }
      __syncwarp();
#pragma unroll
      for (int i = 0; i < PER; ++i) {
        const int d = lane + 32 * i;
        float v = buf[warp][d];
        if (d < mmp::DR) {
          const int fi = d < HALF ? d : d - HALF;
          const float freq = powf((float)mmp::THETA, -2.f * (float)fi / (float)mmp::DR);
          float sn, cs;
          sincosf((float)pos * freq, &sn, &cs);
          v = d < HALF ? v * cs - buf[warp][d + HALF] * sn : v * cs + buf[warp][d - HALF] * sn;
        }
        r[i] = mm_rbf(v);
      }
      __syncwarp();
    } else {
      const int off = QD + KD + (hh - mmp::NQ - mmp::NKV) * mmp::D;
#pragma unroll
      for (int i = 0; i < PER; ++i) r[i] = __bfloat162float(row[off + lane + 32 * i]);
    }
    if (is_q) {
#pragma unroll
      for (int i = 0; i < PER; ++i) q_out[t * QD + hh * mmp::D + lane + 32 * i] = __float2bfloat16_rn(r[i]);
      continue;
    }
    if (!kv_ok) continue;
    const int g = is_k ? hh - mmp::NQ : hh - mmp::NQ - mmp::NKV;
    const mm_i64 base = (prow * mmp::NKV + g) * mmp::D;
    if constexpr (mmp::KVDT == MM_DT_FP8E4M3) {
      float amax = 0.f;
#pragma unroll
      for (int i = 0; i < PER; ++i) amax = fmaxf(amax, fabsf(r[i]));
      amax = mm_warp_max(amax);
      const float scale = fmaxf(amax / 448.f, 1e-8f);
      unsigned char* pool = (unsigned char*)(is_k ? k_pool : v_pool);
#pragma unroll
      for (int i = 0; i < PER; ++i) pool[base + lane + 32 * i] = mm_f_to_fp8(r[i] / scale);
      if (lane == 0) (is_k ? k_scale : v_scale)[prow * mmp::NKV + g] = scale;
    } else {
      mm_bf16* pool = (mm_bf16*)(is_k ? k_pool : v_pool);
#pragma unroll
      for (int i = 0; i < PER; ++i) pool[base + lane + 32 * i] = __float2bfloat16_rn(r[i]);
    }
  }
}
