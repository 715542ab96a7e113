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

class RankGroup;

class HostExecutor final : public Executor {
 public:
  // Allocates the arena and reserves room for `kv_blocks` physical KV blocks per layer; the
  // blocks are committed as ensure_kv_blocks asks for them (blocks are handed out lowest first).
  static Expected<std::unique_ptr<HostExecutor>> create(std::shared_ptr<const Plan> plan,
                                                        HostWeights weights, int64_t kv_blocks);
  // Rank `rank` of a tensor-parallel plan (host_ranks.h): its programs, its KV heads, the shared
  // weights; its ALL_REDUCE launches meet the other ranks' in `group`.
  static Expected<std::unique_ptr<HostExecutor>> create_rank(std::shared_ptr<const Plan> plan,
                                                             std::shared_ptr<HostWeights> weights,
                                                             int64_t kv_blocks, int rank,
                                                             RankGroup* group);
  int64_t kv_blocks() const override { return kv_blocks_; }
  Status ensure_kv_blocks(int64_t blocks) override;
  // KV blocks per layer committed so far; bytes of host memory they span (all layers and pools).
  int64_t kv_blocks_committed() const { return committed_blocks_; }
  uint64_t kv_bytes_committed() const;
  Status run(const std::string& program, const CallDims& dims, const CallIo& io) override;
  const char* name() const override { return "host"; }

 private:
  HostExecutor() = default;
  std::shared_ptr<const Plan> plan_;
  std::shared_ptr<HostWeights> weights_;
  int rank_ = 0;
  RankGroup* group_ = nullptr;
  HostBuffer arena_;
  std::vector<GrowableBuffer> kv_;  // per layer: k, v, k_scale, v_scale
  uint64_t block_bytes_[4] = {0, 0, 0, 0};  // bytes of one block in each of the four pools
  int64_t kv_blocks_ = 0;
  int64_t committed_blocks_ = 0;
  OperandTable table_;  // inputs rebound on every call
};

}  // namespace mm::rt
