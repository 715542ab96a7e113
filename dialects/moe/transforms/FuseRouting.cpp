//===- FuseRouting.cpp - moe-fuse-routing ---------------------------------===//
#include "dialects/moe/transforms/Passes.h"

using namespace mlir;

namespace mm::moe {
#define GEN_PASS_DEF_MOEFUSEROUTING
#include "dialects/moe/transforms/Passes.h.inc"
} // namespace mm::moe

using namespace mm::moe;

namespace {

// linear -> sigmoid -> add_bias -> topk -> gather(sigmoid, ids) -> renormalize  ->  route_topk
struct FuseRouterChain : OpRewritePattern<RenormalizeOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(RenormalizeOp norm, PatternRewriter &rewriter) const override {
    auto gather = norm.getInput().getDefiningOp<GatherOp>();
    if (!gather || !gather->hasOneUse())
      return rewriter.notifyMatchFailure(norm, "input is not a single-use moe.gather");
    auto topk = gather.getIndices().getDefiningOp<TopKOp>();
    if (!topk)
      return rewriter.notifyMatchFailure(norm, "gather indices do not come from moe.topk");
    auto bias = topk.getInput().getDefiningOp<AddBiasOp>();
    if (!bias || !bias->hasOneUse())
      return rewriter.notifyMatchFailure(norm, "top-k does not read a single-use moe.add_bias");
    auto sigmoid = bias.getInput().getDefiningOp<SigmoidOp>();
    // The weights must be the unbiased scores (spec 3.4): gather reads the sigmoid itself.
    if (!sigmoid || gather.getInput() != sigmoid.getResult())
      return rewriter.notifyMatchFailure(norm, "gather does not read the unbiased sigmoid");
    for (Operation *user : sigmoid->getUsers())
      if (user != bias.getOperation() && user != gather.getOperation())
        return rewriter.notifyMatchFailure(norm, "sigmoid scores are used outside the router");
    auto linear = sigmoid.getInput().getDefiningOp<LinearOp>();
    if (!linear || !linear->hasOneUse())
      return rewriter.notifyMatchFailure(norm, "scores do not come from a single-use moe.linear");

    // At the top-k: every use of the ids follows it, and the router input dominates it.
    rewriter.setInsertionPoint(topk);
    auto fused = RouteTopKOp::create(rewriter, norm.getLoc(), norm.getType(), topk.getType(),
                                     linear.getInput(), linear.getWeightAttr(),
                                     bias.getBiasAttr(), topk.getKAttr());
    rewriter.replaceOp(norm, fused.getWeights());
    rewriter.eraseOp(gather);
    rewriter.replaceOp(topk, fused.getIds());
    rewriter.eraseOp(bias);
    rewriter.eraseOp(sigmoid);
    rewriter.eraseOp(linear);
    return success();
  }
};

struct FuseRoutingPass : mm::moe::impl::MoEFuseRoutingBase<FuseRoutingPass> {
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    patterns.add<FuseRouterChain>(&getContext());
    if (failed(applyFusionPatterns(getOperation(), std::move(patterns))))
      signalPassFailure();
  }
};

} // namespace
