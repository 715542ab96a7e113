// Measurements for `mmrun bench`, apart from inference: what a token costs in a plan (bytes of
// weights by kind, KV bytes, FLOPs) and the device's rates that make the rooflines (copy
// bandwidth, bf16 GEMM through cuBLAS when it can be loaded).
#pragma once

#include <cstdint>
#include <string>

#include "runtime/src/plan_reader.h"
#include "support/status.h"

namespace mm::rt {

struct PlanCosts {
  uint64_t expert_weight_bytes = 0;   // expert weights (category "experts" or STACK_EXPERTS*), all layers
  uint64_t embedding_bytes = 0;       // the embedding table (a token reads one row)
  uint64_t embedding_row_bytes = 0;
  uint64_t other_weight_bytes = 0;    // every other weight a step reads whole
  int64_t num_experts = 0, top_k = 0;
  uint64_t kv_bytes_per_token = 0;    // K and V (+ fp8 scales) of one position, all layers
  double linear_flops_per_token = 0;  // 2 x multiply-adds of the linears (top_k experts) and lm_head
  double attention_flops_per_position = 0;  // per token and attended position: 4 x heads x head_dim x layers
};
PlanCosts plan_costs(const Plan& plan);

struct DeviceRates {
  std::string device;             // "NVIDIA H200 (sm_90)", "host (2 threads)"
  double copy_bytes_per_second = 0;  // read + write bytes
  uint64_t copy_bytes = 0;        // buffer size
  double gemm_flops_per_second = 0;  // 0: not measured
  std::string gemm;               // what was measured, or why not
};
// device: "cuda", "host" or empty (cuda if a device is present). Opens its own CUDA context.
Expected<DeviceRates> measure_device(const std::string& device, int threads);

}  // namespace mm::rt
