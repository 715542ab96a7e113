/* ATTENTION_DECODE: causal GQA over the paged KV cache for decode (docs/kernels.md section 5).
 *   token t, head h, kv head g = h / (NQ/NKV), keys j = 0..positions[t] of sequence seq_slots[t]:
 *   o[t, h] = sum_j softmax_j(q[t,h] . k_j * D^-0.5) v_j      fp32 softmax/accumulation, one rounding
 * Layouts: as ATTENTION (q bf16[T, NQ D]; pools [blocks, BLOCK, NKV, D] bf16 or fp8 e4m3 with f32
 *   scales [blocks, BLOCK, NKV]; o bf16[T, NQ D]); partial f32 [T, NQ, W(T), D + 2] with
 *   W(T) = min(SPLITS, ceil(256 / T)): per split the unnormalized acc[D], max m and sum l.
 * Constants: mmp::NQ, NKV (<= 16), D (multiple of 64), KVDT, BLOCK, MAX_BLOCKS, VARIANT, SPLITS,
 *   THREADS.
 * Splits: token t uses n = clamp(ceil(L / 16), 1, W(T)) splits of its L = positions[t] + 1 keys
 *   (mm_attn_splits): chosen from the call's actual context, per token, so that short contexts do
 *   no empty work and long ones spread over about 256 blocks. Both launches compute n the same
 *   way; n == 1 writes o directly and the combine does nothing for that token.
 * Variants:
 *   0 split: block (t, split) has one warp per kv head g, each owning the QH = NQ/NKV query heads
 *     of g over the block's keys [split*chunk, ...). The warps of a block walk the same keys in
 *     step, so the block reads whole cache rows (every head of a token, contiguous) rather than
 *     one head's 256-byte slice of each: a decode kernel that read per-head slices ran at
 *     0.7 TB/s. A warp takes 8 keys per step straight from global memory into registers (16-byte
 *     loads; no shared staging, no block barrier):
 *       S = Q K^T by mma.sync m16n8k16 bf16 (A = the QH query rows, zero-padded to 16, fixed in
 *       registers; B = the 8 keys). The mma's k order is a permutation of the head dims: quad
 *       member c loads 16-byte chunks c, c + 4, ... of its key's row (a quad reads 64 contiguous
 *       bytes per instruction) and holds the same dims of the query rows, so both operands agree.
 *       fp8 keys are converted exactly to bf16 in registers (e4m3 -> f16x2 -> f32 -> bf16x2), the
 *       per-row scale multiplies the score.
 *       Online softmax per query row in fp32 (row max over the quad by shuffles), p staged in
 *       shared memory per warp (fp8: times the value row's scale), then P.V by fp32 FMA: lane l
 *       owns dims [l D/32, (l+1) D/32) of every query row.
 *     Grid (T, SPLITS), block (32 NKV).
 *   1 combine: o[t, h] = sum_s acc_s e^(m_s - M) / sum_s l_s e^(m_s - M) over t's n splits; the
 *     split weights are computed once per block, the 1024 threads each sum a share of the splits
 *     for one dim (loads unrolled, so they overlap). Grid (T, NQ), block (1024). */
constexpr int MM_QH = mmp::NQ / mmp::NKV;
constexpr int MM_KS = mmp::D / 16;   // mma k-steps over the head dim
constexpr int MM_PER = mmp::D / 32;  // dims a lane owns for P.V
constexpr int MM_STEP = 8;           // keys per warp step (one 8-key mma n-tile)
constexpr int MM_MINK = 16;          // fewest keys per split
constexpr int MM_TARGET = 256;       // blocks a call aims for at long context
constexpr bool MM_FP8 = mmp::KVDT == MM_DT_FP8E4M3;
constexpr int MM_EB = MM_FP8 ? 1 : 2;             // bytes per cached element
constexpr int MM_NCH = mmp::D * MM_EB / 64;       // 16-byte chunks of a key row per quad member
constexpr int MM_VB = MM_PER * MM_EB;             // bytes of one value row a lane loads

/* Keys token t attends to (its position + 1, within the block table). */
__device__ __forceinline__ int mm_attn_len(int pos) {
  constexpr long long lim = (long long)mmp::MAX_BLOCKS * mmp::BLOCK;
  return pos < 0 ? 0 : ((long long)pos + 1 < lim ? pos + 1 : (int)lim);
}
/* Splits per token of a call of T tokens (the partial scratch's stride W(T)). */
__device__ __forceinline__ int mm_attn_stride(mm_i64 T) {
  const mm_i64 c = (MM_TARGET + T - 1) / T;
  return (int)(c < mmp::SPLITS ? c : mmp::SPLITS);
}
/* Splits of a token with `len` keys (both variants must agree). */
__device__ __forceinline__ int mm_attn_splits(int len, mm_i64 T) {
  int s = (len + MM_MINK - 1) / MM_MINK;
  const int w = mm_attn_stride(T);
  if (s > w) s = w;
  return s < 1 ? 1 : s;
}

