/* SAMPLE: next token per row (docs/kernels.md section 5).
 *   temperature <= 0: argmax (ties: lower id).
 *   otherwise the candidates (sorted by logit descending, ties: lower id) are truncated to the
 *   first top_k (top_k <= 0: all), then to the shortest prefix whose mass >= top_p of the
 *   remaining mass (top_p >= 1: all); among those the token is drawn by an exponential race
 *   (vLLM's sampler: argmax p_i / E_i, E_i ~ Exp(1), in the log domain):
 *     winner = argmax_i (l_i - max) / temperature - ln(E_i)   (ties: lower id),
 *     E_i = -ln(u_i), u_i = (top 23 bits of splitmix64(rowkey + i) + 0.5) / 2^23,
 *     rowkey = splitmix64(seed ^ splitmix64(STEP * 0x9E3779B97F4A7C15 + row)).
 *   If no candidate has a finite score (all -inf or NaN logits) the first candidate wins.
 * Layouts: logits f32[R, V]; temperature f32[R]; top_k i32[R]; top_p f32[R]; seed u64[R];
 *   sampled i32[R].
 * Constants: mmp::V, THREADS (= 512). Grid (R), block (THREADS).
 * Method: no sort. Every candidate gets a unique 64-bit key (order-preserving logit bits, then the
 * complemented id), so "a prefix of the sorted order" is "keys >= kappa". The cuts (top-k by
 * count, top-p by mass) are radix selects over the key, 8 bits per pass, with shared-memory
 * histograms; masses are fixed point, w = floor(exp((v - max) / temperature) * 2^40) in u64
 * (mm_sample_w): integer sums are exact and independent of thread timing. The draw is one pass:
 * each candidate's score is computed with IEEE-exact steps only (mm_sample_score, mm_sample_ln:
 * no contraction, correctly rounded division), so the C++ reference
 * (codegen/reference/sample.cpp) computes the same scores bit for bit and picks the same token.
 * The race replaced an inverse-CDF draw (8 more mass-select passes over the row: 1.1 ms a token on
 * one SM at V = 200k). Each pass re-reads the row (L2-resident). Variants: one. */
