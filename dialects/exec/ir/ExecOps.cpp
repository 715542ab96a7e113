//===- ExecOps.cpp - exec dialect verifiers ---------------------------------===//
#include "dialects/exec/ir/ExecOps.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/StringSet.h"

using namespace mlir;
using namespace mm::exec;

llvm::ArrayRef<llvm::StringRef> mm::exec::dynamicDimNames() {
  static const llvm::StringRef names[] = {"T", "R", "S", "CTX", "STEP"};
  return names;
}

int64_t mm::exec::evalDim(DimAttr dim, llvm::ArrayRef<int64_t> dims) {
  int64_t base = 0;
  if (!dim.getDim().empty()) {
    auto names = dynamicDimNames();
    auto *it = llvm::find(names, dim.getDim());
    base = dims[it - names.begin()];
  }
  int64_t num = dim.getMul() * base + dim.getAdd();
  return (num + dim.getDiv() - 1) / dim.getDiv();
}

//===----------------------------------------------------------------------===//
// Attributes
//===----------------------------------------------------------------------===//

LogicalResult DimAttr::verify(function_ref<InFlightDiagnostic()> emitError, StringRef dim,
                              int64_t mul, int64_t add, int64_t div) {
  if (div <= 0)
    return emitError() << "grid formula divisor must be positive, got " << div;
  if (dim.empty()) {
    if (mul != 0)
      return emitError() << "constant grid formula must have mul 0, got " << mul;
    return success();
  }
  if (!llvm::is_contained(dynamicDimNames(), dim))
    return emitError() << "unknown dynamic dim '" << dim
                       << "', expected one of T, R, S, CTX, STEP or \"\" for a constant";
  if (mul < 0)
    return emitError() << "grid formula multiplier must be >= 0, got " << mul;
  return success();
}

LogicalResult InputAttr::verify(function_ref<InFlightDiagnostic()> emitError, StringRef name) {
  static const llvm::StringRef names[] = {"tokens",      "positions", "seq_slots", "block_tables",
                                          "logit_rows",  "temperature", "top_k",   "top_p",
                                          "seed",        "logits",    "sampled"};
  if (!llvm::is_contained(names, name))
    return emitError() << "unknown runtime input '" << name << "'";
  return success();
}

LogicalResult KvAttr::verify(function_ref<InFlightDiagnostic()> emitError, int64_t layer,
                             StringRef pool) {
  if (layer < 0)
    return emitError() << "KV layer must be >= 0, got " << layer;
  if (pool != "k" && pool != "v" && pool != "k_scale" && pool != "v_scale")
    return emitError() << "unknown KV pool '" << pool
                       << "', expected k, v, k_scale or v_scale";
  return success();
}

//===----------------------------------------------------------------------===//
// Ops
//===----------------------------------------------------------------------===//

LogicalResult WeightOp::verify() {
  static const llvm::StringRef transforms[] = {"copy",          "concat_n",   "stack_experts",
                                               "stack_experts_w13", "upcast_f32", "check_zeros"};
  static const llvm::StringRef dtypes[] = {"bf16", "f16", "f32", "i32"};
  if (!llvm::is_contained(transforms, getTransform()))
    return emitOpError() << "unknown transform '" << getTransform() << "'";
  if (!llvm::is_contained(dtypes, getDtype()))
    return emitOpError() << "unknown dtype '" << getDtype() << "', expected bf16, f16, f32 or i32";
  if (getSources().empty())
    return emitOpError() << "needs at least one source tensor";
  for (int64_t d : getShape())
    if (d <= 0)
      return emitOpError() << "shape dims must be positive, got " << d;
  size_t n = getSources().size();
  if ((getTransform() == "copy" || getTransform() == "upcast_f32") && n != 1)
    return emitOpError() << "transform '" << getTransform() << "' takes 1 source, got " << n;
  if (getTransform() == "stack_experts_w13" && n % 2 != 0)
    return emitOpError() << "transform 'stack_experts_w13' takes w1/w3 source pairs, got " << n;
  return success();
}

