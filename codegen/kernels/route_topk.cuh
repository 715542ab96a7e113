/* ROUTE_TOPK: sigmoid router with bias-selected top-k, renormalized (docs/kernels.md section 5).
 *   s = sigmoid(logits); ids = the TOPK largest s + bias (ties: lower expert id), descending;
 *   weights_j = s[ids_j] / sum_j' s[ids_j'].        all fp32
 * Variants (constant FUSED_GEMM):
 *   1 (decode): ptr x bf16[T,H], gate WDT[E,H], bias f32[E], ids i32[T,TOPK], weights f32[T,TOPK];
 *     the fp32 logits are computed inside: one warp per expert row, 16-byte gate loads, x staged in
 *     shared memory as fp32. Grid (T), block (THREADS = 1024).
 *   0 (prefill): ptr logits f32[T,E], bias, ids, weights. Grid (T), block (THREADS = 128).
 * The selection runs on warp 0: TOPK rounds of a warp arg-max over the not-yet-chosen experts.
 * Constants: mmp::E, TOPK, H, WDT, FUSED_GEMM, THREADS. */
extern "C" __global__ void __launch_bounds__(mmp::THREADS) MM_ENTRY(const mm_kernel_args args) {
  typedef typename mm_dt<mmp::WDT>::T wt;
  __shared__ float sg[mmp::E];    // sigmoid scores
  __shared__ float sel[mmp::E];   // selection key s + bias; -inf once chosen
  const mm_i64 t = blockIdx.x;
  if (t >= args.dim[MM_DIM_T]) return;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const float* bias;
  int* ids;
  float* weights;
  if constexpr (mmp::FUSED_GEMM) {
    const mm_bf16* x = (const mm_bf16*)args.ptr[0];
    const wt* gate = (const wt*)args.ptr[1];
    bias = (const float*)args.ptr[2];
    ids = (int*)args.ptr[3];
    weights = (float*)args.ptr[4];
    __shared__ float xs[mmp::H];
    for (int k = tid; k < mmp::H; k += mmp::THREADS) xs[k] = __bfloat162float(x[t * mmp::H + k]);
    __syncthreads();
    constexpr int NW = mmp::THREADS / 32;
    for (int e = warp; e < mmp::E; e += NW) {
      const wt* row = gate + (mm_i64)e * mmp::H;
      float acc = 0.f;
#pragma unroll 4
      for (int k = lane * 8; k < mmp::H; k += 256) {
        const uint4 v = mm_ld_stream(row + k);
        const wt* pv = (const wt*)&v;
#pragma unroll
        for (int i = 0; i < 8; ++i) acc += xs[k + i] * mm_f(pv[i]);
      }
      acc = mm_warp_sum(acc);
      if (lane == 0) {
        const float s = 1.f / (1.f + expf(-acc));
        sg[e] = s;
        sel[e] = s + bias[e];
      }
    }
  } else {
    const float* logits = (const float*)args.ptr[0];
    bias = (const float*)args.ptr[1];
    ids = (int*)args.ptr[2];
    weights = (float*)args.ptr[3];
    for (int e = tid; e < mmp::E; e += mmp::THREADS) {
      const float s = 1.f / (1.f + expf(-logits[t * mmp::E + e]));
      sg[e] = s;
      sel[e] = s + bias[e];
    }
  }
  __syncthreads();
  if (warp != 0) return;
  int chosen[mmp::TOPK];
  float total = 0.f;
#pragma unroll
  for (int j = 0; j < mmp::TOPK; ++j) {
    float bv = -INFINITY;
    int bi = 0x7fffffff;
    for (int e = lane; e < mmp::E; e += 32) {
      const float v = sel[e];
      if (v > bv) { bv = v; bi = e; }   // ascending e per lane: the first max has the lower id
    }
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
      const float ov = __shfl_xor_sync(0xffffffffu, bv, o);
      const int oi = __shfl_xor_sync(0xffffffffu, bi, o);
      if (ov > bv || (ov == bv && oi < bi)) { bv = ov; bi = oi; }
    }
    if (bi == 0x7fffffff) bi = 0;   // fewer candidates than TOPK (all -inf/NaN): a valid id
    chosen[j] = bi;
    total += sg[bi];
    __syncwarp();
    if (lane == 0) sel[bi] = -INFINITY;
    __syncwarp();
  }
  if (lane == 0) {
#pragma unroll
    for (int j = 0; j < mmp::TOPK; ++j) {
      ids[t * mmp::TOPK + j] = chosen[j];
      weights[t * mmp::TOPK + j] = sg[chosen[j]] / total;
    }
  }
}
