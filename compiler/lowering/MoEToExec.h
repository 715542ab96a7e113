//===- MoEToExec.h - fused moe IR -> exec IR --------------------*- C++ -*-===//
//
// Lowers the fused moe module (after mm-moe-fuse) to the launch-level exec dialect: weights
// become device weights with load-time transforms, each program becomes an ordered list of
// kernel launches over arena buffers (docs/kernels.md gives every kind's operands), identical
// kernel specializations are declared once. Run exec-plan-memory afterwards.
//
//===----------------------------------------------------------------------===//
#pragma once

#include <cstdint>
#include <string>

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/OwningOpRef.h"
#include "mlir/Support/LLVM.h"

namespace mm::compiler {

struct LoweringOptions {
  int64_t maxBatch = 16;          // decode: most sequences per call (dim T of decode)
  int64_t maxPrefillTokens = 4096; // prefill: chunk length (dim T of prefill)
  int64_t maxSeqLen = 4096;       // KV capacity per sequence
  int64_t kvBlockSize = 16;       // tokens per KV page
  int64_t prefillTileRows = 0;    // rows per tile of the prefill W4 GEMMs (64, 128; 0: the
                                  // specializer's choice)
  bool qweightStrips = true;      // qweights in strips of 32 columns where shapes allow (kinds.def
                                  // QL: the decode GEMVs stream contiguous runs); false: GPTQ rows
  int64_t tp = 1;                 // tensor-parallel ranks (docs/parallel.md); 1: unsharded
  int64_t ep = 1;                 // expert-parallel ranks: the experts split by id over the same
                                  // ranks (1 or tp when tp > 1; docs/parallel.md)
  // Ranks of the plan: each has its own programs.
  int64_t ranks() const { return tp > ep ? tp : ep; }
};

// Returns a new module holding the exec IR; diagnostics point at the moe op that failed.
mlir::FailureOr<mlir::OwningOpRef<mlir::ModuleOp>> lowerMoEToExec(mlir::ModuleOp moe,
                                                                   const LoweringOptions &opts);

} // namespace mm::compiler
