// MOE_COMBINE reference: out[t] = bf16(sum_j y[t*TOPK + j]) with j ascending, in fp32. EL > 0: only
// the slots whose expert ids[t, j] is in [E0, E0 + EL) are summed (an expert-parallel rank's).
#include "codegen/reference/ref_util.h"

namespace mm::ref {

void moe_combine_ref(const mm_kernel_args& args, const MoeCombineParams& p) {
  using detail::ptr;
  const int64_t T = args.dim[MM_DIM_T];
  const float* y = ptr<const float>(args, 0);
  uint16_t* out = ptr<uint16_t>(args, 1);
  const int32_t* ids = p.EL ? ptr<const int32_t>(args, 2) : nullptr;
  auto held = [&](int64_t slot) { return !ids || (ids[slot] >= p.E0 && ids[slot] - p.E0 < p.EL); };
  for (int64_t t = 0; t < T; ++t)
    for (int64_t n = 0; n < p.H; ++n) {
      float s = 0.0f;
      for (int64_t j = 0; j < p.TOPK; ++j)
        if (held(t * p.TOPK + j)) s += y[(t * p.TOPK + j) * p.H + n];
      out[t * p.H + n] = f32_to_bf16(s);
    }
}

}  // namespace mm::ref
