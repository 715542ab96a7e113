#include "runtime/src/binding.h"

namespace mm::rt {

KvLayout kv_layout(const plan::PlanDef& def) {
  const auto& m = *def.model();
  const auto& lim = *def.limits();
  KvLayout k;
  k.layers = m.num_layers();
  k.block_tokens = lim.kv_block_size();
  k.fp8 = lim.kv_dtype() == plan::DType::FP8_E4M3;
  // A tensor-parallel rank caches its own kv heads only (docs/parallel.md).
  const int64_t tp = def.tp() > 1 ? def.tp() : 1;
  const uint64_t rows = static_cast<uint64_t>(lim.kv_block_size()) * static_cast<uint64_t>(m.num_kv_heads() / tp);
  k.pool_bytes_per_block = rows * static_cast<uint64_t>(m.head_dim()) * (k.fp8 ? 1 : 2);
  k.scale_bytes_per_block = k.fp8 ? rows * 4 : 0;
  return k;
}

void bind_launch(const plan::LaunchDef& launch, const OperandTable& t, mm_kernel_args* args) {
  for (int i = 0; i < MM_MAX_PTRS; ++i) args->ptr[i] = nullptr;
  if (!launch.operands()) return;
  const auto& ops = *launch.operands();
  for (size_t i = 0; i < ops.size() && i < MM_MAX_PTRS; ++i) {
    const plan::OperandDef& o = *ops[i];
    void* p = nullptr;
    switch (o.kind()) {
      case plan::OperandKind::ARENA: p = static_cast<uint8_t*>(t.arena) + o.offset(); break;
      case plan::OperandKind::WEIGHT: p = t.weights[o.index()]; break;
      case plan::OperandKind::INPUT: p = t.inputs[static_cast<int>(o.slot())]; break;
      case plan::OperandKind::KV:
        p = t.kv[o.index() * 4 + (static_cast<int>(o.slot()) - static_cast<int>(plan::InputSlot::KV_K))];
        break;
      case plan::OperandKind::NONE: break;
    }
    args->ptr[i] = p;
  }
}

std::array<int64_t, 3> launch_grid(const plan::LaunchDef& launch, const int64_t* dims) {
  std::array<int64_t, 3> g{1, 1, 1};
  if (!launch.grid()) return g;
  for (size_t i = 0; i < 3 && i < launch.grid()->size(); ++i) {
    const plan::DimExprDef& d = *launch.grid()->Get(i);
    g[i] = kernels::DimExpr{d.dim(), d.mul(), d.add(), d.div()}.eval(dims);
  }
  return g;
}

}  // namespace mm::rt
