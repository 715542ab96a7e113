// RMS_NORM reference: optional fused residual add (written back into x) and row gather.
// y = bf16(w * bf16(h * rsqrt(mean(h^2) + eps))): two roundings, like Hugging Face's
// MiniMaxM2RMSNorm (normalize in fp32, cast to the activation dtype, multiply by the weight).
#include <cmath>

#include "codegen/reference/ref_util.h"

namespace mm::ref {

namespace detail {
// One row; shared with QK_NORM_ROPE_KV. Returns the bf16-rounded normalized row in `out` as float.
double sum_squares(const float* h, int64_t n) {
  double ss = 0.0;  // statistics in (at least) fp32
  for (int64_t i = 0; i < n; ++i) ss += static_cast<double>(h[i]) * h[i];
  return ss;
}

void rms_norm_row(const float* h, int64_t n, const void* w, int wdt, double eps, float* out) {
  rms_norm_row_stats(h, n, sum_squares(h, n), n, w, wdt, eps, out);
}

void rms_norm_row_stats(const float* h, int64_t n, double ss, int64_t count, const void* w, int wdt,
                        double eps, float* out) {
  const float inv = 1.0f / std::sqrt(static_cast<float>(ss / static_cast<double>(count)) +
                                     static_cast<float>(eps));
  for (int64_t i = 0; i < n; ++i)
    out[i] = round_bf16(load_16bit(w, i, wdt) * round_bf16(h[i] * inv));
}
}  // namespace detail

void rms_norm_ref(const mm_kernel_args& args, const RmsNormParams& p) {
  using detail::ptr;
  uint16_t* x = ptr<uint16_t>(args, 0);
  const uint16_t* r = ptr<const uint16_t>(args, 1);
  const void* w = args.ptr[2];
  const int32_t* rows = ptr<const int32_t>(args, 3);
  uint16_t* y = ptr<uint16_t>(args, 4);
  const int64_t rows_out = p.GATHER ? args.dim[MM_DIM_R] : args.dim[MM_DIM_T];
  const int64_t N = p.N;
  parallel_for(rows_out, 16, [&](int64_t b, int64_t e) {
    std::vector<float> h(static_cast<size_t>(N)), out(static_cast<size_t>(N));
    for (int64_t i = b; i < e; ++i) {
      const int64_t s = p.GATHER ? rows[i] : i;
      uint16_t* xs = x + s * N;
      for (int64_t k = 0; k < N; ++k) {
        float v = bf16_to_f32(xs[k]);
        if (p.RESIDUAL) {
          v = round_bf16(v + bf16_to_f32(r[s * N + k]));
          xs[k] = f32_to_bf16(v);
        }
        h[k] = v;
      }
      detail::rms_norm_row(h.data(), N, w, static_cast<int>(p.WDT), p.EPS, out.data());
      for (int64_t k = 0; k < N; ++k) y[i * N + k] = f32_to_bf16(out[k]);
    }
  });
}

}  // namespace mm::ref