__device__ __forceinline__ mm_u64 mm_splitmix64(mm_u64 x) {
  mm_u64 z = x + 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
__device__ __forceinline__ mm_u64 mm_sample_key(float v, int i) {
  const mm_u32 b = __float_as_uint(v);
  const mm_u32 o = (b & 0x80000000u) ? ~b : (b | 0x80000000u);
  return ((mm_u64)o << 32) | (mm_u64)(0xFFFFFFFFu - (mm_u32)i);
}

/* floor(exp(x) * 2^40), x = (v - mx) * invt <= 0 (v >= mx: x = 0, so the top candidate weighs 2^40
 * even for an infinite 1/temperature). Cody-Waite reduction, degree-7 Taylor polynomial through
 * explicit fmaf, power-of-two scaling: bit-identical to sample_mass in codegen/reference/sample.cpp
 * (expf is not: its last-ulp error differs between libraries). */
__device__ __forceinline__ mm_u64 mm_sample_w(float v, float mx, float invt) {
  const float x = v >= mx ? 0.0f : __fmul_rn(v - mx, invt);
  if (!(x >= -28.0f)) return 0;   // exp(-28) * 2^40 < 1; NaN too
  const float n = rintf(__fmul_rn(x, 1.44269504f));
  float r = fmaf(n, -0.693145752f, x);
  r = fmaf(n, -1.42860677e-6f, r);
  float p = 1.98412698e-4f;
  p = fmaf(p, r, 1.38888889e-3f);
  p = fmaf(p, r, 8.33333333e-3f);
  p = fmaf(p, r, 4.16666667e-2f);
  p = fmaf(p, r, 1.66666667e-1f);
  p = fmaf(p, r, 0.5f);
  p = fmaf(p, r, 1.0f);
  p = fmaf(p, r, 1.0f);
  return (mm_u64)__fmul_rn(p, __uint_as_float((mm_u32)(127 + 40 + (int)n) << 23));
}

/* ln(a) for a normal a > 0: a = m 2^e with m in [sqrt(1/2), sqrt(2)), ln m = 2 atanh(s),
 * s = (m - 1) / (m + 1), by an odd polynomial to s^11 (|s| <= 0.172). Explicit roundings only
 * (NVRTC contracts a * b + c otherwise): bit-identical to sample_ln in codegen/reference/sample.cpp. */
__device__ __forceinline__ float mm_sample_ln(float a) {
  const mm_u32 b = __float_as_uint(a);
  int e = (int)(b >> 23) - 127;
  float m = __uint_as_float((b & 0x7FFFFFu) | 0x3F800000u);
  if (m > 1.41421354f) {
    m = __fmul_rn(m, 0.5f);
    e += 1;
  }
  const float f = __fsub_rn(m, 1.0f);
  const float s = __fdiv_rn(f, __fadd_rn(f, 2.0f));
  const float z = __fmul_rn(s, s);
  float r = 0.181818187f;
  r = fmaf(r, z, 0.222222224f);
  r = fmaf(r, z, 0.285714298f);
  r = fmaf(r, z, 0.400000006f);
  r = fmaf(r, z, 0.666666687f);
  r = __fmul_rn(r, z);
  const float lnm = fmaf(s, r, __fadd_rn(s, s));
  return fmaf((float)e, 0.693147182f, lnm);
}

/* The race score of candidate i: (v - mx) / temperature - ln(E_i); -inf for -inf and NaN logits. */
__device__ __forceinline__ float mm_sample_score(float v, float mx, float invt, mm_u64 rowkey, int i) {
  const float x = v >= mx ? 0.0f : __fmul_rn(v - mx, invt);
  if (!(x > -INFINITY)) return -INFINITY;
  const mm_u64 bits = mm_splitmix64(rowkey + (mm_u64)i);
  const float u = __fmul_rn(__fadd_rn((float)(mm_u32)(bits >> 41), 0.5f), 1.1920929e-7f);   // 2^-23
  const float E = -mm_sample_ln(u);
  return __fsub_rn(x, mm_sample_ln(E));
}

/* Block-wide arg-max of (bv, bi) pairs, ties to the lower index (0x7fffffff: none). */
__device__ __forceinline__ void mm_sample_argmax(float& bv, int& bi, float* scratch, int* iscratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    const float ov = __shfl_xor_sync(0xffffffffu, bv, o);
    const int oi = __shfl_xor_sync(0xffffffffu, bi, o);
    if (ov > bv || (ov == bv && oi < bi)) { bv = ov; bi = oi; }
  }
  if (lane == 0) { scratch[warp] = bv; iscratch[warp] = bi; }
  __syncthreads();
  bv = lane < mmp::THREADS / 32 ? scratch[lane] : -INFINITY;
  bi = lane < mmp::THREADS / 32 ? iscratch[lane] : 0x7fffffff;
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    const float ov = __shfl_xor_sync(0xffffffffu, bv, o);
    const int oi = __shfl_xor_sync(0xffffffffu, bi, o);
    if (ov > bv || (ov == bv && oi < bi)) { bv = ov; bi = oi; }
  }
}

/* Largest key kappa >= lo with W(keys >= kappa, keys >= lo) >= target, W = count or fixed-point
 * mass. target must be reachable (<= W(keys >= lo)).
 * Histograms: logits cluster in a few exponent bins, so one shared histogram took every thread's
 * 64-bit atomic on the same address (the select serialized on one SM). Each thread sums a run of
 * equal digits in a register and flushes it when the digit changes, into its warp's own histogram
 * (hist: THREADS/32 x 256); the warps' histograms are summed at the end. Integer sums, so the
 * result does not depend on the order. */
__device__ mm_u64 mm_sample_select(const float* lg, float mx, float invt, bool by_mass, mm_u64 target,
                                   mm_u64 lo, mm_u64 (*hist)[256], mm_u64* bcast) {
  constexpr int NW = mmp::THREADS / 32;
  mm_u64* const mine = hist[threadIdx.x >> 5];
  mm_u64 prefix = 0, above = 0;
  for (int shift = 56; shift >= 0; shift -= 8) {
    for (int d = threadIdx.x; d < NW * 256; d += mmp::THREADS) hist[d >> 8][d & 255] = 0;
    __syncthreads();
    int run_d = -1;
    mm_u64 run_w = 0;
    for (int i = threadIdx.x; i < mmp::V; i += mmp::THREADS) {
      const float v = lg[i];
      const mm_u64 key = mm_sample_key(v, i);
      if (key < lo) continue;
      if (shift < 56 && (key >> (shift + 8)) != (prefix >> (shift + 8))) continue;
      const mm_u64 w = by_mass ? mm_sample_w(v, mx, invt) : 1ull;
      if (!w) continue;
      const int d = (int)((key >> shift) & 255);
      if (d != run_d) {
        if (run_w) atomicAdd(&mine[run_d], run_w);
        run_d = d;
        run_w = 0;
      }
      run_w += w;
    }
    if (run_w) atomicAdd(&mine[run_d], run_w);
    __syncthreads();
    for (int d = threadIdx.x; d < 256; d += mmp::THREADS)
      for (int w = 1; w < NW; ++w) hist[0][d] += hist[w][d];
    __syncthreads();
    if (threadIdx.x == 0) {
      int d = 255;
      for (; d > 0; --d) {
        if (above + hist[0][d] >= target) break;
        above += hist[0][d];
      }
      bcast[0] = prefix | ((mm_u64)d << shift);
      bcast[1] = above;
    }
    __syncthreads();
    prefix = bcast[0];
    above = bcast[1];
    __syncthreads();
  }
  return prefix;
}

