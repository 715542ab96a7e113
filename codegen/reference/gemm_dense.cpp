// GEMM_DENSE reference: y[m,n] = sum_k x[m,k] * w[n,k] in fp32 (products of 16-bit values are exact
// in fp32), one rounding to OUT. lm_head, the prefill router and unquantized projections.
#include "codegen/reference/ref_util.h"

namespace mm::ref {

void gemm_dense_ref(const mm_kernel_args& args, const GemmDenseParams& p) {
  using detail::ptr;
  const int64_t M = args.dim[p.MDIM == 1 ? MM_DIM_R : MM_DIM_T];
  const int64_t K = p.K, N = p.N;
  if (M <= 0) return;
  std::vector<float> xf(static_cast<size_t>(M * K));
  detail::bf16_rows_to_f32(ptr<const uint16_t>(args, 0), K, M, nullptr, xf.data());
  const void* w = args.ptr[1];
  void* y = args.ptr[2];
  parallel_for(N, 16, [&](int64_t b, int64_t e) {
    std::vector<float> wrow(static_cast<size_t>(K));
    for (int64_t n = b; n < e; ++n) {
      detail::row_16bit_to_f32(static_cast<const uint16_t*>(w) + n * K, K, static_cast<int>(p.WDT), wrow.data());
      for (int64_t m = 0; m < M; ++m) {
        const float v = detail::dot_f32(xf.data() + m * K, wrow.data(), K);
        if (p.OUT == MM_DT_F32)
          static_cast<float*>(y)[m * N + n] = v;
        else
          static_cast<uint16_t*>(y)[m * N + n] = f32_to_bf16(v);
      }
    }
  });
}

}  // namespace mm::ref
