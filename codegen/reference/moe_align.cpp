// MOE_ALIGN reference: slots t*TOPK + j grouped by expert ids[t, j]; experts ascending, slots
// ascending within an expert; offsets[e]..offsets[e+1] is expert E0 + e's range. Slots of experts
// outside [E0, E0 + E) are not listed (sorted[offsets[E]..] is left as it was, as on the GPU).
#include <algorithm>

#include "codegen/reference/ref_util.h"

namespace mm::ref {

void moe_align_ref(const mm_kernel_args& args, const MoeAlignParams& p) {
  using detail::ptr;
  const int64_t slots = args.dim[MM_DIM_T] * p.TOPK;
  std::vector<int32_t> offsets, sorted;
  detail::group_by_expert(ptr<const int32_t>(args, 0), slots, p.E0, p.E, offsets, sorted);
  std::copy(offsets.begin(), offsets.end(), ptr<int32_t>(args, 1));
  std::copy(sorted.begin(), sorted.begin() + offsets[p.E], ptr<int32_t>(args, 2));
}

}  // namespace mm::ref
