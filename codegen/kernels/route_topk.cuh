/* ROUTE_TOPK: sigmoid router with bias-selected top-k, renormalized (docs/kernels.md section 5).
 *   s = sigmoid(logits); ids = the TOPK largest s + bias (ties: lower expert id), descending;
 *   weights_j = s[ids_j] / sum_j' s[ids_j'].        all fp32
 * Variants (constant FUSED_GEMM):
 *   1 (decode): ptr x bf16[T,H], gate WDT[E,H], bias f32[E], ids i32[T,TOPK], weights f32[T,TOPK];
 *     the fp32 logits are computed inside. One token per thread block cluster of CS blocks
 *     (MM_CLUSTER_DIMS; CS = 8 for E >= 64): block r computes the logits of experts
 *     [r*EB, (r+1)*EB), EB = ceil(E / CS), so at batch 1 the 1.2 MB gate of a 192-expert router is
 *     streamed by 8 SMs instead of one. A warp item is (expert, 256 consecutive k): 16-byte gate
 *     loads, all (up to 10) items of a warp in flight, x staged in shared memory as bf16, a
 *     fixed-order warp sum per item and a fixed-order sum over items (deterministic). Block 0 gathers the scores of the
 *     other blocks through distributed shared memory and selects. Grid (T * CS), block (THREADS =
 *     1024).
 *   0 (prefill): ptr logits f32[T,E], (gate unused), bias, ids, weights. Grid (T), block
 *     (THREADS = 128).
 * The selection runs on warp 0: TOPK rounds of a warp arg-max over the not-yet-chosen experts.
 * Constants: mmp::E, TOPK, H, WDT, FUSED_GEMM, CS, THREADS. */
