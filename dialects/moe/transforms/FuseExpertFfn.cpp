//===- FuseExpertFfn.cpp - moe-fuse-expert-ffn ----------------------------===//
#include "dialects/moe/transforms/Passes.h"

using namespace mlir;

namespace mm::moe {
#define GEN_PASS_DEF_MOEFUSEEXPERTFFN
#include "dialects/moe/transforms/Passes.h.inc"
} // namespace mm::moe

using namespace mm::moe;

namespace {

// combine(expert_linear(silu_mul(expert_linear(x, ids, w1), expert_linear(x, ids, w3)), ids, w2),
//         weights)  ->  expert_ffn(x, weights, ids) gate(w1) up(w3) down(w2)
struct FuseExpertChain : OpRewritePattern<CombineOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(CombineOp combine, PatternRewriter &rewriter) const override {
    auto down = combine.getInput().getDefiningOp<ExpertLinearOp>();
    if (!down || !down->hasOneUse())
      return rewriter.notifyMatchFailure(combine, "input is not a single-use moe.expert_linear");
    auto act = down.getInput().getDefiningOp<SiluMulOp>();
    if (!act || !act->hasOneUse())
      return rewriter.notifyMatchFailure(combine, "down projection does not read a silu_mul");
    auto gate = act.getGate().getDefiningOp<ExpertLinearOp>();
    auto up = act.getUp().getDefiningOp<ExpertLinearOp>();
    if (!gate || !up || !gate->hasOneUse() || !up->hasOneUse())
      return rewriter.notifyMatchFailure(combine, "silu_mul operands are not single-use "
                                                  "expert linears");
    if (gate.getInput() != up.getInput() || shaped(gate.getInput()).getRank() != 2)
      return rewriter.notifyMatchFailure(combine, "gate and up do not share one [T, H] input");
    if (gate.getIds() != up.getIds() || gate.getIds() != down.getIds())
      return rewriter.notifyMatchFailure(combine, "the three GEMMs use different expert ids");

    rewriter.replaceOpWithNewOp<ExpertFfnOp>(combine, combine.getType(), gate.getInput(),
                                             combine.getWeights(), gate.getIds(),
                                             gate.getWeightAttr(), up.getWeightAttr(),
                                             down.getWeightAttr());
    rewriter.eraseOp(down);
    rewriter.eraseOp(act);
    rewriter.eraseOp(gate);
    rewriter.eraseOp(up);
    return success();
  }

  static ShapedType shaped(Value v) { return cast<ShapedType>(v.getType()); }
};

struct FuseExpertFfnPass : mm::moe::impl::MoEFuseExpertFfnBase<FuseExpertFfnPass> {
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    patterns.add<FuseExpertChain>(&getContext());
    if (failed(applyFusionPatterns(getOperation(), std::move(patterns))))
      signalPassFailure();
  }
};

} // namespace