LogicalResult KernelOp::verify() {
  StringRef kind = getKind();
  if (kind.empty() || !llvm::all_of(kind, [](char c) {
        return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
      }))
    return emitOpError() << "kernel kind must be an upper-case identifier, got '" << kind << "'";
  for (NamedAttribute p : getParams())
    if (!isa<IntegerAttr, FloatAttr>(p.getValue()))
      return emitOpError() << "param '" << p.getName().getValue()
                           << "' must be an integer or a float";
  if (getBlock().size() != 3)
    return emitOpError() << "block must have 3 dims, got " << getBlock().size();
  int64_t threads = 1;
  for (int64_t d : getBlock()) {
    if (d <= 0)
      return emitOpError() << "block dims must be positive, got " << d;
    threads *= d;
  }
  if (threads > 1024)
    return emitOpError() << "block has " << threads << " threads, the limit is 1024";
  // 99 KiB: the per-block shared memory limit of sm_121 (GB10), our smallest target.
  int64_t smem = getSmemAttr().getInt();
  if (smem < 0 || smem > 99 * 1024)
    return emitOpError() << "dynamic shared memory " << smem
                         << " bytes is outside [0, 101376]";
  return success();
}

LogicalResult ProgramOp::verify() {
  // I64Attr getters return uint64_t: read the signed value so negative input is caught.
  int64_t maxTokens = getMaxTokensAttr().getInt();
  if (maxTokens <= 0)
    return emitOpError() << "max_tokens must be positive, got " << maxTokens;
  for (Operation &op : getBody().front())
    if (!isa<BufferOp, LaunchOp>(op))
      return op.emitOpError() << "is not allowed in an exec.program";
  return success();
}

LogicalResult BufferOp::verify() {
  int64_t size = getSizeAttr().getInt();
  if (size <= 0)
    return emitOpError() << "size must be positive, got " << size;
  if (auto off = getOffsetAttr(); off && off.getInt() < 0)
    return emitOpError() << "offset must be >= 0, got " << off.getInt();
  return success();
}

LogicalResult LaunchOp::verify() {
  auto module = (*this)->getParentOfType<ModuleOp>();
  auto program = (*this)->getParentOfType<ProgramOp>();
  if (!module)
    return emitOpError() << "must be inside a module";
  if (!SymbolTable::lookupSymbolIn(module, getKernelAttr().getAttr()) ||
      !isa<KernelOp>(SymbolTable::lookupSymbolIn(module, getKernelAttr().getAttr())))
    return emitOpError() << "kernel '" << getKernel() << "' is not an exec.kernel of the module";
  if (getGrid().size() != 3)
    return emitOpError() << "grid must have 3 formulas, got " << getGrid().size();
  for (Attribute g : getGrid())
    if (!isa<DimAttr>(g))
      return emitOpError() << "grid entries must be #exec.dim, got " << g;
  // 16 = MM_MAX_PTRS of codegen/kernels/abi.h.
  if (getOperands().size() > 16)
    return emitOpError() << "has " << getOperands().size() << " operands, the limit is 16";
  for (Attribute a : getOperands()) {
    if (auto buf = dyn_cast<BufAttr>(a)) {
      if (!dyn_cast_or_null<BufferOp>(SymbolTable::lookupSymbolIn(program, buf.getName())))
        return emitOpError() << "operand names buffer '" << buf.getName()
                             << "' which the program does not declare";
    } else if (auto w = dyn_cast<WeightRefAttr>(a)) {
      if (!dyn_cast_or_null<WeightOp>(SymbolTable::lookupSymbolIn(module, w.getName())))
        return emitOpError() << "operand names weight '" << w.getName()
                             << "' which the module does not declare";
    } else if (!isa<InputAttr, KvAttr, NoneAttr>(a)) {
      return emitOpError() << "operand " << a << " is not an exec operand attribute";
    }
  }
  return success();
}

#define GET_OP_CLASSES
#include "dialects/exec/ir/ExecOps.cpp.inc"
