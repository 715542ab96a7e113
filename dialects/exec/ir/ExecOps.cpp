//===- ExecOps.cpp - exec dialect verifiers ---------------------------------===//
#include "dialects/exec/ir/ExecOps.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/StringSet.h"

#include "codegen/kernels/registry.h"

using namespace mlir;
using namespace mm::exec;

llvm::ArrayRef<llvm::StringRef> mm::exec::dynamicDimNames() {
  static const llvm::StringRef names[] = {"T", "R", "S", "CTX", "STEP"};
  return names;
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
  if (getSources().empty())
    return emitOpError() << "needs at least one source tensor";
  for (int64_t d : getShape())
    if (d <= 0)
      return emitOpError() << "shape dims must be positive, got " << d;
  size_t n = getSources().size();
  Transform t = getTransform();
  if ((t == Transform::copy || t == Transform::upcast_f32) && n != 1)
    return emitOpError() << "transform '" << stringifyTransform(t) << "' takes 1 source, got " << n;
  if (t == Transform::stack_experts_w13 && n % 2 != 0)
    return emitOpError() << "transform 'stack_experts_w13' takes w1/w3 source pairs, got " << n;
  if (static_cast<int64_t>(getFanInAttr().getInt()) <= 0)
    return emitOpError() << "fan_in must be positive, got " << static_cast<int64_t>(getFanInAttr().getInt());
  const int64_t rank = static_cast<int64_t>(getShape().size());
  if (t == Transform::concat_n) {
    if (!getConcatAxisAttr())
      return emitOpError() << "transform 'concat_n' needs concat_axis";
    const int64_t axis = getConcatAxisAttr().getInt();
    if (axis != 0 && axis != rank - 1)
      return emitOpError() << "concat_axis must be 0 or the last dim (" << rank - 1 << "), got " << axis;
  } else if (getConcatAxisAttr()) {
    return emitOpError() << "concat_axis is only for transform 'concat_n'";
  }
  if (auto slices = getSlicesAttr()) {
    if (slices.size() != static_cast<int64_t>(3 * n))
      return emitOpError() << "slices holds (dim, start, len) per source: expected " << 3 * n
                           << " integers, got " << slices.size();
    for (size_t i = 0; i < n; ++i) {
      int64_t dim = slices[3 * i], start = slices[3 * i + 1], len = slices[3 * i + 2];
      if (dim < -1 || (dim >= 0 && (start < 0 || len <= 0)))
        return emitOpError() << "slice " << i << " (dim " << dim << ", start " << start
                             << ", len " << len << ") must have dim -1, or start >= 0 and len > 0";
    }
  }
  // Strips of 32 columns: a qweight whose columns come whole from its sources (the loader lays
  // each source's rows out strip by strip; the plan reader checks the sources' widths).
  if (getQlayout() && *getQlayout() == QuantLayout::strips32) {
    if (getRole() != WeightRole::qweight || getDtype() != WeightDType::i32)
      return emitOpError() << "qlayout 'strips32' is for i32 qweights only";
    if (getShape().back() % 32 != 0)
      return emitOpError() << "qlayout 'strips32' needs a last dim divisible by 32, got " << getShape().back();
    if (t != Transform::copy && t != Transform::concat_n && t != Transform::stack_experts &&
        t != Transform::stack_experts_w13)
      return emitOpError() << "qlayout 'strips32' does not apply to transform '" << stringifyTransform(t) << "'";
    if (auto slices = getSlicesAttr())
      for (size_t i = 0; i < n; ++i)
        if (slices[3 * i] > 0)
          return emitOpError() << "qlayout 'strips32' takes sources whole or sliced along dim 0 (slice " << i
                               << " is along dim " << slices[3 * i] << ")";
  }
  return success();
}

namespace {
// An exec.kernel's params dictionary as the registry reads it.
class DictSource final : public mm::kernels::ParamSource {
public:
  explicit DictSource(DictionaryAttr d) : d(d) {}
  bool get(std::string_view name, int64_t *i, double *f, bool *isInt) const override {
    Attribute a = d.get(StringRef(name.data(), name.size()));
    if (auto ia = dyn_cast_or_null<IntegerAttr>(a)) {
      *i = ia.getInt();
      *isInt = true;
      return true;
    }
    if (auto fa = dyn_cast_or_null<FloatAttr>(a)) {
      *f = fa.getValueAsDouble();
      *isInt = false;
      return true;
    }
    return false;
  }
  void names(void (*fn)(void *, std::string_view), void *ctx) const override {
    for (NamedAttribute p : d)
      fn(ctx, std::string_view(p.getName().data(), p.getName().size()));
  }

private:
  DictionaryAttr d;
};

mm::kernels::Kind registryKind(KernelKind k) {
  return static_cast<mm::kernels::Kind>(static_cast<uint32_t>(k));
}
} // namespace

static_assert(static_cast<size_t>(getMaxEnumValForKernelKind()) + 1 == mm::kernels::kKindCount,
              "the exec kind enum is generated from the same registry");

LogicalResult KernelOp::verify() {
  for (NamedAttribute p : getParams())
    if (!isa<IntegerAttr, FloatAttr>(p.getValue()))
      return emitOpError() << "param '" << p.getName().getValue()
                           << "' must be an integer or a float";
  mm::kernels::KernelParams parsed;
  std::string err = mm::kernels::parse_params(registryKind(getKind()), DictSource(getParams()), &parsed);
  if (!err.empty())
    return emitOpError() << stringifyKernelKind(getKind()) << ": " << err;
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
  if (auto rank = getRankAttr(); rank && rank.getInt() < 0)
    return emitOpError() << "rank must be >= 0, got " << rank.getInt();
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
  if (getPdl() && program) {
    auto launches = program.getBody().front().getOps<LaunchOp>();
    if (!launches.empty() && *launches.begin() == *this)
      return emitOpError() << "is the first launch of its program and cannot be `pdl` (there is "
                              "no previous launch to overlap)";
  }
  for (Attribute g : getGrid())
    if (!isa<DimAttr>(g))
      return emitOpError() << "grid entries must be #exec.dim, got " << g;
  auto kernel = cast<KernelOp>(SymbolTable::lookupSymbolIn(module, getKernelAttr().getAttr()));
  const mm::kernels::Kind kind = registryKind(kernel.getKind());
  const mm::kernels::KindInfo &info = mm::kernels::kind_info(kind);
  if (static_cast<int>(getOperands().size()) != info.slots)
    return emitOpError() << "has " << getOperands().size() << " operands, kind "
                         << info.name << " takes " << info.slots;
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
  mm::kernels::KernelParams parsed;
  if (mm::kernels::parse_params(kind, DictSource(kernel.getParams()), &parsed).empty())
    for (int slot = 0; slot < info.slots; ++slot) {
      const bool none = isa<NoneAttr>(getOperands()[slot]);
      const bool wanted = mm::kernels::slot_present(kind, parsed, slot);
      if (none == wanted) {
        std::string names;
        for (const auto &o : info.operands)
          if (o.slot == slot)
            names += (names.empty() ? "" : "/") + std::string(o.name);
        return emitOpError() << "operand " << slot << " (" << names << ") of " << info.name
                             << (wanted ? " must be set with these parameters, got #exec.none"
                                        : " must be #exec.none with these parameters");
      }
    }
  return success();
}

#define GET_OP_CLASSES
#include "dialects/exec/ir/ExecOps.cpp.inc"
