/* MOE_ALIGN: token/expert grouping (docs/kernels.md section 5).
 *   slot s = t*TOPK + j is listed under expert ids[t, j]; experts ascending, slots ascending within
 *   an expert; offsets[e]..offsets[e+1] is expert e's range of `sorted`.
 * Layouts: ids i32[T, TOPK]; offsets i32[E+1]; sorted i32[T*TOPK].
 * Constants: mmp::E (<= 256), TOPK, THREADS (= 1024). Grid (1), block (THREADS).
 * Algorithm: count per expert with shared atomics, exclusive scan, then a stable placement pass in
 * chunks of THREADS slots: a slot's rank = slots of its expert in earlier chunks + in earlier warps
 * of this chunk (per-warp counts in shared) + earlier lanes of its warp (__match_any_sync). Slot
 * order is deterministic, never decided by atomics. Ids outside [0, E) are left out.
 * Variants: one. */
extern "C" __global__ void __launch_bounds__(mmp::THREADS) MM_ENTRY(const mm_kernel_args args) {
  MM_OPERANDS(args);   // typed views of ptr[] (codegen/kernels/kinds.def)
  mm_pdl_enter();   // before any read of the previous launch's output (common.cuh)
  constexpr int NW = mmp::THREADS / 32;
  __shared__ int counts[mmp::E];
  __shared__ int base[mmp::E];
  __shared__ int wc[NW][mmp::E];
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const mm_i64 n = args.dim[MM_DIM_T] * mmp::TOPK;
  for (int e = tid; e < mmp::E; e += mmp::THREADS) counts[e] = 0;
  __syncthreads();
  for (mm_i64 s = tid; s < n; s += mmp::THREADS) {
    const int e = ids[s] - mmp::E0;   // held experts [E0, E0 + E) (kinds.def)
    if (e >= 0 && e < mmp::E) atomicAdd(&counts[e], 1);
  }
  __syncthreads();
  if (tid == 0) {
    int acc = 0;
    for (int e = 0; e < mmp::E; ++e) {
      base[e] = acc;
      offsets[e] = acc;
      acc += counts[e];
    }
    offsets[mmp::E] = acc;
  }
  __syncthreads();
  for (mm_i64 c0 = 0; c0 < n; c0 += mmp::THREADS) {
    for (int k = tid; k < NW * mmp::E; k += mmp::THREADS) (&wc[0][0])[k] = 0;
    __syncthreads();
    const mm_i64 s = c0 + tid;
    int e = s < n ? ids[s] - mmp::E0 : -1;
    if (e < 0 || e >= mmp::E) e = -1;
    const unsigned peers = __match_any_sync(0xffffffffu, e);
    const int rank = __popc(peers & ((1u << lane) - 1u));
    if (e >= 0 && rank == 0) wc[warp][e] = __popc(peers);
    __syncthreads();
    if (e >= 0) {
      int pos = base[e] + rank;
      for (int w = 0; w < warp; ++w) pos += wc[w][e];
      sorted[pos] = (int)s;
    }
    __syncthreads();
    for (int k = tid; k < mmp::E; k += mmp::THREADS) {
      int add = 0;
      for (int w = 0; w < NW; ++w) add += wc[w][k];
      base[k] += add;
    }
    __syncthreads();
  }
}
