// The plan's model_hash: what ties a plan to the checkpoint it was compiled from. FNV-1a 64 over
// the model's hyper-parameters (the ten of the plan's model table that shape tensors) and the
// checkpoint's tensor table (every tensor of every shard, by name: name, dtype, shape, byte size).
// The compiler records it; the runtime recomputes it from the plan's model table and the headers of
// the weights directory it loads (runtime/src/weights.cpp), so a plan run against another
// checkpoint, or whose model table was edited, is refused. It covers headers only: tensor data
// changed behind an intact header is not detected (that would need the whole checkpoint read and
// hashed at compile time; docs/reliability.md).
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "support/safetensors.h"

namespace mm {

// hidden_size, intermediate_size, num_layers, num_heads, num_kv_heads, head_dim, rotary_dim,
// num_experts, top_k, vocab_size: in this order.
using ModelHashParams = std::array<int64_t, 10>;

// `tensors` in the checkpoint reader's order (by name).
uint64_t model_hash(const ModelHashParams& hp, const std::vector<TensorInfo>& tensors);

}  // namespace mm
