//===- MergeQkv.cpp - moe-merge-qkv ---------------------------------------===//
#include "dialects/moe/transforms/Passes.h"

#include "llvm/ADT/MapVector.h"

using namespace mlir;

namespace mm::moe {
#define GEN_PASS_DEF_MOEMERGEQKV
#include "dialects/moe/transforms/Passes.h.inc"
} // namespace mm::moe

using namespace mm::moe;

namespace {

// dequant_gemm(x, [@q]); dequant_gemm(x, [@k]); dequant_gemm(x, [@v])
//   ->  dequant_gemm(x, [@q, @k, @v]) with three results, placed at the first of them.
struct MergeQkvPass : mm::moe::impl::MoEMergeQkvBase<MergeQkvPass> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    SymbolTable symbols(module);
    SmallVector<Block *> blocks;
    module.walk([&](Block *block) { blocks.push_back(block); });
    for (Block *block : blocks)
      mergeInBlock(*block, symbols);
  }

  // Groups single-weight GEMMs by input and by the quantization layout one kernel can share.
  void mergeInBlock(Block &block, SymbolTable &symbols) {
    llvm::MapVector<std::pair<Value, std::pair<int64_t, Type>>, SmallVector<DequantGemmOp>>
        groups;
    for (Operation &op : block) {
      auto gemm = dyn_cast<DequantGemmOp>(op);
      if (!gemm || gemm.getWeights().size() != 1)
        continue;
      auto sym = cast<FlatSymbolRefAttr>(gemm.getWeights()[0]);
      auto weight = symbols.lookup<WeightOp>(sym.getValue());
      auto type = weight ? dyn_cast<QWeightType>(weight.getWeightType()) : QWeightType();
      if (!type)
        continue;  // the verifier reports it; nothing to merge
      groups[{gemm.getInput(), {type.getGroupSize(), type.getScaleType()}}].push_back(gemm);
    }
    for (auto &entry : groups) {
      SmallVector<DequantGemmOp> &members = entry.second;
      if (members.size() < 2)
        continue;
      SmallVector<Attribute> weights;
      SmallVector<Type> types;
      for (DequantGemmOp m : members) {
        weights.push_back(m.getWeights()[0]);
        types.push_back(m.getResult(0).getType());
      }
      OpBuilder builder(members.front());
      auto merged = DequantGemmOp::create(builder, members.front().getLoc(), types,
                                          members.front().getInput(),
                                          builder.getArrayAttr(weights));
      for (auto [i, m] : llvm::enumerate(members)) {
        m.getResult(0).replaceAllUsesWith(merged.getResult(i));
        m.erase();
      }
    }
  }
};

} // namespace
