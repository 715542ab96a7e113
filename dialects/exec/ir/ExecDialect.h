//===- ExecDialect.h - the exec dialect --------------------------*- C++ -*-===//
#pragma once

#include "mlir/IR/Dialect.h"

#include "dialects/exec/ir/ExecDialect.h.inc"
