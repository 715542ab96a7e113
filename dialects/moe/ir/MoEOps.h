//===- MoEOps.h - ops of the moe dialect ------------------------*- C++ -*-===//
#pragma once

#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/IR/SymbolTable.h"
#include "mlir/Interfaces/InferTypeOpInterface.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

#include "dialects/moe/ir/MoEDialect.h"

#define GET_OP_CLASSES
#include "dialects/moe/ir/MoEOps.h.inc"
