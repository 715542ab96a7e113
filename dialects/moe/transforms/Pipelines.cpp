//===- Pipelines.cpp - the mm-moe-fuse pipeline and shared pass helpers ---===//
#include "dialects/moe/transforms/Passes.h"

#include "mlir/Pass/PassRegistry.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

using namespace mlir;

namespace mm::moe {

LogicalResult applyFusionPatterns(Operation *root, RewritePatternSet &&patterns) {
  GreedyRewriteConfig config;
  config.setUseTopDownTraversal(true).setRegionSimplificationLevel(
      GreedySimplifyRegionLevel::Disabled);
  return applyPatternsGreedily(root, std::move(patterns), config);
}

void buildFusePipeline(OpPassManager &pm) {
  // Routing first: expert-ffn fusion keys on the ids/weights that route_topk produces only
  // through its operands, so either order works, but fused routing makes the IR smaller for
  // the later walks. dequant-gemm must precede merge-qkv, which merges dequant_gemm ops.
  pm.addPass(createMoEFuseRouting());
  pm.addPass(createMoEFuseDequantGemm());
  pm.addPass(createMoEFuseExpertFfn());
  pm.addPass(createMoEFuseAddNorm());
  pm.addPass(createMoEMergeQkv());
}

void registerMoEPassesAndPipelines() {
  registerMoEPasses();
  PassPipelineRegistration<>("mm-moe-fuse",
                             "Runs the moe fusion passes: routing, dequant-gemm, expert-ffn, "
                             "add-norm, merge-qkv",
                             buildFusePipeline);
}

} // namespace mm::moe
