/* MOE_COMBINE: sum of the routed expert contributions (docs/kernels.md section 5).
 *   out[t, :] = bf16(sum_j y[t*TOPK + j, :])      fp32 sum in j order
 * Layouts: y f32[T*TOPK, H]; out bf16[T, H].
 * Constants: mmp::H, TOPK, THREADS. Grid (T), block (THREADS). Variants: one. */
extern "C" __global__ void __launch_bounds__(mmp::THREADS) MM_ENTRY(const mm_kernel_args args) {
  MM_OPERANDS(args);   // typed views of ptr[] (codegen/kernels/kinds.def)
  mm_pdl_enter();   // before any read of the previous launch's output (common.cuh)
  const mm_i64 t = blockIdx.x;
  if (t >= args.dim[MM_DIM_T]) return;
  for (int h = threadIdx.x; h < mmp::H; h += mmp::THREADS) {
    float s = 0.f;
#pragma unroll
    for (int j = 0; j < mmp::TOPK; ++j)
      if (mmp::EL == 0 || (unsigned)(ids[t * mmp::TOPK + j] - mmp::E0) < (unsigned)mmp::EL)   // kinds.def
        s += y[(t * mmp::TOPK + j) * mmp::H + h];
    out[t * mmp::H + h] = __float2bfloat16_rn(s);
  }
}
