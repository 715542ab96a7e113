//===- ExecOps.h - exec dialect attributes and ops ---------------*- C++ -*-===//
#pragma once

#include "mlir/IR/Attributes.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/ImplicitLocOpBuilder.h"
#include "mlir/IR/DialectImplementation.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/IR/SymbolTable.h"

#include "dialects/exec/ir/ExecDialect.h"

#define GET_ATTRDEF_CLASSES
#include "dialects/exec/ir/ExecAttrs.h.inc"

#define GET_OP_CLASSES
#include "dialects/exec/ir/ExecOps.h.inc"

namespace mm::exec {

// The dynamic dims a grid formula may name (docs/kernels.md section 1); index = position.
llvm::ArrayRef<llvm::StringRef> dynamicDimNames();
// Evaluates a #exec.dim formula for the given dims (T, R, S, CTX, STEP).
int64_t evalDim(DimAttr dim, llvm::ArrayRef<int64_t> dims);

} // namespace mm::exec
