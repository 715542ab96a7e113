// Internal helpers shared by the reference kernels (not part of the library's interface).
#pragma once

#include <cstdint>
#include <vector>

#include "codegen/reference/reference.h"

// The hot loops of the host backend, compiled twice on x86-64: for AVX2 (8 floats a vector) and
// for the baseline (SSE2, 4), picked at load time by the CPU. Only lanes widen: every loop these
// functions vectorize is elementwise or keeps explicit partial sums, and neither clone may fuse a
// multiply-add (no "fma" target), so both clones give bit-identical results on any machine.
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define MM_REF_VECTOR_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define MM_REF_VECTOR_CLONES
#endif

namespace mm::ref::detail {

template <class T>
T* ptr(const mm_kernel_args& a, int i) {
  return static_cast<T*>(a.ptr[i]);
}

// Rows of `n` bf16 values converted to float: out[m*n + k] = bf16(x[rows[m]*n + k]), rows = 0..M-1
// when `rows` is null.
void bf16_rows_to_f32(const uint16_t* x, int64_t n, int64_t m_count, const int32_t* rows,
                      float* out);

// out[k] = element k of a row of n 16-bit values of dtype code dt (MM_DT_BF16 or MM_DT_F16).
void row_16bit_to_f32(const void* row, int64_t n, int dt, float* out);

// Dot product in fp32 with eight interleaved partial sums (lane i takes k = i mod 8), combined in a
// fixed order: the result depends only on the inputs, never on threading.
float dot_f32(const float* a, const float* b, int64_t k);

// acc[m*(n1-n0) + (n-n0)] = sum_k x[m*K + k] * W[k, n] for n in [n0, n1), m < M, where W is a
// GPTQ-packed int4 matrix (qweight i32 [K/8, N], scales f16 [K/G, N], W = (q - 8) * scale), summed
// over k in ascending order in fp32. The result for one (m, n) does not depend on n0, n1.
// ql: the words' layout (kinds.def QL): 0 rows [K/8, N]; 1 strips of 32 columns [N/32, K/8, 32]
// (then n0 % 32 == 0 and N % 32 == 0).
// Up to this many rows dequantize in registers per row (decode); more reuse dequantized rows.
constexpr int64_t kW4FusedRows = 4;
void w4_gemm_block(const float* x, int64_t M, int64_t K, const int32_t* qweight,
                   const uint16_t* scales, int64_t N, int64_t G, int64_t n0, int64_t n1,
                   int ql, float* acc);

// Slots t*TOPK + j grouped by expert ids[t*TOPK + j] - E0: offsets[E+1], slots ascending per
// expert (the MOE_ALIGN order). Slots whose expert is outside [E0, E0 + E) (another expert-parallel
// rank's, or a bad id) are left out: offsets[E] counts the rest, sorted holds them first.
void group_by_expert(const int32_t* ids, int64_t slots, int64_t E0, int64_t E, std::vector<int32_t>& offsets,
                     std::vector<int32_t>& sorted);

}  // namespace mm::ref::detail

namespace mm::ref::detail {
// RMSNorm of one row h[n] (fp32 values of bf16 activations) with weight w (dtype code wdt):
// out[i] = bf16(w[i] * bf16(h[i] * rsqrt(mean(h^2) + eps))), as float. Defined in rms_norm.cpp.
void rms_norm_row(const float* h, int64_t n, const void* w, int wdt, double eps, float* out);
// The same with the statistics given: mean(h^2) = ss / count, where the row is a slice of a
// longer one (count elements) whose sum of squares ss was reduced across ranks (docs/parallel.md).
void rms_norm_row_stats(const float* h, int64_t n, double ss, int64_t count, const void* w, int wdt,
                        double eps, float* out);
double sum_squares(const float* h, int64_t n);
}  // namespace mm::ref::detail
