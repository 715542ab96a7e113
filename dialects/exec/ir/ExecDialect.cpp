//===- ExecDialect.cpp - the exec dialect -----------------------------------===//
#include "dialects/exec/ir/ExecDialect.h"

#include "llvm/ADT/TypeSwitch.h"

#include "dialects/exec/ir/ExecOps.h"

using namespace mlir;
using namespace mm::exec;

#include "dialects/exec/ir/ExecDialect.cpp.inc"
#include "dialects/exec/ir/ExecEnums.cpp.inc"

#define GET_ATTRDEF_CLASSES
#include "dialects/exec/ir/ExecAttrs.cpp.inc"

void ExecDialect::initialize() {
  addAttributes<
#define GET_ATTRDEF_LIST
#include "dialects/exec/ir/ExecAttrs.cpp.inc"
      >();
  addOperations<
#define GET_OP_LIST
#include "dialects/exec/ir/ExecOps.cpp.inc"
      >();
}
