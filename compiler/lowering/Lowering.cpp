//===- Lowering.cpp - shared state of the moe -> exec lowering --------------===//
#include "compiler/lowering/Lowering.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/StringExtras.h"
#include "mlir/IR/BuiltinTypes.h"

#include "codegen/kernels/abi.h"

using namespace mlir;
using namespace mm;

namespace mm::compiler::lowering {

Lowering::Lowering(ModuleOp src, ModuleOp dst, const LoweringOptions &opts)
    : src(src), dst(dst), opts(opts), ctx(dst.getContext()), b(dst.getContext()),
      programBuilder(dst.getContext()) {
  b.setInsertionPointToEnd(dst.getBody());
}

moe::WeightOp Lowering::lookupWeight(FlatSymbolRefAttr sym) const {
  return dyn_cast_or_null<moe::WeightOp>(SymbolTable::lookupSymbolIn(src, sym.getAttr()));
}

std::string Lowering::tensorName(moe::WeightOp w, int64_t expert) const {
  std::string name = w.getTensor().str();
  size_t at = name.find("{E}");
  if (at != std::string::npos)
    name.replace(at, 3, std::to_string(expert));
  return name;
}

FailureOr<std::string> Lowering::declareWeight(const std::string &name, StringRef dtype,
                                               ArrayRef<int64_t> shape, StringRef transform,
                                               ArrayRef<std::string> sources,
                                               StringRef category, exec::WeightRole role,
                                               int64_t fanIn, int64_t concatAxis,
                                               ArrayRef<int64_t> slices, int64_t ql) {
  if (declaredWeights.count(name))
    return name;
  OpBuilder::InsertionGuard guard(b);
  // Weights and kernels go before the first program so the module reads top-down.
  if (program)
    b.setInsertionPoint(program);
  SmallVector<StringRef> srcRefs(sources.begin(), sources.end());
  auto dt = exec::symbolizeWeightDType(dtype);
  auto tr = exec::symbolizeTransform(transform);
  if (!dt || !tr)
    return emitError(dst.getLoc()) << "weight " << name << ": no exec encoding for dtype '" << dtype
                                   << "' or transform '" << transform << "'";
  exec::WeightOp::create(b, dst.getLoc(), b.getStringAttr(name), exec::WeightDTypeAttr::get(ctx, *dt),
                         b.getDenseI64ArrayAttr(shape), exec::TransformAttr::get(ctx, *tr),
                         b.getStrArrayAttr(srcRefs), b.getStringAttr(category),
                         exec::WeightRoleAttr::get(ctx, role), b.getI64IntegerAttr(fanIn),
                         concatAxis >= 0 ? b.getI64IntegerAttr(concatAxis) : IntegerAttr(),
                         slices.empty() ? DenseI64ArrayAttr() : b.getDenseI64ArrayAttr(slices),
                         ql == 1 ? exec::QuantLayoutAttr::get(ctx, exec::QuantLayout::strips32)
                                 : exec::QuantLayoutAttr());
  declaredWeights[name] = true;
  return name;
}

FailureOr<int64_t> Lowering::denseDtype(FlatSymbolRefAttr sym, Operation *user) {
  moe::WeightOp w = lookupWeight(sym);
  auto type = w ? dyn_cast<moe::DenseWeightType>(w.getWeightType()) : nullptr;
  if (!type)
    return user->emitOpError() << "weight " << sym << " is not a 16-bit dense weight";
  if (type.getElementType().isBF16())
    return int64_t{MM_DT_BF16};
  if (type.getElementType().isF16())
    return int64_t{MM_DT_F16};
  if (type.getElementType().isF32())
    return int64_t{MM_DT_F32};
  return user->emitOpError() << "weight " << sym << " has element type "
                             << type.getElementType() << ", expected bf16, f16 or f32";
}

static StringRef dtypeName(Type t) {
  if (t.isBF16()) return "bf16";
  if (t.isF16()) return "f16";
  if (t.isF32()) return "f32";
  return "";
}

static StringRef categoryOf(StringRef sym) {
  if (sym.contains("expert")) return "experts";
  if (sym.contains("embed") || sym.contains("lm_head")) return "embeddings";
  if (sym.contains("proj") || sym.contains("q_norm") || sym.contains("k_norm"))
    return "attention";
  return "other";
}

FailureOr<std::string> Lowering::denseWeight(FlatSymbolRefAttr sym, bool upcastF32,
                                             exec::WeightRole role, Operation *user) {
  moe::WeightOp w = lookupWeight(sym);
  auto type = w ? dyn_cast<moe::DenseWeightType>(w.getWeightType()) : nullptr;
  if (!type)
    return user->emitOpError() << "weight " << sym << " is not a 16-bit dense weight";
  StringRef dt = upcastF32 ? "f32" : dtypeName(type.getElementType());
  if (dt.empty())
    return user->emitOpError() << "weight " << sym << " has unsupported element type "
                               << type.getElementType();
  std::string name = sym.getValue().str() + (upcastF32 ? ".f32" : "");
  // A dense matrix is [N, K] row-major: its fan-in is the last dim.
  const int64_t fanIn = role == exec::WeightRole::dense ? type.getShape().back() : 1;
  return declareWeight(name, dt, type.getShape(), upcastF32 ? "upcast_f32" : "copy",
                       {w.getTensor().str()}, categoryOf(sym.getValue()), role, fanIn);
}

FailureOr<std::string> Lowering::rankSlice(FlatSymbolRefAttr sym, exec::WeightRole role,
                                           Operation *user) {
  moe::WeightOp w = lookupWeight(sym);
  auto type = w ? dyn_cast<moe::DenseWeightType>(w.getWeightType()) : nullptr;
  if (!type || type.getShape().size() != 1)
    return user->emitOpError() << "weight " << sym << " is not a 16-bit vector";
  StringRef dt = dtypeName(type.getElementType());
  const int64_t n = type.getShape()[0], part = n / opts.tp;
  if (dt.empty() || n % opts.tp != 0)
    return user->emitOpError() << "weight " << sym << " (" << n << " elements) does not split "
                               << "in " << opts.tp << " tensor-parallel ranks";
  return declareWeight("r" + std::to_string(rankIndex) + "." + sym.getValue().str(), dt, {part},
                       "copy", {w.getTensor().str()}, categoryOf(sym.getValue()), role, 1, -1,
                       {0, rankIndex * part, part});
}

FailureOr<QuantWeights> Lowering::linearWeights(ArrayRef<FlatSymbolRefAttr> syms,
                                                Operation *user, TpSplit split) {
  if (opts.tp == 1)
    split = TpSplit::None;
  QuantWeights q;
  std::string base;
  std::vector<std::string> qw, sc, qz;
  // (dim, start, len) per source of qweight and scales when this rank takes a slice.
  std::vector<int64_t> qwSlices, scSlices;
  for (FlatSymbolRefAttr sym : syms) {
    moe::WeightOp w = lookupWeight(sym);
    auto type = w ? dyn_cast<moe::QWeightType>(w.getWeightType()) : nullptr;
    if (!type || type.isPerExpert())
      return user->emitOpError() << "weight " << sym << " is not a quantized linear";
    if (!type.getScaleType().isF16())
      return user->emitOpError() << "weight " << sym << " has " << type.getScaleType()
                                 << " scales; the kernels take f16 scales";
    if (q.k && (q.k != type.getK() || q.group != type.getGroupSize()))
      return user->emitOpError() << "concatenated weights disagree on K or group size";
    q.k = type.getK();
    q.group = type.getGroupSize();
    const int64_t r = rankIndex, tp = opts.tp;
    if (split == TpSplit::Columns) {
      // Column ranges of qweight [K/8, N] and scales [K/G, N]: this rank's heads of q, k and v.
      const int64_t part = type.getN() / tp;
      if (type.getN() % tp != 0)
        return user->emitOpError() << "weight " << sym << " (N = " << type.getN()
                                   << ") does not split in " << tp << " tensor-parallel ranks";
      q.n += part;
      qwSlices.insert(qwSlices.end(), {1, r * part, part});
      scSlices.insert(scSlices.end(), {1, r * part, part});
    } else if (split == TpSplit::Rows) {
      // Row ranges: K/tp inputs, whole groups of G (so the rank's scales are whole rows).
      const int64_t part = type.getK() / tp;
      if (type.getK() % tp != 0 || part % type.getGroupSize() != 0)
        return user->emitOpError() << "weight " << sym << " (K = " << type.getK() << ", group "
                                   << type.getGroupSize() << ") does not split in " << tp
                                   << " tensor-parallel ranks of whole groups";
      q.k = part;
      q.n += type.getN();
      qwSlices.insert(qwSlices.end(), {0, r * part / 8, part / 8});
      scSlices.insert(scSlices.end(),
                      {0, r * part / type.getGroupSize(), part / type.getGroupSize()});
    } else {
      q.n += type.getN();
    }
    std::string t = w.getTensor().str();
    qw.push_back(t + ".qweight");
    sc.push_back(t + ".scales");
    qz.push_back(t + ".qzeros");
    StringRef s = sym.getValue();
    // l0.q_proj + l0.k_proj + l0.v_proj -> l0.qkv
    base = syms.size() == 3 && s.ends_with("q_proj") ? s.drop_back(6).str() + "qkv"
           : base.empty()                            ? s.str()
                                                     : base;
  }
  StringRef transform = syms.size() == 1 ? "copy" : "concat_n";
  StringRef cat = categoryOf(syms.front().getValue());
  // Several linears are concatenated along N, the last dim of qweight [K/8, N] and scales [K/G, N].
  const int64_t axis = syms.size() == 1 ? -1 : 1;
  using R = exec::WeightRole;
  // Zero points are checked whole, once, whatever the ranks take of the weight.
  const int64_t fullK = split == TpSplit::Rows ? q.k * opts.tp : q.k;
  const int64_t fullN = split == TpSplit::Columns ? q.n * opts.tp : q.n;
  const std::string ranked =
      split == TpSplit::None ? base : "r" + std::to_string(rankIndex) + "." + base;
  // Strips of 32 columns (kinds.def QL) when every source's columns stay whole and align: not for
  // column-parallel slices (the loader lays out whole source rows).
  q.ql = opts.qweightStrips && split != TpSplit::Columns && llvm::all_of(syms, [&](FlatSymbolRefAttr sym) {
           return cast<moe::QWeightType>(lookupWeight(sym).getWeightType()).getN() % 32 == 0;
         }) ? 1 : 0;
  auto qn = declareWeight(ranked + ".qweight", "i32", {q.k / 8, q.n}, transform, qw, cat,
                          R::qweight, q.k, axis, qwSlices, q.ql);
  auto sn = declareWeight(ranked + ".scales", "f16", {q.k / q.group, q.n}, transform, sc, cat,
                          R::scales, q.k, axis, scSlices);
  auto zn = declareWeight(base + ".qzeros", "i32", {fullK / q.group, fullN / 8}, "check_zeros", qz,
                          cat, R::zeros, fullK);
  if (failed(qn) || failed(sn) || failed(zn))
    return failure();
  q.qweight = *qn;
  q.scales = *sn;
  return q;
}

FailureOr<QuantWeights> Lowering::expertWeights(FlatSymbolRefAttr w1, FlatSymbolRefAttr w3,
                                                Operation *user) {
  SmallVector<FlatSymbolRefAttr> syms{w1};
  if (w3)
    syms.push_back(w3);
  SmallVector<moe::WeightOp> ops;
  moe::QWeightType type;
  for (FlatSymbolRefAttr sym : syms) {
    moe::WeightOp w = lookupWeight(sym);
    auto t = w ? dyn_cast<moe::QWeightType>(w.getWeightType()) : nullptr;
    if (!t || !t.isPerExpert())
      return user->emitOpError() << "weight " << sym << " is not a per-expert quantized linear";
    if (!t.getScaleType().isF16())
      return user->emitOpError() << "weight " << sym << " has " << t.getScaleType()
                                 << " scales; the kernels take f16 scales";
    if (type && (type.getK() != t.getK() || type.getN() != t.getN() ||
                 type.getExperts() != t.getExperts()))
      return user->emitOpError() << "expert weights " << w1 << " and " << w3
                                 << " disagree on shape";
    type = t;
    ops.push_back(w);
  }
  if (type.getExperts() % opts.ep != 0)
    return user->emitOpError() << "weight " << w1 << " (" << type.getExperts()
                               << " experts) does not split in " << opts.ep
                               << " expert-parallel ranks";
  // Expert parallelism: the stack holds this rank's experts only, [first, first + e).
  const ExpertRange local = localExperts(type.getExperts());
  int64_t e = local.count, k = type.getK(), n = type.getN() * syms.size();
  int64_t g = type.getGroupSize();
  std::vector<std::string> qw, sc, qz;
  for (int64_t x = local.first; x < local.first + e; ++x)
    for (moe::WeightOp w : ops) {
      std::string t = tensorName(w, x);
      qw.push_back(t + ".qweight");
      sc.push_back(t + ".scales");
      qz.push_back(t + ".qzeros");
    }
  // l0.expert_w1 (+ w3) -> l0.expert_w13; rank r's experts: r1.l0.expert_w13
  std::string base = (opts.ep > 1 ? "r" + std::to_string(rankIndex) + "." : std::string()) +
                     w1.getValue().str() + (w3 ? "3" : "");
  StringRef transform = w3 ? "stack_experts_w13" : "stack_experts";
  using R = exec::WeightRole;
  const int64_t ql = opts.qweightStrips && type.getN() % 32 == 0 ? 1 : 0;   // w1 and w3 each whole strips
  auto qn = declareWeight(base + ".qweight", "i32", {e, k / 8, n}, transform, qw, "experts", R::qweight, k,
                          -1, {}, ql);
  auto sn = declareWeight(base + ".scales", "f16", {e, k / g, n}, transform, sc, "experts", R::scales, k);
  auto zn = declareWeight(base + ".qzeros", "i32", {e, k / g, n / 8}, "check_zeros", qz,
                          "experts", R::zeros, k);
  if (failed(qn) || failed(sn) || failed(zn))
    return failure();
  return QuantWeights{*qn, *sn, k, n, g, ql};
}

FailureOr<FlatSymbolRefAttr> Lowering::kernel(StringRef kind, ArrayRef<NamedAttribute> params,
                                              Operation *user) {
  DictionaryAttr dict = DictionaryAttr::get(ctx, params);
  std::string key;
  llvm::raw_string_ostream os(key);
  os << kind << dict;
  auto it = kernelsByKey.find(key);
  if (it != kernelsByKey.end())
    return it->second;
  auto k = mm::kernels::kind_from_name(std::string_view(kind.data(), kind.size()));
  if (!k)
    return user->emitOpError() << "no kernel kind '" << kind << "' in the registry";
  auto geom = kernelGeometry(ctx, *k, dict, user->getLoc());
  if (failed(geom))
    return failure();
  std::string name = llvm::StringRef(kind).lower() + "_" + std::to_string(kindCounts[kind]++);
  {
    OpBuilder::InsertionGuard guard(b);
    if (program)
      b.setInsertionPoint(program);
    exec::KernelOp::create(b, user->getLoc(), b.getStringAttr(name),
                           exec::KernelKindAttr::get(ctx, static_cast<exec::KernelKind>(static_cast<uint32_t>(*k))),
                           geom->params,
                           b.getDenseI64ArrayAttr(geom->block),
                           b.getI64IntegerAttr(geom->smem));
  }
  auto sym = FlatSymbolRefAttr::get(ctx, name);
  kernelsByKey[key] = sym;
  geometries[name] = *geom;
  return sym;
}

const Geometry &Lowering::geometry(FlatSymbolRefAttr kernel) const {
  return geometries.find(kernel.getValue())->second;
}

void Lowering::launch(FlatSymbolRefAttr kernel, ArrayRef<Attribute> operands, Operation *srcOp,
                      StringRef note) {
  const Geometry &g = geometry(kernel);
  SmallVector<Attribute> grid(g.grid.begin(), g.grid.end());
  int64_t layer = layerOf(srcOp);
  // Decode launches overlap their predecessor (programmatic dependent launch): every kernel a
  // decode program uses prefetches its weights and then waits for the previous launch
  // (codegen/kernels/common.cuh), which hides the launch latency and the first loads of each of
  // a decode step's ~600 launches. The first launch follows the runtime's input copies.
  bool pdl = decode && !program.getBody().front().getOps<exec::LaunchOp>().empty();
  exec::LaunchOp::create(programBuilder, srcOp->getLoc(), kernel, programBuilder.getArrayAttr(grid),
                         programBuilder.getArrayAttr(operands),
                         layer >= 0 ? programBuilder.getI64IntegerAttr(layer) : IntegerAttr(),
                         programBuilder.getStringAttr(note),
                         pdl ? programBuilder.getUnitAttr() : UnitAttr());
}

LogicalResult Lowering::allReduce(const std::string &buffer, int64_t n, int64_t dt, Operation *src,
                                  StringRef note) {
  auto k = kernel("ALL_REDUCE", {p("N", n), p("DT", dt), p("RANKS", opts.ranks()), p("MDIM", 0)}, src);
  if (failed(k))
    return failure();
  launch(*k, {buf(buffer)}, src, note);
  return success();
}

void Lowering::beginProgram(StringRef name, int64_t maxTokens, bool isDecode) {
  b.setInsertionPointToEnd(dst.getBody());
  // Each rank of a sharded module has its own programs: @r1.decode {rank = 1}.
  const bool ranked = opts.ranks() > 1;
  std::string sym = ranked ? "r" + std::to_string(rankIndex) + "." + name.str() : name.str();
  program = exec::ProgramOp::create(b, dst.getLoc(), b.getStringAttr(sym),
                                    b.getI64IntegerAttr(maxTokens), IntegerAttr(),
                                    ranked ? b.getI64IntegerAttr(rankIndex) : IntegerAttr());
  program.getBody().emplaceBlock();
  programBuilder.setInsertionPointToEnd(&program.getBody().front());
  decode = isDecode;
  tokens = maxTokens;
  buffers.clear();
  bufferNames.clear();
}

std::string Lowering::newBuffer(StringRef hint, int64_t bytes) {
  std::string name = hint.str();
  int64_t &count = bufferNames[hint];
  if (count++ > 0)
    name += "." + std::to_string(count - 1);
  // Buffers are declared at the top of the program, launches follow in order.
  OpBuilder::InsertionGuard guard(programBuilder);
  Block &body = program.getBody().front();
  auto firstLaunch = llvm::find_if(body, [](Operation &op) { return isa<exec::LaunchOp>(op); });
  if (firstLaunch != body.end())
    programBuilder.setInsertionPoint(&*firstLaunch);
  exec::BufferOp::create(programBuilder, program.getLoc(), programBuilder.getStringAttr(name),
                         programBuilder.getI64IntegerAttr(bytes), IntegerAttr());
  return name;
}

FailureOr<std::string> Lowering::bufferOf(Value v, Operation *user) {
  auto it = buffers.find(v);
  if (it == buffers.end())
    return user->emitOpError() << "operand has no exec buffer: its producer was not lowered "
                                  "(is the module fused with mm-moe-fuse?)";
  return it->second;
}

Attribute Lowering::buf(StringRef name) { return exec::BufAttr::get(ctx, name); }
Attribute Lowering::weight(StringRef name) { return exec::WeightRefAttr::get(ctx, name); }
Attribute Lowering::input(StringRef name) { return exec::InputAttr::get(ctx, name); }
Attribute Lowering::kv(int64_t layer, StringRef pool) { return exec::KvAttr::get(ctx, layer, pool); }
Attribute Lowering::none() { return exec::NoneAttr::get(ctx); }

NamedAttribute Lowering::p(StringRef name, int64_t v) {
  return NamedAttribute(StringAttr::get(ctx, name),
                        IntegerAttr::get(IntegerType::get(ctx, 64), v));
}
NamedAttribute Lowering::pf(StringRef name, double v) {
  return NamedAttribute(StringAttr::get(ctx, name), FloatAttr::get(Float64Type::get(ctx), v));
}

int64_t Lowering::layerOf(Operation *op) {
  // The builder names each layer's ops "model.layers.N"; passes may wrap that in a FusedLoc.
  auto layerOfName = [](NameLoc name) -> int64_t {
    StringRef s = name.getName().getValue();
    int64_t layer;
    if (s.consume_front("model.layers.") && !s.getAsInteger(10, layer))
      return layer;
    return -1;
  };
  for (Location loc = op->getLoc();;) {
    if (auto name = dyn_cast<NameLoc>(loc)) {
      if (int64_t layer = layerOfName(name); layer >= 0)
        return layer;
      loc = name.getChildLoc();
      continue;
    }
    if (auto fused = dyn_cast<FusedLoc>(loc))
      for (Location inner : fused.getLocations())
        if (auto name = dyn_cast<NameLoc>(inner))
          if (int64_t layer = layerOfName(name); layer >= 0)
            return layer;
    return -1;
  }
}

} // namespace mm::compiler::lowering
