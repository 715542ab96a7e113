//===- Builder.h - MiniMax-M2 checkpoint -> moe dialect ---------*- C++ -*-===//
//
// Emits the graph-level module of a checkpoint described by mm::ModelDesc: one `moe.weight`
// per tensor (per layer and role; one per layer for all experts of w1, w3 and w2), and the
// programs
//   func.func @prefill(%tokens: tensor<?xi32>, %positions: tensor<?xi32>, %kv: !moe.kv_cache<...>)
//       -> tensor<1xVxf32>    (logits of the last position)
//   func.func @decode(%tokens: tensor<?xi32>, %positions: tensor<?xi32>, %kv: !moe.kv_cache<...>)
//       -> tensor<?xVxf32>    (one row per sequence)
// following minimax-m2-spec.md section 3.
//
//===----------------------------------------------------------------------===//
#pragma once

#include <string>

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/OwningOpRef.h"
#include "mlir/Support/LLVM.h"
#include "models/common/checkpoint.h"

namespace mm::minimax_m2 {

struct BuildOptions {
  std::string kvCacheDtype = "bf16";  // bf16 | fp8 (f8E4M3FN)
};

// Errors (a tensor the description lacks, an unsupported dtype) are emitted as diagnostics on
// the context, naming the tensor; the caller's handler prints them.
mlir::FailureOr<mlir::OwningOpRef<mlir::ModuleOp>>
buildMoEModule(mlir::MLIRContext &context, const mm::ModelDesc &desc, const BuildOptions &options);

} // namespace mm::minimax_m2
