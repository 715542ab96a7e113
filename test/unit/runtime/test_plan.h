// Test-only plan construction through the flatbuffers builders of plan.fbs, until mmc writes
// plans: a small MiniMax-M2-shaped model laid out launch by launch as docs/kernels.md section 6
// describes (decode: fused router, per-token experts; prefill: router GEMM, MOE_ALIGN, grouped
// experts, MOE_COMBINE), with a simple arena (one region per buffer).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "runtime/schemas/plan_generated.h"
#include "runtime/schemas/plan_version.h"

namespace mm::rt::test {

struct TinyModel {
  int64_t H = 128, I = 64, L = 2, NQ = 4, NKV = 2, D = 32, DR = 16, E = 4, TOPK = 2, V = 96;
  int64_t G = 32;
  double theta = 10000.0, eps = 1e-6;
  int64_t max_seq_len = 64, max_batch = 4, max_prefill_tokens = 8, block = 4;
  bool fp8_kv = false;
  int64_t ql = 0;   // 1: every qweight in strips of 32 columns (QuantLayout STRIPS32), its kernels QL = 1
  uint32_t schema_version = plan::kPlanSchemaVersion;
  // PlanDef.tp / ep as stored (the programs stay the unsharded ones: for the reader's refusals).
  int tp = 1, ep = 1;
  std::vector<std::string> targets = {"sm_90"};
  // Where each weight's tensor lies in model.safetensors (by name); empty: made-up offsets. Tests
  // that read a real shard written for this plan fill it from the shard's layout.
  std::map<std::string, uint64_t> source_offsets;
  // One deliberate corruption for reader tests: "operand_count", "arena", "weight_index",
  // "param", "kv_layer", "no_decode", "kernel_index", "non_utf8_producer".
  std::string corrupt;
};

// The complete plan, serialized (identifier MMP1). Weights reference tensors named as in the
// MiniMax-M2 checkpoint in "model.safetensors", at made-up offsets (use --weights random) unless
// TinyModel::source_offsets says where they are.
std::vector<uint8_t> build_tiny_plan(const TinyModel& m);

// One weight of a weights-only plan (empty prefill/decode programs).
struct WeightSpec {
  std::string name;
  plan::DType dtype;
  std::vector<int64_t> shape;
  plan::WeightTransform transform;
  struct Source {
    std::string name, file;
    uint64_t offset, nbytes;
    plan::DType dtype;
    std::vector<int64_t> shape;
  };
  std::vector<Source> sources;
  int concat_axis = -1;  // CONCAT_N: 0 or the last dim
  plan::WeightRole role = plan::WeightRole::OTHER;
  int64_t fan_in = 1;
  plan::QuantLayout qlayout = plan::QuantLayout::ROWS;
};
std::vector<uint8_t> build_weights_plan(const std::vector<WeightSpec>& weights);

// Records in the serialized `plan` the model_hash the runtime computes over DIR (once the test has
// written the shards the plan reads there), as mmc would have, and reseals the checksum. Leaves the
// plan as it is when DIR does not match it (the load then says why).
void stamp_model_hash(std::vector<uint8_t>* plan, const std::string& dir);

}  // namespace mm::rt::test