/* Loads `B` bytes (2, 4, 8 or 16) as 32-bit words. */
template <int B>
__device__ __forceinline__ void mm_ld_words(mm_u32* w, const void* p) {
  if constexpr (B == 16) {
    const uint4 v = *(const uint4*)p;
    w[0] = v.x; w[1] = v.y; w[2] = v.z; w[3] = v.w;
  } else if constexpr (B == 8) {
    const uint2 v = *(const uint2*)p;
    w[0] = v.x; w[1] = v.y;
  } else if constexpr (B == 4) {
    w[0] = *(const mm_u32*)p;
  } else {
    w[0] = *(const unsigned short*)p;
  }
}

/* Two e4m3 bytes (the low 16 bits, low byte first) to floats: exact. */
__device__ __forceinline__ float2 mm_fp8x2_to_f2(mm_u32 pair) {
  const __half2_raw h = __nv_cvt_fp8x2_to_halfraw2((__nv_fp8x2_storage_t)(pair & 0xffffu), __NV_E4M3);
  return make_float2(__half2float(__half(__half_raw{h.x})), __half2float(__half(__half_raw{h.y})));
}
__device__ __forceinline__ mm_u32 mm_f2_to_bf2(float lo, float hi) {
  __nv_bfloat162 p = __floats2bfloat162_rn(lo, hi);
  return *(mm_u32*)&p;
}

/* First head dim of mma k-step s held by quad member c (the permuted k order): bf16 rows hold
 * 8 dims per 16-byte chunk, fp8 rows 16; c loads chunks c, c + 4, ... */
__device__ __forceinline__ int mm_attn_dim(int s, int c) {
  return MM_FP8 ? 64 * (s / 4) + 16 * c + 4 * (s % 4) : 32 * (s / 2) + 8 * c + 4 * (s % 2);
}

/* Physical pool row of key j of a sequence (block table bt). */
__device__ __forceinline__ mm_i64 mm_attn_row(const int* bt, int j) {
  return (mm_i64)bt[j / mmp::BLOCK] * mmp::BLOCK + j % mmp::BLOCK;
}

extern "C" __global__ void __launch_bounds__(mmp::THREADS) MM_ENTRY(const mm_kernel_args args) {
  MM_OPERANDS(args);   // typed views of ptr[] (codegen/kernels/kinds.def)
  mm_pdl_enter();      // q and the new key come from the previous launches (common.cuh)
  const mm_i64 T = args.dim[MM_DIM_T];
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const mm_i64 t = blockIdx.x;
  if (t >= T) return;
  const int len = mm_attn_len(positions[t]);
  const int nsplit = mm_attn_splits(len, T), stride = mm_attn_stride(T);

  if constexpr (mmp::VARIANT == 1) {
    // Threads per head dim, each summing every G-th split (VARIANT 1 has 1024 threads). The
    // discarded branch of a VARIANT 0 kernel is still compiled: with one kv head (a
    // tensor-parallel rank's, 32 threads) THREADS / D would be 0 and the array below ill-formed.
    constexpr int G = mmp::VARIANT == 1 ? mmp::THREADS / mmp::D : 1;
    __shared__ float fs[mmp::SPLITS];
    __shared__ float red[32];
    __shared__ float part[G][mmp::D];
    if (nsplit == 1) return;   // the split launch wrote o
    const int h = blockIdx.y;
    const float* p = partial + ((t * mmp::NQ + h) * stride) * (mmp::D + 2);
    float mloc = -INFINITY;
    for (int s = tid; s < nsplit; s += mmp::THREADS) mloc = fmaxf(mloc, p[s * (mmp::D + 2) + mmp::D]);
    const float M = mm_block_max(mloc, red);
    float lden = 0.f;
    for (int s = tid; s < nsplit; s += mmp::THREADS) {
      const float ms = p[s * (mmp::D + 2) + mmp::D];
      const float f = ms == -INFINITY ? 0.f : expf(ms - M);
      fs[s] = f;
      lden += p[s * (mmp::D + 2) + mmp::D + 1] * f;
    }
    const float den = mm_block_sum(lden, red);   // its barriers also publish fs
    const int q = tid / mmp::D, d = tid % mmp::D;
    float num = 0.f;
#pragma unroll 8
    for (int s = q; s < nsplit; s += G) num += p[s * (mmp::D + 2) + d] * fs[s];
    part[q][d] = num;
    __syncthreads();
    if (tid < mmp::D) {
      float sum = 0.f;
#pragma unroll
      for (int i = 0; i < G; ++i) sum += part[i][tid];   // fixed order: deterministic
      o[(t * mmp::NQ + h) * mmp::D + tid] = __float2bfloat16_rn(den > 0.f ? sum / den : 0.f);
    }
    return;
  } else {
    __shared__ __align__(16) float ps[mmp::NKV][MM_QH][MM_STEP + 4];   // p of a warp step
    __shared__ float al[mmp::NKV][MM_QH];                             // its rescale factors
    const int split = blockIdx.y, g = warp;
    if (split >= nsplit) return;
    const int gq = lane >> 2, cq = lane & 3;
    const int chunk = ((len + nsplit - 1) / nsplit + MM_STEP - 1) / MM_STEP * MM_STEP;
    const int kbeg = split * chunk, kend = min(len, kbeg + chunk);
    const int* bt = block_tables + (mm_i64)seq_slots[t] * mmp::MAX_BLOCKS;
    const float qscale = rsqrtf((float)mmp::D);

    // Query rows gq and gq + 8 of the group as mma A fragments (zero past QH): qa[s][0] holds
    // dims mm_attn_dim(s) + {0,1}, qa[s][1] + {2,3}.
    mm_u32 qa[MM_KS][2], qb[MM_KS][2];
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      const int h = gq + 8 * r;
      const mm_bf16* qr = q + (t * mmp::NQ + g * MM_QH + (h < MM_QH ? h : 0)) * mmp::D;
#pragma unroll
      for (int s = 0; s < MM_KS; ++s)
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          const mm_u32 v = h < MM_QH ? *(const mm_u32*)(qr + mm_attn_dim(s, cq) + 2 * e) : 0u;
          if (r == 0) qa[s][e] = v; else qb[s][e] = v;
        }
    }
    float m[2] = {-INFINITY, -INFINITY}, lsum[2] = {0.f, 0.f};
    float acc[MM_QH][MM_PER];
