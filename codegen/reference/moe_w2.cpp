// MOE_W2 reference: per slot t*TOPK + j with expert e = ids[t, j]:
// contribution = weights[t, j] * (act[slot] . W2_e) in fp32. COMBINE=1 sums the contributions of
// a token over j = 0..TOPK-1 in order and rounds once to bf16 [T, H]; COMBINE=0 stores them as
// f32 [T*TOPK, H] (MOE_COMBINE then sums them in the same order, so both paths agree bitwise).
// The weights hold experts [E0, E0 + E): slots of other experts add nothing (COMBINE = 1) or leave
// their y rows unwritten (COMBINE = 0; MOE_COMBINE with EL skips them).
#include <algorithm>

#include "codegen/reference/ref_util.h"

namespace mm::ref {

void moe_w2_ref(const mm_kernel_args& args, const MoeW2Params& p) {
  using detail::ptr;
  const int64_t T = args.dim[MM_DIM_T];
  const int64_t H = p.H, I = p.I, K = p.TOPK;
  const uint16_t* act = ptr<const uint16_t>(args, 0);
  const int32_t* qw = ptr<const int32_t>(args, 1);
  const uint16_t* sc = ptr<const uint16_t>(args, 2);
  const int32_t* ids = ptr<const int32_t>(args, 3);
  const float* weights = ptr<const float>(args, 4);
  void* y = args.ptr[7];
  if (T <= 0) return;

  std::vector<int32_t> offsets, sorted;
  detail::group_by_expert(ids, T * K, p.E0, p.E, offsets, sorted);
  const int64_t held = offsets[p.E];
  std::vector<float> as(static_cast<size_t>(held * I));
  detail::bf16_rows_to_f32(act, I, held, sorted.data(), as.data());
  // contrib[slot * H + n]: f32 output directly when COMBINE=0, scratch otherwise (zero for the
  // slots of experts this rank does not hold).
  std::vector<float> scratch;
  float* contrib = nullptr;
  if (p.COMBINE) {
    scratch.assign(static_cast<size_t>(T * K * H), 0.0f);
    contrib = scratch.data();
  } else {
    contrib = static_cast<float*>(y);
  }
  constexpr int64_t kCols = 256;
  const int64_t col_chunks = (H + kCols - 1) / kCols;
  const int64_t qw_stride = (I / 8) * H, sc_stride = (I / p.G) * H;
  parallel_for(p.E * col_chunks, 1, [&](int64_t b, int64_t e) {
    std::vector<float> acc;
    for (int64_t task = b; task < e; ++task) {
      const int64_t ex = task / col_chunks, c = task % col_chunks;
      const int64_t m0 = offsets[ex], M = offsets[ex + 1] - m0;
      if (M == 0) continue;
      const int64_t n0 = c * kCols, n1 = std::min(H, n0 + kCols), w = n1 - n0;
      acc.resize(static_cast<size_t>(M * w));
      detail::w4_gemm_block(as.data() + m0 * I, M, I, qw + ex * qw_stride, sc + ex * sc_stride, H,
                            p.G, n0, n1, static_cast<int>(p.QL), acc.data());
      for (int64_t m = 0; m < M; ++m) {
        const int64_t slot = sorted[m0 + m];
        const float wt = weights[slot];
        for (int64_t n = 0; n < w; ++n) contrib[slot * H + n0 + n] = wt * acc[m * w + n];
      }
    }
  });
  if (p.COMBINE) {
    uint16_t* out = static_cast<uint16_t*>(y);
    for (int64_t t = 0; t < T; ++t)
      for (int64_t n = 0; n < H; ++n) {
        float s = 0.0f;
        for (int64_t j = 0; j < K; ++j) s += contrib[(t * K + j) * H + n];
        out[t * H + n] = f32_to_bf16(s);
      }
  }
}

}  // namespace mm::ref
