//===- FuseDequantGemm.cpp - moe-fuse-dequant-gemm ------------------------===//
#include "dialects/moe/transforms/Passes.h"

using namespace mlir;

namespace mm::moe {
#define GEN_PASS_DEF_MOEFUSEDEQUANTGEMM
#include "dialects/moe/transforms/Passes.h.inc"
} // namespace mm::moe

using namespace mm::moe;

namespace {

// matmul(x, dequant(@w))  ->  dequant_gemm(x, [@w]); the dequant goes once it has no user.
struct FuseMatmulOfDequant : OpRewritePattern<MatmulOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(MatmulOp matmul, PatternRewriter &rewriter) const override {
    auto dequant = matmul.getMatrix().getDefiningOp<DequantOp>();
    if (!dequant)
      return rewriter.notifyMatchFailure(matmul, "matrix is not a moe.dequant");
    auto weights = rewriter.getArrayAttr({dequant.getWeightAttr()});
    rewriter.replaceOpWithNewOp<DequantGemmOp>(matmul, TypeRange{matmul.getType()},
                                               matmul.getInput(), weights);
    if (dequant->use_empty())
      rewriter.eraseOp(dequant);
    return success();
  }
};

// w4_linear(x, @w)  ->  dequant_gemm(x, [@w])
struct FuseW4Linear : OpRewritePattern<W4LinearOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(W4LinearOp linear, PatternRewriter &rewriter) const override {
    auto weights = rewriter.getArrayAttr({linear.getWeightAttr()});
    rewriter.replaceOpWithNewOp<DequantGemmOp>(linear, TypeRange{linear.getType()},
                                               linear.getInput(), weights);
    return success();
  }
};

struct FuseDequantGemmPass : mm::moe::impl::MoEFuseDequantGemmBase<FuseDequantGemmPass> {
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    patterns.add<FuseMatmulOfDequant, FuseW4Linear>(&getContext());
    if (failed(applyFusionPatterns(getOperation(), std::move(patterns))))
      signalPassFailure();
  }
};

} // namespace
