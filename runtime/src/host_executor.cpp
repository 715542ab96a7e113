#include "runtime/src/host_executor.h"

namespace mm::rt {

Expected<std::unique_ptr<HostExecutor>> HostExecutor::create(std::shared_ptr<const Plan> plan,
                                                             HostWeights weights,
                                                             int64_t kv_blocks) {
  std::unique_ptr<HostExecutor> ex(new HostExecutor());
  const auto& def = plan->def();
  if (!ex->arena_.allocate(plan->max_arena_bytes()))
    return Error::internal("out of host memory allocating the " +
                           std::to_string(plan->max_arena_bytes()) + "-byte activation arena");
  const auto& m = *def.model();
  const auto& l = *def.limits();
  const bool fp8 = l.kv_dtype() == plan::DType::FP8_E4M3;
  const uint64_t rows_per_block = static_cast<uint64_t>(l.kv_block_size()) * m.num_kv_heads();
  ex->block_bytes_[0] = ex->block_bytes_[1] = rows_per_block * m.head_dim() * (fp8 ? 1 : 2);
  ex->block_bytes_[2] = ex->block_bytes_[3] = fp8 ? rows_per_block * 4 : 0;
  ex->kv_.resize(static_cast<size_t>(m.num_layers()) * 4);
  for (int64_t layer = 0; layer < m.num_layers(); ++layer)
    for (int which = 0; which < 4; ++which) {
      const uint64_t bytes = ex->block_bytes_[which] * static_cast<uint64_t>(kv_blocks);
      if (!ex->kv_[layer * 4 + which].reserve(bytes))
        return Error::internal("cannot reserve address space for the KV cache (" + std::to_string(bytes) +
                               " bytes per pool, " + std::to_string(m.num_layers()) +
                               " layers); lower --max-seq-len");
    }
  ex->plan_ = std::move(plan);
  ex->weights_ = std::move(weights);
  ex->kv_blocks_ = kv_blocks;
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
  const plan::ProgramDef& prog = plan_->program(program);
  mm_kernel_args args{};
  args.dim[MM_DIM_T] = dims.T;
  args.dim[MM_DIM_R] = dims.R;
  args.dim[MM_DIM_S] = dims.S;
  args.dim[MM_DIM_CTX] = dims.CTX;
  args.dim[MM_DIM_STEP] = dims.STEP;
  const void* inputs[] = {io.tokens, io.positions,  io.seq_slots, io.block_tables,
                          io.logit_rows, io.temperature, io.top_k, io.top_p,
                          io.seed,   io.logits,     io.sampled};
  if (!prog.launches()) return Status::success();
  for (const plan::LaunchDef* l : *prog.launches()) {
    for (int i = 0; i < MM_MAX_PTRS; ++i) args.ptr[i] = nullptr;
    const auto& ops = *l->operands();
    for (size_t i = 0; i < ops.size(); ++i) {
      const plan::OperandDef& o = *ops[i];
      void* p = nullptr;
      switch (o.kind()) {
        case plan::OperandKind::ARENA: p = arena_.data() + o.offset(); break;
        case plan::OperandKind::WEIGHT: p = weights_.ptr(o.index()); break;
        case plan::OperandKind::INPUT: p = const_cast<void*>(inputs[static_cast<int>(o.slot())]); break;
        case plan::OperandKind::KV:
          p = kv_[o.index() * 4 + (static_cast<int>(o.slot()) - static_cast<int>(plan::InputSlot::KV_K))].data();
          break;
        case plan::OperandKind::NONE: break;
      }
      args.ptr[i] = p;
    }
    const plan::KernelDef& k = *def.kernels()->Get(l->kernel());
    run_reference(k.kind(), plan_->kernel_params(l->kernel()), args);
  }
  return Status::success();
}

}  // namespace mm::rt
