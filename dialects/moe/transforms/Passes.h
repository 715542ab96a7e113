//===- Passes.h - the moe fusion passes and the mm-moe-fuse pipeline -*- C++ -*-===//
#pragma once

#include "mlir/Pass/Pass.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/IR/PatternMatch.h"

#include "dialects/moe/ir/MoEOps.h"

namespace mm::moe {

#define GEN_PASS_DECL
#include "dialects/moe/transforms/Passes.h.inc"

// Runs fusion patterns over `root` top-down without region simplification (the programs are
// single-block funcs; simplification would only cost time on the 62-layer graphs).
mlir::LogicalResult applyFusionPatterns(mlir::Operation *root, mlir::RewritePatternSet &&patterns);

// Adds the fusion passes in their order: routing, dequant-gemm, expert-ffn, add-norm, merge-qkv.
void buildFusePipeline(mlir::OpPassManager &pm);

// Registers every pass of Passes.td (generated) and the `mm-moe-fuse` pipeline.
void registerMoEPassesAndPipelines();

#define GEN_PASS_REGISTRATION
#include "dialects/moe/transforms/Passes.h.inc"

} // namespace mm::moe
