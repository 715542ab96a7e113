//===- MoEDialect.h - the moe dialect and its types -------------*- C++ -*-===//
#pragma once

#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Dialect.h"

#include "dialects/moe/ir/MoEDialect.h.inc"

#define GET_TYPEDEF_CLASSES
#include "dialects/moe/ir/MoETypes.h.inc"
