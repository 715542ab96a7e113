// Where the operands of a plan's launches live on a backend, and how big the KV cache is: one
// resolution for the host reference and the GPU (docs/kernels.md sections 2 and 4), so the two
// backends bind every launch identically.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "codegen/kernels/abi.h"
#include "codegen/kernels/registry.h"
#include "runtime/schemas/plan_generated.h"

namespace mm::rt {

// Runtime inputs and outputs (InputSlot TOKENS .. SAMPLED).
inline constexpr int kInputSlots = static_cast<int>(plan::InputSlot::SAMPLED) + 1;

// The paged KV cache of a plan: per layer pools k and v of [blocks, BLOCK, Nkv, D] (bf16 or fp8),
// and for fp8 the scale pools k_scale and v_scale of [blocks, BLOCK, Nkv] f32.
struct KvLayout {
  int64_t layers = 0;
  int64_t block_tokens = 0;
  bool fp8 = false;
  uint64_t pool_bytes_per_block = 0;   // one k (or v) block of one layer
  uint64_t scale_bytes_per_block = 0;  // one k_scale (or v_scale) block of one layer; 0 for bf16
  // Bytes one block costs over all layers and the four pools.
  uint64_t bytes_per_block() const {
    return static_cast<uint64_t>(layers) * 2 * (pool_bytes_per_block + scale_bytes_per_block);
  }
  // Blocks that hold `max_seqs` sequences of `max_seq_len` tokens.
  int64_t blocks_for(int64_t max_seqs, int64_t max_seq_len) const {
    return max_seqs * ((max_seq_len + block_tokens - 1) / block_tokens);
  }
};
KvLayout kv_layout(const plan::PlanDef& def);

// The memory of one backend's call: arena base, device (or host) weights, runtime inputs, the
// layers' KV pools ([layer * 4 + which], which = k, v, k_scale, v_scale; null when absent).
struct OperandTable {
  void* arena = nullptr;
  std::vector<void*> weights;
  std::array<void*, kInputSlots> inputs{};
  std::vector<void*> kv;
};

// Fills args->ptr with the launch's operands (unused slots null). The plan reader has checked
// every index and range against the plan, so this does no bounds checks.
void bind_launch(const plan::LaunchDef& launch, const OperandTable& table, mm_kernel_args* args);

// The grid of a launch for the call's dims (kernels::DimExpr, the one evaluator).
std::array<int64_t, 3> launch_grid(const plan::LaunchDef& launch, const int64_t* dims);

}  // namespace mm::rt
