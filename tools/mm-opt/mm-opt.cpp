//===- mm-opt.cpp - mlir-opt for the mmc dialects -------------------------===//
//
// Thin main: registers the dialects mmc programs use (moe, exec, func, arith; builtin is always
// there) and the passes generated from each dialect's Passes.td, then hands over to MlirOptMain.
//
//===----------------------------------------------------------------------===//
#include "dialects/exec/ir/ExecOps.h"
#include "dialects/exec/transforms/Passes.h"
#include "dialects/moe/ir/MoEOps.h"
#include "dialects/moe/transforms/Passes.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/DialectRegistry.h"
#include "mlir/Tools/mlir-opt/MlirOptMain.h"

int main(int argc, char **argv) {
  mlir::DialectRegistry registry;
  registry.insert<mm::moe::MoEDialect, mm::exec::ExecDialect, mlir::func::FuncDialect,
                  mlir::arith::ArithDialect>();
  mm::moe::registerMoEPassesAndPipelines();
  mm::exec::registerExecPasses();
  return mlir::asMainReturnCode(
      mlir::MlirOptMain(argc, argv, "mm-opt: moe/exec dialect optimizer driver\n", registry));
}
