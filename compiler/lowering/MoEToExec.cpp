//===- MoEToExec.cpp - fused moe IR -> exec IR (driver) ---------------------===//
//
// Walks each program (func.func @prefill, @decode) in order and hands every op to its family's
// lowering. qk_norm, rope and take_last produce no launch of their own: their consumers
// (kv_append, rms_norm) fold them into one kernel.
//
//===----------------------------------------------------------------------===//
#include "compiler/lowering/MoEToExec.h"

#include "llvm/ADT/TypeSwitch.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"

#include "compiler/lowering/Lowering.h"
#include "dialects/exec/ir/ExecDialect.h"

using namespace mlir;
using namespace mm;
using namespace mm::compiler::lowering;

namespace mm::compiler {

static LogicalResult lowerOp(Lowering &l, Operation *op) {
  if (l.handled.contains(op))
    return success();
  return llvm::TypeSwitch<Operation *, LogicalResult>(op)
      .Case([&](moe::EmbedOp o) { return lowerEmbed(l, o); })
      .Case([&](moe::RmsNormOp o) { return lowerRmsNorm(l, o); })
      .Case([&](moe::AddRmsNormOp o) { return lowerAddRmsNorm(l, o); })
      .Case([&](moe::AddOp o) { return lowerFinalAdd(l, o); })
      .Case([&](moe::LMHeadOp o) { return lowerLMHead(l, o); })
      .Case([&](moe::DequantGemmOp o) { return lowerDequantGemm(l, o); })
      .Case([&](moe::LinearOp o) { return lowerLinear(l, o); })
      .Case([&](moe::KVAppendOp o) { return lowerKVAppend(l, o); })
      .Case([&](moe::AttentionOp o) { return lowerAttention(l, o); })
      .Case([&](moe::RouteTopKOp o) { return lowerRouteTopK(l, o); })
      .Case([&](moe::ExpertFfnOp o) { return lowerExpertFfn(l, o); })
      // Folded into their consumers (see the file comment).
      .Case<moe::QKNormOp, moe::RopeOp, moe::TakeLastOp, func::ReturnOp>(
          [](Operation *) { return success(); })
      .Default([](Operation *o) {
        return o->emitOpError() << "has no exec lowering; run the mm-moe-fuse pipeline first";
      });
}

FailureOr<OwningOpRef<ModuleOp>> lowerMoEToExec(ModuleOp moe, const LoweringOptions &opts) {
  MLIRContext *ctx = moe.getContext();
  ctx->loadDialect<exec::ExecDialect>();
  OwningOpRef<ModuleOp> dst = ModuleOp::create(moe.getLoc());
  Lowering l(moe, *dst, opts);
  bool any = false;
  // A tensor- or expert-parallel module lowers every program once per rank (docs/parallel.md);
  // replicated weights and identical kernel specializations are declared once for all ranks.
  for (int64_t rank = 0; rank < opts.ranks(); ++rank) {
  l.beginRank(rank);
  for (auto fn : moe.getOps<func::FuncOp>()) {
    StringRef name = fn.getSymName();
    if (name != "prefill" && name != "decode")
      return fn.emitOpError() << "is not a program; expected @prefill or @decode";
    if (fn.getNumArguments() < 2 || fn.getArgument(0).getType() != fn.getArgument(1).getType())
      return fn.emitOpError() << "expects (tokens, positions, kv_cache) arguments";
    bool decode = name == "decode";
    l.beginProgram(name, decode ? opts.maxBatch : opts.maxPrefillTokens, decode);
    for (Operation &op : fn.getBody().front())
      if (failed(lowerOp(l, &op)))
        return failure();
    any = true;
  }
  }
  if (!any)
    return emitError(moe.getLoc()) << "the module has no @prefill or @decode program";
  return dst;
}

} // namespace mm::compiler
