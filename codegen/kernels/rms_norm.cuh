/* RMS_NORM: RMSNorm with optional fused residual add and row gather (docs/kernels.md section 5).
 *   s = GATHER ? rows[i] : i
 *   h = RESIDUAL ? bf16(x[s] + r[s]) : x[s];  if RESIDUAL: x[s] = h (in place)
 *   y[i] = bf16(w * bf16(h * rsqrt(mean(h^2) + EPS)))      statistics in fp32
 * Layouts: x, r bf16[*, N]; w WDT[N]; rows i32[R]; y bf16[rows_out, N].
 * Constants: mmp::N, EPS, WDT, RESIDUAL, GATHER, THREADS.
 * Grid (GATHER ? R : T), block (THREADS); the row is kept in static shared memory as fp32.
 * Variants: one. */
extern "C" __global__ void __launch_bounds__(mmp::THREADS) MM_ENTRY(const mm_kernel_args args) {
  typedef typename mm_dt<mmp::WDT>::T wt;
  MM_OPERANDS(args);   // typed views of ptr[] (codegen/kernels/kinds.def)
  __shared__ float hs[mmp::N];
  __shared__ float scratch[32];
  const mm_i64 i = blockIdx.x;
  if (i >= args.dim[mmp::GATHER ? MM_DIM_R : MM_DIM_T]) return;
  const mm_i64 s = mmp::GATHER ? (mm_i64)rows[i] : i;
  mm_bf16* xs = x + s * mmp::N;
  float ss = 0.f;
  for (int c = threadIdx.x; c < mmp::N; c += mmp::THREADS) {
    float h = __bfloat162float(xs[c]);
    if (mmp::RESIDUAL) {
      h = mm_rbf(h + __bfloat162float(r[s * mmp::N + c]));
      xs[c] = __float2bfloat16_rn(h);
    }
    hs[c] = h;
    ss += h * h;
  }
  ss = mm_block_sum(ss, scratch);
  const float inv = rsqrtf(ss / (float)mmp::N + (float)mmp::EPS);
  mm_bf16* yr = y + i * mmp::N;
  for (int c = threadIdx.x; c < mmp::N; c += mmp::THREADS)
    yr[c] = __float2bfloat16_rn(mm_f(w[c]) * mm_rbf(hs[c] * inv));
}
