//===- FuseAddNorm.cpp - moe-fuse-add-norm --------------------------------===//
#include "dialects/moe/transforms/Passes.h"

using namespace mlir;

namespace mm::moe {
#define GEN_PASS_DEF_MOEFUSEADDNORM
#include "dialects/moe/transforms/Passes.h.inc"
} // namespace mm::moe

using namespace mm::moe;

namespace {

// %s = add(a, b); %n = rms_norm(%s, @w)  ->  %s, %n = add_rms_norm(a, b, @w)
// The sum keeps all its other users (it is the residual stream).
struct FuseAddIntoNorm : OpRewritePattern<RmsNormOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(RmsNormOp norm, PatternRewriter &rewriter) const override {
    auto add = norm.getInput().getDefiningOp<AddOp>();
    if (!add)
      return rewriter.notifyMatchFailure(norm, "input is not a moe.add");
    // At the add: its operands dominate it and every user of the sum or the norm follows it.
    rewriter.setInsertionPoint(add);
    auto fused = AddRmsNormOp::create(rewriter, norm.getLoc(), add.getType(), add.getType(),
                                      add.getLhs(), add.getRhs(), norm.getWeightAttr(),
                                      norm.getEpsAttr());
    rewriter.replaceOp(norm, fused.getNormed());
    rewriter.replaceOp(add, fused.getSum());
    return success();
  }
};

struct FuseAddNormPass : mm::moe::impl::MoEFuseAddNormBase<FuseAddNormPass> {
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    patterns.add<FuseAddIntoNorm>(&getContext());
    if (failed(applyFusionPatterns(getOperation(), std::move(patterns))))
      signalPassFailure();
  }
};

} // namespace