/* Fixed-point mass of the keys >= lo (every thread gets it). */
__device__ __forceinline__ mm_u64 mm_sample_mass(const float* lg, float mx, float invt, mm_u64 lo, mm_u64* total) {
  if (threadIdx.x == 0) *total = 0;
  __syncthreads();
  mm_u64 s = 0;
  for (int i = threadIdx.x; i < mmp::V; i += mmp::THREADS) {
    const float v = lg[i];
    if (mm_sample_key(v, i) >= lo) s += mm_sample_w(v, mx, invt);
  }
  atomicAdd(total, s);
  __syncthreads();
  const mm_u64 r = *total;
  __syncthreads();
  return r;
}

/* min 1 block per SM: without it ptxas held this kernel to 32 registers and spilled. */
extern "C" __global__ void __launch_bounds__(mmp::THREADS, 1) MM_ENTRY(const mm_kernel_args args) {
  MM_OPERANDS(args);   // typed views of ptr[] (codegen/kernels/kinds.def)
  mm_pdl_enter();   // before any read of the previous launch's output (common.cuh)
  __shared__ float scratch[32];
  __shared__ int iscratch[32];
  __shared__ mm_u64 hist[mmp::THREADS / 32][256];   // 32 KiB at 512 threads
  __shared__ mm_u64 bcast[2];
  __shared__ mm_u64 total;
  const mm_i64 row = blockIdx.x;
  if (row >= args.dim[MM_DIM_R]) return;
  const float* lg = logits + row * mmp::V;
  const int tid = threadIdx.x;
  const float temp = temperature[row];
  if (!(temp > 0.f)) {
    float bv = -INFINITY;
    int bi = 0x7fffffff;
    for (int i = tid; i < mmp::V; i += mmp::THREADS) {
      const float v = lg[i];
      if (v > bv || (bi == 0x7fffffff && v == bv)) { bv = v; bi = i; }
    }
    mm_sample_argmax(bv, bi, scratch, iscratch);
    if (tid == 0) sampled[row] = bi == 0x7fffffff ? 0 : bi;
    return;
  }
  float mx = -INFINITY;
  for (int i = tid; i < mmp::V; i += mmp::THREADS) mx = fmaxf(mx, lg[i]);
  mx = mm_block_max(mx, scratch);
  const float invt = 1.f / temp;
  mm_u64 lo = 0;
  const int k = top_k[row];
  if (k > 0 && k < mmp::V) lo = mm_sample_select(lg, mx, invt, false, (mm_u64)k, 0, hist, bcast);
  const float p = top_p[row];
  if (p < 1.f) {
    const mm_u64 mk = mm_sample_mass(lg, mx, invt, lo, &total);
    mm_u64 target = (mm_u64)ceil((double)fmaxf(p, 0.f) * (double)mk);
    if (target == 0) target = 1;
    if (target <= mk) lo = mm_sample_select(lg, mx, invt, true, target, lo, hist, bcast);
  }
  const mm_u64 STEP = (mm_u64)args.dim[MM_DIM_STEP];
  const mm_u64 rowkey = mm_splitmix64(seed[row] ^ mm_splitmix64(STEP * 0x9E3779B97F4A7C15ull + (mm_u64)row));
  float bv = -INFINITY;
  int bi = 0x7fffffff;
  for (int i = tid; i < mmp::V; i += mmp::THREADS) {   // ascending i per thread: ties keep the lower id
    const float v = lg[i];
    if (mm_sample_key(v, i) < lo) continue;
    const float sc = mm_sample_score(v, mx, invt, rowkey, i);
    if (sc > bv) { bv = sc; bi = i; }
  }
  mm_sample_argmax(bv, bi, scratch, iscratch);
  if (bv > -INFINITY) {
    if (tid == 0) sampled[row] = bi;
    return;
  }
  // No finite score (every candidate's logit is -inf or NaN): the first candidate, as the reference.
  const mm_u64 key = mm_sample_select(lg, mx, invt, false, 1, lo, hist, bcast);
  if (tid == 0) sampled[row] = (int)(0xFFFFFFFFu - (mm_u32)(key & 0xFFFFFFFFull));
}
