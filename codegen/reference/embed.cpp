// EMBED reference: y[t] = bf16(table[tokens[t]]). Token ids are trusted (the runtime checks them
// against the vocabulary before a call).
#include "codegen/reference/ref_util.h"

namespace mm::ref {

void embed_ref(const mm_kernel_args& args, const EmbedParams& p) {
  using detail::ptr;
  const int64_t T = args.dim[MM_DIM_T];
  const int32_t* tokens = ptr<const int32_t>(args, 0);
  const void* table = args.ptr[1];
  uint16_t* y = ptr<uint16_t>(args, 2);
  for (int64_t t = 0; t < T; ++t) {
    const int64_t row = tokens[t];
    for (int64_t h = 0; h < p.H; ++h) {
      const uint16_t v = static_cast<const uint16_t*>(table)[row * p.H + h];
      // bf16 -> bf16 is a copy; f16 -> bf16 rounds once.
      y[t * p.H + h] = p.WDT == MM_DT_BF16 ? v : f32_to_bf16(f16_to_f32(v));
    }
  }
}

}  // namespace mm::ref