#pragma unroll
    for (int h = 0; h < MM_QH; ++h)
#pragma unroll
      for (int e = 0; e < MM_PER; ++e) acc[h][e] = 0.f;

#pragma unroll 1
    for (int j0 = kbeg; j0 < kend; j0 += MM_STEP) {
      // ---- loads: this lane's chunks of key j0 + gq, its value slices of the 8 keys, fp8 scales.
      // With BLOCK a multiple of 8 the step's keys are consecutive rows of one cache block.
      mm_i64 row0 = 0;
      if constexpr (mmp::BLOCK % MM_STEP == 0) row0 = mm_attn_row(bt, j0);
      auto row = [&](int i) { return mmp::BLOCK % MM_STEP == 0 ? row0 + i : mm_attn_row(bt, j0 + i); };
      mm_u32 kw[4 * MM_NCH];
      mm_u32 vw[MM_STEP][(MM_VB + 3) / 4];
      float ksc[2], vsc[2];
      if (j0 + gq < kend) {
        const unsigned char* src = (const unsigned char*)k_pool + ((row(gq) * mmp::NKV + g) * mmp::D) * MM_EB;
#pragma unroll
        for (int i = 0; i < MM_NCH; ++i) mm_ld_words<16>(&kw[4 * i], src + 16 * (4 * i + cq));
      } else {
#pragma unroll
        for (int w = 0; w < 4 * MM_NCH; ++w) kw[w] = 0u;
      }
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        ksc[e] = vsc[e] = 1.f;
        if (MM_FP8 && j0 + 2 * cq + e < kend) {
          const mm_i64 sr = row(2 * cq + e) * mmp::NKV + g;
          ksc[e] = k_scale[sr];
          vsc[e] = v_scale[sr];
        }
      }
#pragma unroll
      for (int jj = 0; jj < MM_STEP; ++jj) {
        if (j0 + jj < kend) {
          const mm_i64 idx = (row(jj) * mmp::NKV + g) * mmp::D + lane * MM_PER;
          mm_ld_words<MM_VB>(vw[jj], (const unsigned char*)v_pool + idx * MM_EB);
        } else {
#pragma unroll
          for (int w = 0; w < (MM_VB + 3) / 4; ++w) vw[jj][w] = 0u;
        }
      }

      // ---- S = Q K^T: sc[0..1] row gq, sc[2..3] row gq + 8, keys 2cq + {0,1}
      float sc[4] = {0.f, 0.f, 0.f, 0.f};
