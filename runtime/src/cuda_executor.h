// The cuda backend: the plan's kernels (cubin for the device arch, else PTX) launched with the
// plan's grid formulas over a device arena, device weights and a paged KV cache in device memory.
// Weights are read and transformed one at a time on the host and copied through a pinned staging
// buffer, so host memory stays near the largest single weight, not the checkpoint size.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "runtime/cuda/device.h"
#include "runtime/src/executor.h"
#include "runtime/src/plan_reader.h"

namespace mm::rt {

struct CudaLoadStats {
  uint64_t weight_bytes = 0;
  double load_seconds = 0;
};

class CudaExecutor final : public Executor {
 public:
  // weights: a model directory or "random" (seed). Errors: no device or driver (Internal),
  // missing arch (BadInput), not enough device memory (Internal, with the sizes).
  static Expected<std::unique_ptr<CudaExecutor>> create(std::shared_ptr<const Plan> plan,
                                                        const std::string& weights, uint64_t seed,
                                                        int64_t kv_blocks, bool progress);
  ~CudaExecutor() override;
  int64_t kv_blocks() const override { return kv_blocks_; }
  Status run(const std::string& program, const CallDims& dims, const CallIo& io) override;
  const char* name() const override { return "cuda"; }
  const DeviceInfo& device_info() const { return device_->info(); }
  const CudaLoadStats& load_stats() const { return stats_; }

 private:
  CudaExecutor() = default;
  Status load_weights(const std::string& weights, uint64_t seed, bool progress);

  std::shared_ptr<const Plan> plan_;
  std::unique_ptr<Device> device_;
  std::vector<Kernel> kernels_;
  std::vector<void*> weights_;   // per plan weight (null for CHECK_ZEROS)
  std::vector<void*> kv_;        // per layer: k, v, k_scale, v_scale
  void* arena_ = nullptr;
  void* inputs_[11] = {};        // device copies of the InputSlot inputs/outputs
  size_t input_bytes_[11] = {};
  std::vector<void*> owned_;     // every device allocation, freed in the destructor
  int64_t kv_blocks_ = 0;
  CudaLoadStats stats_;
};

}  // namespace mm::rt
