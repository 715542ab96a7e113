//===- Phases.h - the compile phases as MLIR-level functions -----*- C++ -*-===//
//
// Compile.h is the MLIR-free entry point (tools/mmc includes it with exceptions on); these are
// the phases behind it, for later phases (exec lowering, plan) and for tests.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "compiler/pipeline/Compile.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/OwningOpRef.h"
#include "mlir/Support/LLVM.h"
#include "models/common/checkpoint.h"

namespace llvm {
class raw_ostream;
}

namespace mm::compiler {

// --emit=moe: the graph-level module of a checkpoint, verified. Diagnostics go to the context.
mlir::FailureOr<mlir::OwningOpRef<mlir::ModuleOp>>
buildMoE(mlir::MLIRContext &context, const mm::ModelDesc &desc, const CompileOptions &opts);

// --emit=moe-fused: runs the mm-moe-fuse pipeline on the module in place.
mlir::LogicalResult fuseMoE(mlir::ModuleOp module);

// --stats: one line per program, "<phase> @<func>: <total> ops (<name> <count>, ...)", plus a
// "weights" line with the number of moe.weight symbols.
void printStats(mlir::ModuleOp module, llvm::StringRef phase, llvm::raw_ostream &os);

} // namespace mm::compiler
