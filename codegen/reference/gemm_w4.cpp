// GEMM_W4 reference: y[m,n] = sum_k x[m,k] * (q(k,n) - 8) * scale(k/G, n), fp32 accumulation over k
// in ascending order, one rounding to OUT. Every VARIANT of the CUDA kernel computes this.
#include <algorithm>

#include "codegen/reference/ref_util.h"

namespace mm::ref {

void gemm_w4_ref(const mm_kernel_args& args, const GemmW4Params& p) {
  using detail::ptr;
  const int64_t M = args.dim[p.MDIM == 1 ? MM_DIM_R : MM_DIM_T];
  const int64_t K = p.K, N = p.N;
  if (M <= 0) return;
  std::vector<float> xf(static_cast<size_t>(M * K));
  detail::bf16_rows_to_f32(ptr<const uint16_t>(args, 0), K, M, nullptr, xf.data());
  const int32_t* qw = ptr<const int32_t>(args, 1);
  const uint16_t* sc = ptr<const uint16_t>(args, 2);
  void* y = args.ptr[3];
  constexpr int64_t kCols = 256;
  const int64_t chunks = (N + kCols - 1) / kCols;
  parallel_for(chunks, 1, [&](int64_t b, int64_t e) {
    std::vector<float> acc(static_cast<size_t>(M * kCols));
    for (int64_t c = b; c < e; ++c) {
      const int64_t n0 = c * kCols, n1 = std::min(N, n0 + kCols), w = n1 - n0;
      detail::w4_gemm_block(xf.data(), M, K, qw, sc, N, p.G, n0, n1, static_cast<int>(p.QL), acc.data());
      for (int64_t m = 0; m < M; ++m)
        for (int64_t n = 0; n < w; ++n) {
          const float v = acc[m * w + n];
          if (p.OUT == MM_DT_F32)
            static_cast<float*>(y)[m * N + n0 + n] = v;
          else
            static_cast<uint16_t*>(y)[m * N + n0 + n] = f32_to_bf16(v);
        }
    }
  });
}

}  // namespace mm::ref
