//===- Backend.h - the phases after moe-fused ---------------------*- C++ -*-===//
//
// exec:  lower the fused moe module to exec IR and plan the arena (exec-plan-memory)
// cuda:  specialize every exec.kernel into CUDA source (codegen/kernels)
// cubin: compile each distinct source with NVRTC for every target arch (+ PTX)
// plan:  serialize exec IR + binaries through the runtime's schema (compiler/plan)
//
//===----------------------------------------------------------------------===//
#pragma once

#include "llvm/ADT/StringMap.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/OwningOpRef.h"
#include "mlir/Support/LLVM.h"

#include "compiler/pipeline/Compile.h"
#include "compiler/plan/PlanWriter.h"
#include "models/common/checkpoint.h"

namespace llvm {
class raw_ostream;
}

namespace mm::compiler {

// --emit=exec: a new module holding the memory-planned exec IR.
mlir::FailureOr<mlir::OwningOpRef<mlir::ModuleOp>>
lowerToExec(mlir::ModuleOp fused, const CompileOptions &opts);

// --emit=cuda: the generated translation unit of every kernel, each preceded by a
// "// ===== kernel @name (KIND) entry ENTRY" banner.
mlir::LogicalResult emitCuda(mlir::ModuleOp exec, llvm::raw_ostream &os);

// NVRTC for every exec.kernel and every target arch; identical sources are compiled once, and
// (source, arch) pairs found in the kernel cache directory `cacheDir` ("" = none) not at all.
// `stats`, when given, receives one line of counts.
mlir::FailureOr<llvm::StringMap<CompiledKernel>>
compileKernels(mlir::ModuleOp exec, const std::vector<std::string> &targets,
               const std::string &cacheDir, llvm::raw_ostream *stats);

// --stats for the exec phase: launches per program, per layer, and the MoE block's share.
void printExecStats(mlir::ModuleOp exec, llvm::raw_ostream &os);

// Limits recorded in the plan header from the compile options.
PlanLimits planLimits(const CompileOptions &opts);

} // namespace mm::compiler
