#include "runtime/src/host_executor.h"

#include "runtime/src/host_ranks.h"

namespace mm::rt {

Expected<std::unique_ptr<HostExecutor>> HostExecutor::create(std::shared_ptr<const Plan> plan,
                                                             HostWeights weights,
                                                             int64_t kv_blocks) {
  if (plan->ranks() > 1)
    return Error::internal("HostExecutor::create: the plan has " + std::to_string(plan->ranks()) +
                           " ranks; use HostRanks");
  return create_rank(std::move(plan), std::make_shared<HostWeights>(std::move(weights)), kv_blocks, 0,
                     nullptr);
}

Expected<std::unique_ptr<HostExecutor>> HostExecutor::create_rank(std::shared_ptr<const Plan> plan,
                                                                  std::shared_ptr<HostWeights> weights,
                                                                  int64_t kv_blocks, int rank,
                                                                  RankGroup* group) {
  std::unique_ptr<HostExecutor> ex(new HostExecutor());
  ex->rank_ = rank;
  ex->group_ = group;
  const auto& def = plan->def();
  if (!ex->arena_.allocate(plan->max_arena_bytes()))
    return Error::internal("out of host memory allocating the " +
                           std::to_string(plan->max_arena_bytes()) + "-byte activation arena");
  const KvLayout kv = kv_layout(def);
  ex->block_bytes_[0] = ex->block_bytes_[1] = kv.pool_bytes_per_block;
  ex->block_bytes_[2] = ex->block_bytes_[3] = kv.scale_bytes_per_block;
  ex->kv_.resize(static_cast<size_t>(kv.layers) * 4);
  ex->table_.kv.assign(static_cast<size_t>(kv.layers) * 4, nullptr);
  for (int64_t layer = 0; layer < kv.layers; ++layer)
    for (int which = 0; which < 4; ++which) {
      const uint64_t bytes = ex->block_bytes_[which] * static_cast<uint64_t>(kv_blocks);
      if (!ex->kv_[layer * 4 + which].reserve(bytes))
        return Error::internal("cannot reserve address space for the KV cache (" + std::to_string(bytes) +
                               " bytes per pool, " + std::to_string(kv.layers) +
                               " layers); lower --max-seq-len");
      // The reservation's base never moves as blocks are committed.
      if (bytes) ex->table_.kv[layer * 4 + which] = ex->kv_[layer * 4 + which].data();
    }
  ex->plan_ = std::move(plan);
  ex->weights_ = std::move(weights);
  ex->kv_blocks_ = kv_blocks;
  ex->table_.arena = ex->arena_.data();
  const size_t nw = ex->plan_->def().weights() ? ex->plan_->def().weights()->size() : 0;
  ex->table_.weights.resize(nw);
  for (size_t i = 0; i < nw; ++i) ex->table_.weights[i] = ex->weights_->ptr(i);
  return ex;
}

Status HostExecutor::ensure_kv_blocks(int64_t blocks) {
  if (blocks <= committed_blocks_) return Status::success();
  if (blocks > kv_blocks_)
    return Error::internal("KV block " + std::to_string(blocks - 1) + " is beyond the " +
                           std::to_string(kv_blocks_) + " blocks of the host KV cache");
  for (size_t i = 0; i < kv_.size(); ++i) {
    const uint64_t bytes = block_bytes_[i % 4] * static_cast<uint64_t>(blocks);
    if (!kv_[i].commit(bytes))
      return Error::internal("out of host memory growing the KV cache to " + std::to_string(blocks) +
                             " blocks (" + std::to_string(bytes) + " bytes per pool, " +
                             std::to_string(kv_.size() / 4) + " layers)");
  }
  committed_blocks_ = blocks;
  return Status::success();
}

uint64_t HostExecutor::kv_bytes_committed() const {
  uint64_t total = 0;
  for (const GrowableBuffer& b : kv_) total += b.committed();
  return total;
}

Status HostExecutor::run(const std::string& program, const CallDims& dims, const CallIo& io) {
  const auto& def = plan_->def();
  const plan::ProgramDef& prog = plan_->program(program, rank_);
  mm_kernel_args args{};
  args.dim[MM_DIM_T] = dims.T;
  args.dim[MM_DIM_R] = dims.R;
  args.dim[MM_DIM_S] = dims.S;
  args.dim[MM_DIM_CTX] = dims.CTX;
  args.dim[MM_DIM_STEP] = dims.STEP;
  // The reference reads the host arrays in place.
  const void* inputs[kInputSlots] = {io.tokens, io.positions,  io.seq_slots, io.block_tables,
                                     io.logit_rows, io.temperature, io.top_k, io.top_p,
                                     io.seed,   io.logits,     io.sampled};
  for (int s = 0; s < kInputSlots; ++s) table_.inputs[s] = const_cast<void*>(inputs[s]);
  if (!prog.launches()) return Status::success();
  for (const plan::LaunchDef* l : *prog.launches()) {
    bind_launch(*l, table_, &args);
    const plan::KernelDef& k = *def.kernels()->Get(l->kernel());
    // A collective meets the other ranks (the plan reader refuses ALL_REDUCE in a plan of 1 rank).
    if (k.kind() == plan::KernelKind::ALL_REDUCE) {
      group_->all_reduce(rank_, plan_->kernel_params(l->kernel()), args);
      continue;
    }
    run_reference(k.kind(), plan_->kernel_params(l->kernel()), args);
  }
  return Status::success();
}

}  // namespace mm::rt
