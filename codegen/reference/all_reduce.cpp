// ALL_REDUCE reference: the collective of a sharded plan over every rank's buffer at once
// (ptr[r] is rank r's x, r < RANKS). Each element becomes the fp32 sum over ranks in rank order
// 0, 1, ..., RANKS-1, rounded once to DT and written to every rank's copy, so all ranks hold the
// same bits whatever order they arrived in. The host backend's rank group calls it once per
// collective, after every rank reached it (runtime/src/host_ranks.cpp).
#include "codegen/reference/ref_util.h"

namespace mm::ref {

void all_reduce_ref(const mm_kernel_args& args, const AllReduceParams& p) {
  const int64_t rows = args.dim[p.MDIM ? MM_DIM_R : MM_DIM_T];
  const int64_t n = rows * p.N;
  const int ranks = static_cast<int>(p.RANKS);
  parallel_for(n, 4096, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      float sum = 0.0f;
      if (p.DT == MM_DT_F32) {
        for (int r = 0; r < ranks; ++r) sum += static_cast<const float*>(args.ptr[r])[i];
        for (int r = 0; r < ranks; ++r) static_cast<float*>(args.ptr[r])[i] = sum;
      } else {
        for (int r = 0; r < ranks; ++r) sum += bf16_to_f32(static_cast<const uint16_t*>(args.ptr[r])[i]);
        const uint16_t v = f32_to_bf16(sum);
        for (int r = 0; r < ranks; ++r) static_cast<uint16_t*>(args.ptr[r])[i] = v;
      }
    }
  });
}

}  // namespace mm::ref
