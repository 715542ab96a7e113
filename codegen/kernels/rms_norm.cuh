/* RMS_NORM: RMSNorm with optional fused residual add and row gather (docs/kernels.md section 5).
 *   s = GATHER ? rows[i] : i
 *   h = RESIDUAL ? bf16(x[s] + r[s]) : x[s];  if RESIDUAL: x[s] = h (in place)
 *   y[i] = bf16(w * bf16(h * rsqrt(mean(h^2) + EPS)))      statistics in fp32
 * Layouts: x, r bf16[*, N]; w WDT[N]; rows i32[R]; y bf16[rows_out, N].
 * Constants: mmp::N, EPS, WDT, RESIDUAL, GATHER, THREADS.
 * Grid (GATHER ? R : T), block (THREADS). A decode step runs this at batch 1 between two weight
 * streams, so it is built for latency: with N a multiple of 8 every thread owns 8-element chunks
 * (16-byte loads and stores, THREADS = N / 8 up to 1024), the row stays in registers, and x, r and
 * w are each one round trip to memory; the norm weight (constant) is loaded before the
 * programmatic-launch wait. Other N: one element per thread and step, the row in shared memory.
 * Variants: one. */
constexpr bool MM_VEC = mmp::N % 8 == 0;
constexpr int MM_PER = MM_VEC ? (mmp::N / 8 + mmp::THREADS - 1) / mmp::THREADS : 1;

__device__ __forceinline__ void mm_unpack8(const uint4& v, float (&f)[8]) {
  const mm_u32 w[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
  for (int j = 0; j < 4; ++j) {
    f[2 * j] = mm_bf_lo(w[j]);
    f[2 * j + 1] = mm_bf_hi(w[j]);
  }
}
__device__ __forceinline__ mm_u32 mm_pack_bf2(float lo, float hi) {
  __nv_bfloat162 p = __floats2bfloat162_rn(lo, hi);
  return *(mm_u32*)&p;
}

extern "C" __global__ void __launch_bounds__(mmp::THREADS) MM_ENTRY(const mm_kernel_args args) {
  typedef typename mm_dt<mmp::WDT>::T wt;
  MM_OPERANDS(args);   // typed views of ptr[] (codegen/kernels/kinds.def)
  __shared__ float scratch[32];
  const int tid = threadIdx.x;
  const mm_i64 i = blockIdx.x;
  if constexpr (MM_VEC) {
    uint4 wv[MM_PER];
#pragma unroll
    for (int c = 0; c < MM_PER; ++c) {
      const int k = (tid + c * mmp::THREADS) * 8;
      wv[c] = k < mmp::N ? __ldg((const uint4*)(w + k)) : make_uint4(0u, 0u, 0u, 0u);
    }
    mm_pdl_enter();
    if (i >= args.dim[mmp::GATHER ? MM_DIM_R : MM_DIM_T]) return;
    const mm_i64 s = mmp::GATHER ? (mm_i64)rows[i] : i;
    mm_bf16* xs = x + s * mmp::N;
    float h[MM_PER][8];
    float ss = 0.f;
#pragma unroll
    for (int c = 0; c < MM_PER; ++c) {
      const int k = (tid + c * mmp::THREADS) * 8;
      if (k >= mmp::N) continue;
      mm_unpack8(*(const uint4*)(xs + k), h[c]);
      if (mmp::RESIDUAL) {
        float rv[8];
        mm_unpack8(*(const uint4*)(r + s * mmp::N + k), rv);
#pragma unroll
        for (int j = 0; j < 8; ++j) h[c][j] = mm_rbf(h[c][j] + rv[j]);
        *(uint4*)(xs + k) = make_uint4(mm_pack_bf2(h[c][0], h[c][1]), mm_pack_bf2(h[c][2], h[c][3]),
                                       mm_pack_bf2(h[c][4], h[c][5]), mm_pack_bf2(h[c][6], h[c][7]));
      }
#pragma unroll
      for (int j = 0; j < 8; ++j) ss += h[c][j] * h[c][j];
    }
    ss = mm_block_sum(ss, scratch);
    const float inv = rsqrtf(ss / (float)mmp::N + (float)mmp::EPS);
    mm_bf16* yr = y + i * mmp::N;
#pragma unroll
    for (int c = 0; c < MM_PER; ++c) {
      const int k = (tid + c * mmp::THREADS) * 8;
      if (k >= mmp::N) continue;
      const wt* pw = (const wt*)&wv[c];
      float o[8];
#pragma unroll
      for (int j = 0; j < 8; ++j) o[j] = mm_f(pw[j]) * mm_rbf(h[c][j] * inv);
      *(uint4*)(yr + k) = make_uint4(mm_pack_bf2(o[0], o[1]), mm_pack_bf2(o[2], o[3]), mm_pack_bf2(o[4], o[5]),
                                     mm_pack_bf2(o[6], o[7]));
    }
  } else {
    __shared__ float hs[mmp::N];
    mm_pdl_enter();
    if (i >= args.dim[mmp::GATHER ? MM_DIM_R : MM_DIM_T]) return;
    const mm_i64 s = mmp::GATHER ? (mm_i64)rows[i] : i;
    mm_bf16* xs = x + s * mmp::N;
    float ss = 0.f;
    for (int c = tid; c < mmp::N; c += mmp::THREADS) {
      float hv = __bfloat162float(xs[c]);
      if (mmp::RESIDUAL) {
        hv = mm_rbf(hv + __bfloat162float(r[s * mmp::N + c]));
        xs[c] = __float2bfloat16_rn(hv);
      }
      hs[c] = hv;
      ss += hv * hv;
    }
    ss = mm_block_sum(ss, scratch);
    const float inv = rsqrtf(ss / (float)mmp::N + (float)mmp::EPS);
    mm_bf16* yr = y + i * mmp::N;
    for (int c = tid; c < mmp::N; c += mmp::THREADS)
      yr[c] = __float2bfloat16_rn(mm_f(w[c]) * mm_rbf(hs[c] * inv));
  }
}
