// ATTENTION_DECODE reference: the same causal GQA as ATTENTION (attention.cpp), one query token
// per sequence or not. VARIANT 1 is the GPU's split-K combine launch, which follows a VARIANT 0
// launch over the same operands: the reference computed the final `o` in that first launch already.
// SPLITS only changes how the GPU splits the work; `partial` is ignored (the ATTENTION reference
// runs on the same operands with `o` moved into the slot `partial` has here).
#include "codegen/reference/ref_util.h"

namespace mm::ref {

void attention_decode_ref(const mm_kernel_args& args, const AttentionDecodeParams& p) {
  if (p.VARIANT == 1) return;
  AttentionParams a{};
  a.NQ = p.NQ;
  a.NKV = p.NKV;
  a.D = p.D;
  a.KVDT = p.KVDT;
  a.BLOCK = p.BLOCK;
  a.MAX_BLOCKS = p.MAX_BLOCKS;
  a.VARIANT = 0;
  mm_kernel_args view = args;
  view.ptr[8] = args.ptr[9];   // ATTENTION's slots: ATTENTION_DECODE's without `partial`
  attention_ref(view, a);
}

}  // namespace mm::ref