extern "C" __global__ void MM_CLUSTER_DIMS __launch_bounds__(mmp::THREADS) MM_ENTRY(const mm_kernel_args args) {
  typedef typename mm_dt<mmp::WDT>::T wt;
  __shared__ float sg[mmp::E];    // sigmoid scores
  __shared__ float sel[mmp::E];   // selection key s + bias; -inf once chosen
  constexpr int CS = mmp::FUSED_GEMM ? mmp::CS : 1;
  const mm_i64 t = blockIdx.x / CS;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  MM_OPERANDS(args);   // x or logits, gate (fused only), bias, ids, weights (codegen/kernels/kinds.def)
  if constexpr (mmp::FUSED_GEMM) {
    constexpr int EB = (mmp::E + CS - 1) / CS, SEG = 256, SPE = (mmp::H + SEG - 1) / SEG;
    constexpr int NW = mmp::THREADS / 32, UW = (EB * SPE + NW - 1) / NW, U = UW < 10 ? UW : 10;
    // x as raw bf16: a lane reads its 8 values as one 16-byte word, the warp 512 contiguous bytes
    // (no bank conflicts; an fp32 copy read at a stride of 8 floats was 8-way conflicted).
    __shared__ uint4 xs[mmp::H / 8];
    __shared__ float part[EB * SPE];
    __shared__ float lsg[EB], lsel[EB];   // this block's experts
    const int rank = CS > 1 ? (int)mm_cluster_rank() : 0;
    const int e0 = rank * EB, ne = (mmp::E - e0 < EB ? mmp::E - e0 : EB);
    // This block's gate rows (contiguous) go to L2 while the previous launch drains.
    if (ne > 0 && t == 0)
      for (mm_i64 off = (mm_i64)tid * 128; off < (mm_i64)ne * mmp::H * (mm_i64)sizeof(wt); off += (mm_i64)mmp::THREADS * 128)
        mm_prefetch_l2((const char*)(gate + (mm_i64)e0 * mmp::H) + off);
    mm_pdl_enter();
    if (t >= args.dim[MM_DIM_T]) return;   // every block of a cluster has the same token
    for (int k = tid; k < mmp::H / 8; k += mmp::THREADS) xs[k] = *(const uint4*)(x + t * mmp::H + 8 * k);
    __syncthreads();
    const int items = ne > 0 ? ne * SPE : 0;
#pragma unroll 1
    for (int i0 = warp; i0 < items; i0 += NW * U) {
      uint4 v[U];
#pragma unroll
      for (int u = 0; u < U; ++u) {
        const int it = i0 + NW * u, k = (it % SPE) * SEG + lane * 8;
        v[u] = make_uint4(0u, 0u, 0u, 0u);
        if (it < items && k < mmp::H) v[u] = mm_ld_stream(gate + (mm_i64)(e0 + it / SPE) * mmp::H + k);
      }
#pragma unroll
      for (int u = 0; u < U; ++u) {
        const int it = i0 + NW * u, k = (it % SPE) * SEG + lane * 8;
        if (it >= items) break;   // uniform over the warp
        float acc = 0.f;
        if (k < mmp::H) {
          const wt* pv = (const wt*)&v[u];
          const uint4 xw = xs[k / 8];
          const float xf[8] = {mm_bf_lo(xw.x), mm_bf_hi(xw.x), mm_bf_lo(xw.y), mm_bf_hi(xw.y),
                               mm_bf_lo(xw.z), mm_bf_hi(xw.z), mm_bf_lo(xw.w), mm_bf_hi(xw.w)};
#pragma unroll
          for (int i = 0; i < 8; ++i) acc += xf[i] * mm_f(pv[i]);
        }
        acc = mm_warp_sum(acc);
        if (lane == 0) part[it] = acc;
      }
    }
    __syncthreads();
    for (int el = tid; el < ne; el += mmp::THREADS) {
      float logit = 0.f;
      for (int sgi = 0; sgi < SPE; ++sgi) logit += part[el * SPE + sgi];
      const float s = 1.f / (1.f + expf(-logit));
      lsg[el] = s;
      lsel[el] = s + bias[e0 + el];
    }
    if constexpr (CS > 1) {
      mm_cluster_sync();
      if (rank == 0)
        for (int e = tid; e < mmp::E; e += mmp::THREADS) {
          sg[e] = mm_ld_dsmem(&lsg[e % EB], (unsigned)(e / EB));
          sel[e] = mm_ld_dsmem(&lsel[e % EB], (unsigned)(e / EB));
        }
      mm_cluster_sync();   // the other blocks stay until block 0 has read their scores
      if (rank != 0) return;
    } else {
      __syncthreads();
      for (int e = tid; e < mmp::E; e += mmp::THREADS) {
        sg[e] = lsg[e];
        sel[e] = lsel[e];
      }
    }
  } else {
    mm_pdl_enter();
    if (t >= args.dim[MM_DIM_T]) return;
    for (int e = tid; e < mmp::E; e += mmp::THREADS) {
      const float s = 1.f / (1.f + expf(-logits[t * mmp::E + e]));
      sg[e] = s;
      sel[e] = s + bias[e];
    }
  }
  __syncthreads();
  if (warp != 0) return;
  // Warp 0 selects. Each lane keeps its experts' keys (e = lane + 32 i) in registers, a round
  // takes the lane's best not yet chosen, then the warp's by two reductions (max key, then the
  // lowest id holding it): a few instructions per round where a shuffle tree over shared memory
  // took ~15 dependent steps. Keys are order-preserving bits of s + bias; 0 (-inf, NaN) is never
  // chosen, as `v > best` never held for them. A rolled round loop: warp 0 runs it alone, after a
  // decode step's weight streaming has evicted the code from the caches.
  constexpr int NPL = (mmp::E + 31) / 32;
  mm_u32 key[NPL];
#pragma unroll
  for (int i = 0; i < NPL; ++i) {
    const int e = lane + 32 * i;
    const float v = e < mmp::E ? sel[e] : -INFINITY;
    const mm_u32 b = __float_as_uint(v);
    key[i] = v > -INFINITY ? ((b & 0x80000000u) ? ~b : (b | 0x80000000u)) : 0u;
  }
  __shared__ int chosen[mmp::TOPK];
  float total = 0.f;
#pragma unroll 1
  for (int j = 0; j < mmp::TOPK; ++j) {
    mm_u32 bk = 0u;
    int bi = 0x7fffffff;
#pragma unroll
    for (int i = 0; i < NPL; ++i)
      if (key[i] > bk) { bk = key[i]; bi = lane + 32 * i; }   // ascending e: the first max has the lower id
    const mm_u32 mk = __reduce_max_sync(0xffffffffu, bk);
    int win = (int)__reduce_min_sync(0xffffffffu, (mm_u32)(mk != 0u && bk == mk ? bi : 0x7fffffff));
    if (win == 0x7fffffff) win = 0;   // fewer candidates than TOPK (all -inf/NaN): a valid id
    total += sg[win];
#pragma unroll
    for (int i = 0; i < NPL; ++i)
      if (lane + 32 * i == win) key[i] = 0u;
    if (lane == 0) chosen[j] = win;
  }
  __syncwarp();
  if (lane < mmp::TOPK) {   // TOPK <= 32 (specialize)
    const int c = chosen[lane];
    ids[t * mmp::TOPK + lane] = c;
    weights[t * mmp::TOPK + lane] = sg[c] / total;
  }
}
