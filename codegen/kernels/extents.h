// The memory each operand slot of a launch may touch: the operand shapes of kinds.def (the
// "shape" strings) evaluated with a kernel's parameters and the largest dims a call may pass. The
// runtime's plan verifier compares them with the buffers a plan binds (arena ranges, weights,
// runtime inputs, KV pools), so that no plan, however crafted, makes a kernel read or write outside
// its memory. One rule per kind, in one table (extents.cpp), next to the registry it follows.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "codegen/kernels/registry.h"

namespace mm::kernels {

// The largest dims (abi.h MM_DIM_*) a call of the program may pass, and the rows of the block
// table (sequence slots).
struct CallBounds {
  int64_t T = 1;
  int64_t R = 1;
  int64_t seqs = 1;
};

struct SlotExtent {
  enum What : uint8_t {
    UNUSED,  // the slot holds no pointer with these parameters (operand NONE)
    BYTES,   // the kernel touches at most `bytes` bytes from the slot's base
    KV,      // a KV pool indexed by block ids: `bytes` per block, pool `kv` (0 k, 1 v, 2 k_scale,
             // 3 v_scale); its size follows from the session's blocks, not from the launch
  } what = UNUSED;
  uint64_t bytes = 0;  // saturates at UINT64_MAX instead of overflowing
  int kv = -1;
  const char* elem = "";  // the element type: bf16 f16 f32 fp8 i32 u32 u64
  std::string shape;      // the evaluated shape for messages, e.g. "[8, 384] bf16"
};

// One entry per ptr[] slot of the kind (kind_info(kind).slots), in slot order.
std::vector<SlotExtent> slot_extents(Kind kind, const KernelParams& params, const CallBounds& b);

// ceil(256 / T) capped at SPLITS, the split count of ATTENTION_DECODE for a call of T tokens
// (attention_decode.cuh); the partial scratch holds T * W(T) rows.
int64_t decode_splits(int64_t T, int64_t splits);

}  // namespace mm::kernels
