//===- Passes.h - exec dialect passes ----------------------------*- C++ -*-===//
#pragma once

#include "mlir/Pass/Pass.h"

#include "dialects/exec/ir/ExecOps.h"

namespace mm::exec {

#define GEN_PASS_DECL
#include "dialects/exec/transforms/Passes.h.inc"

#define GEN_PASS_REGISTRATION
#include "dialects/exec/transforms/Passes.h.inc"

} // namespace mm::exec
