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

#include "dialects/exec/ir/ExecEnums.h.inc"

#define GET_ATTRDEF_CLASSES
#include "dialects/exec/ir/ExecAttrs.h.inc"

#define GET_OP_CLASSES
#include "dialects/exec/ir/ExecOps.h.inc"

namespace mm::exec {

// The dynamic dims a grid formula may name (docs/kernels.md section 1); index = position.
llvm::ArrayRef<llvm::StringRef> dynamicDimNames();

} // namespace mm::exec
