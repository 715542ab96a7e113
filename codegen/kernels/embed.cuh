/* EMBED: token embedding gather (docs/kernels.md section 5).
 *   y[t, :] = bf16(table[tokens[t], :])
 * Layouts: tokens i32[T]; table WDT[V, H] row-major; y bf16[T, H].
 * Constants: mmp::V, H, WDT, THREADS. Grid (T), block (THREADS).
 * Variants: one. A token id outside [0, V) yields a zero row instead of reading out of bounds.
 * Test: test/gpu/kernels_gpu_test (Embed*), reference codegen/reference. */
extern "C" __global__ void __launch_bounds__(mmp::THREADS) MM_ENTRY(const mm_kernel_args args) {
  typedef typename mm_dt<mmp::WDT>::T wt;
  MM_OPERANDS(args);   // typed views of ptr[] (codegen/kernels/kinds.def)
  mm_pdl_enter();   // before any read of the call's inputs (common.cuh)
  const mm_i64 t = blockIdx.x;
  if (t >= args.dim[MM_DIM_T]) return;
  const int id = tokens[t];
  const bool ok = id >= 0 && id < mmp::V;
  const wt* src = table + (mm_i64)(ok ? id : 0) * mmp::H;
  mm_bf16* dst = y + t * mmp::H;
  for (int h = threadIdx.x; h < mmp::H; h += mmp::THREADS) mm_store(dst + h, ok ? mm_f(src[h]) : 0.f);
}
