// MOE_W13 reference: for slot t*TOPK + j with expert e = ids[t, j]: g = x[t] . W1_e, u = x[t] . W3_e
// (fp32), act = bf16(silu(g) * u), silu(z) = z / (1 + e^-z). w13 stacks [w1 | w3] along N (2I).
// The slots are grouped by expert here, whatever GROUPED says, so each expert's weights are
// dequantized once per call; the result per slot is the same either way. The weights hold experts
// [E0, E0 + E): slots of other experts get no act row (kinds.def, expert parallelism).
#include <algorithm>
#include <cmath>

#include "codegen/reference/ref_util.h"

namespace mm::ref {

void moe_w13_ref(const mm_kernel_args& args, const MoeW13Params& p) {
  using detail::ptr;
  const int64_t T = args.dim[MM_DIM_T];
  const int64_t H = p.H, I = p.I, K = p.TOPK, N = 2 * I;
  const uint16_t* x = ptr<const uint16_t>(args, 0);
  const int32_t* qw = ptr<const int32_t>(args, 1);
  const uint16_t* sc = ptr<const uint16_t>(args, 2);
  const int32_t* ids = ptr<const int32_t>(args, 3);
  uint16_t* act = ptr<uint16_t>(args, 6);
  if (T <= 0) return;

  std::vector<int32_t> offsets, sorted;
  detail::group_by_expert(ids, T * K, p.E0, p.E, offsets, sorted);
  // Each held slot's row of x (slot s reads token s / TOPK), as float, in expert order.
  const int64_t held = offsets[p.E];
  std::vector<float> xs(static_cast<size_t>(held * H));
  for (int64_t i = 0; i < held; ++i) {
    const int32_t tok = sorted[i] / static_cast<int32_t>(K);
    for (int64_t h = 0; h < H; ++h) xs[i * H + h] = bf16_to_f32(x[tok * H + h]);
  }
  constexpr int64_t kCols = 256;
  const int64_t col_chunks = (I + kCols - 1) / kCols;
  const int64_t qw_stride = (H / 8) * N, sc_stride = (H / p.G) * N;
  parallel_for(p.E * col_chunks, 1, [&](int64_t b, int64_t e) {
    std::vector<float> g, u;
    for (int64_t task = b; task < e; ++task) {
      const int64_t ex = task / col_chunks, c = task % col_chunks;
      const int64_t m0 = offsets[ex], M = offsets[ex + 1] - m0;
      if (M == 0) continue;
      const int64_t n0 = c * kCols, n1 = std::min(I, n0 + kCols), w = n1 - n0;
      g.resize(static_cast<size_t>(M * w));
      u.resize(static_cast<size_t>(M * w));
      const float* xm = xs.data() + m0 * H;
      detail::w4_gemm_block(xm, M, H, qw + ex * qw_stride, sc + ex * sc_stride, N, p.G, n0, n1,
                            static_cast<int>(p.QL), g.data());
      detail::w4_gemm_block(xm, M, H, qw + ex * qw_stride, sc + ex * sc_stride, N, p.G, I + n0,
                            I + n1, static_cast<int>(p.QL), u.data());
      for (int64_t m = 0; m < M; ++m) {
        const int64_t slot = sorted[m0 + m];
        for (int64_t n = 0; n < w; ++n) {
          const float gv = g[m * w + n];
          const float silu = gv / (1.0f + std::exp(-gv));
          act[slot * I + n0 + n] = f32_to_bf16(silu * u[m * w + n]);
        }
      }
    }
  });
}

}  // namespace mm::ref