#pragma unroll
      for (int s = 0; s < MM_KS; ++s) {
        mm_u32 b0, b1;
        if constexpr (MM_FP8) {
          const mm_u32 w = kw[s];   // dims mm_attn_dim(s) + 0..3 as e4m3 bytes
          const float2 lo = mm_fp8x2_to_f2(w), hi = mm_fp8x2_to_f2(w >> 16);
          b0 = mm_f2_to_bf2(lo.x, lo.y);
          b1 = mm_f2_to_bf2(hi.x, hi.y);
        } else {
          b0 = kw[2 * s];
          b1 = kw[2 * s + 1];
        }
        mm_mma_bf16_nv(sc, qa[s][0], qb[s][0], qa[s][1], qb[s][1], b0, b1);
      }
#pragma unroll
      for (int e = 0; e < 4; ++e)
        sc[e] = j0 + 2 * cq + (e & 1) < kend ? sc[e] * qscale * ksc[e & 1] : -INFINITY;

      // ---- online softmax per query row (rows gq and gq + 8; the quad holds the row's 8 keys)
#pragma unroll
      for (int r = 0; r < 2; ++r) {
        const int h = gq + 8 * r;
        float mx = fmaxf(sc[2 * r], sc[2 * r + 1]);
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
        const float mnew = fmaxf(m[r], mx);
        const float alpha = mnew == -INFINITY ? 1.f : (m[r] == -INFINITY ? 0.f : expf(m[r] - mnew));
        float psum = 0.f;
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          const float sv = sc[2 * r + e];
          const float p = sv == -INFINITY ? 0.f : expf(sv - mnew);
          psum += p;
          if (h < MM_QH) ps[g][h][2 * cq + e] = p * vsc[e];
        }
        lsum[r] = lsum[r] * alpha + psum;   // this thread's keys; the quad is summed at the end
        m[r] = mnew;
        if (h < MM_QH && cq == 0) al[g][h] = alpha;
      }
      __syncwarp();

      // ---- acc = acc * alpha + P V (lane: dims lane*PER ..)
#pragma unroll
      for (int h = 0; h < MM_QH; ++h) {
        const float a = al[g][h];
#pragma unroll
        for (int e = 0; e < MM_PER; ++e) acc[h][e] *= a;
      }
#pragma unroll
      for (int j4 = 0; j4 < MM_STEP; j4 += 4) {
        float vf[4][MM_PER];
#pragma unroll
        for (int jj = 0; jj < 4; ++jj) {
          if constexpr (MM_FP8) {
#pragma unroll
            for (int e = 0; e < MM_PER; e += 2) {
              const float2 f = mm_fp8x2_to_f2(vw[j4 + jj][e / 4] >> (8 * (e % 4)));
              vf[jj][e] = f.x;
              vf[jj][e + 1] = f.y;
            }
          } else {
#pragma unroll
            for (int e = 0; e < MM_PER; e += 2) {
              vf[jj][e] = mm_bf_lo(vw[j4 + jj][e / 2]);
              vf[jj][e + 1] = mm_bf_hi(vw[j4 + jj][e / 2]);
            }
          }
        }
#pragma unroll
        for (int h = 0; h < MM_QH; ++h) {
          const float4 p4 = *(const float4*)&ps[g][h][j4];
          const float pp[4] = {p4.x, p4.y, p4.z, p4.w};
#pragma unroll
          for (int jj = 0; jj < 4; ++jj)
#pragma unroll
            for (int e = 0; e < MM_PER; ++e) acc[h][e] = fmaf(pp[jj], vf[jj][e], acc[h][e]);
        }
      }
      __syncwarp();   // ps/al are rewritten by the next step
    }

    // ---- this warp's heads: (m, l) of row h live in quad h % 8 (register h / 8)
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      lsum[r] += __shfl_xor_sync(0xffffffffu, lsum[r], 1);
      lsum[r] += __shfl_xor_sync(0xffffffffu, lsum[r], 2);
    }
#pragma unroll
    for (int h = 0; h < MM_QH; ++h) {
      const float mh = __shfl_sync(0xffffffffu, m[h / 8], 4 * (h % 8));
      const float lh = __shfl_sync(0xffffffffu, lsum[h / 8], 4 * (h % 8));
      const mm_i64 hg = t * mmp::NQ + g * MM_QH + h;
      if (nsplit == 1) {
        const float inv = lh > 0.f ? 1.f / lh : 0.f;
#pragma unroll
        for (int e = 0; e < MM_PER; ++e) o[hg * mmp::D + lane * MM_PER + e] = __float2bfloat16_rn(acc[h][e] * inv);
      } else {
        float* p = partial + (hg * stride + split) * (mmp::D + 2);
#pragma unroll
        for (int e = 0; e < MM_PER; ++e) p[lane * MM_PER + e] = acc[h][e];
        if (lane == 0) {
          p[mmp::D] = mh;
          p[mmp::D + 1] = lh;
        }
      }
    }
  }
}
