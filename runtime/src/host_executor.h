// The host backend: runs every launch of a program by calling the C++ reference of its kernel
// kind (codegen/reference), over a host arena, host weights and a paged KV cache in host memory
// with the layout of docs/kernels.md section 4.
#pragma once

#include <memory>
#include <vector>

#include "runtime/src/binding.h"
#include "runtime/src/executor.h"
#include "runtime/src/host_buffer.h"
#include "runtime/src/plan_reader.h"
#include "runtime/src/weights.h"

namespace mm::rt {

class HostExecutor final : public Executor {
 public:
  // Allocates the arena and `kv_blocks` physical KV blocks per layer.
  static Expected<std::unique_ptr<HostExecutor>> create(std::shared_ptr<const Plan> plan,
                                                        HostWeights weights, int64_t kv_blocks);
  int64_t kv_blocks() const override { return kv_blocks_; }
  Status run(const std::string& program, const CallDims& dims, const CallIo& io) override;
  const char* name() const override { return "host"; }

 private:
  HostExecutor() = default;
  std::shared_ptr<const Plan> plan_;
  HostWeights weights_;
  HostBuffer arena_;
  std::vector<HostBuffer> kv_;  // per layer: k, v, k_scale, v_scale
  int64_t kv_blocks_ = 0;
  OperandTable table_;  // inputs rebound on every call
};

}  // namespace mm::rt
