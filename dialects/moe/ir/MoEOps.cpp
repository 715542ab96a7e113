//===- MoEOps.cpp - verifiers of the moe ops ------------------------------===//
//
// Local verifiers check operand/result shapes against each other and the attributes;
// verifySymbolUses checks them against the referenced moe.weight. Messages name the rule and
// give the expected and the actual value.
//
//===----------------------------------------------------------------------===//
#include "dialects/moe/ir/MoEOps.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/OpImplementation.h"

#include <string>

using namespace mlir;
using namespace mm::moe;

namespace {

std::string dimStr(int64_t d) { return ShapedType::isDynamic(d) ? "?" : std::to_string(d); }

std::string shapeStr(ArrayRef<int64_t> shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i)
    s += (i ? ", " : "") + dimStr(shape[i]);
  return s + "]";
}

bool compatible(int64_t a, int64_t b) {
  return ShapedType::isDynamic(a) || ShapedType::isDynamic(b) || a == b;
}

ShapedType shaped(Value v) { return cast<ShapedType>(v.getType()); }

// "expects <what> to be <expected>, got <actual>" when two possibly-dynamic dims disagree.
LogicalResult checkDim(Operation *op, const Twine &what, int64_t expected, int64_t actual) {
  if (compatible(expected, actual))
    return success();
  return op->emitOpError() << "expects " << what << " to be " << dimStr(expected) << ", got "
                           << dimStr(actual);
}

LogicalResult checkRank(Operation *op, const Twine &what, Value v, int64_t rank) {
  int64_t actual = shaped(v).getRank();
  if (actual == rank)
    return success();
  return op->emitOpError() << "expects " << what << " to have rank " << rank << ", got rank "
                           << actual;
}

LogicalResult checkSameElementType(Operation *op, const Twine &what, Value a, Value b) {
  Type ta = shaped(a).getElementType(), tb = shaped(b).getElementType();
  if (ta == tb)
    return success();
  return op->emitOpError() << "expects " << what << " to have the same element type, got " << ta
                           << " and " << tb;
}

// Looks up a weight symbol and requires the given weight type.
template <typename T>
FailureOr<T> lookupWeight(Operation *op, SymbolTableCollection &symbols, FlatSymbolRefAttr sym) {
  auto weight = symbols.lookupNearestSymbolFrom<WeightOp>(op, sym);
  if (!weight)
    return op->emitOpError() << "references " << sym << ", which is not a moe.weight";
  auto type = dyn_cast<T>(weight.getWeightType());
  if (!type) {
    StringRef expected = std::is_same_v<T, QWeightType> ? "!moe.qweight" : "!moe.dense_weight";
    return op->emitOpError() << "expects " << sym << " to be a " << expected << ", got "
                             << weight.getWeightType();
  }
  return type;
}

// A dense weight whose shape must match `expected` (dynamic entries match anything).
FailureOr<DenseWeightType> lookupDense(Operation *op, SymbolTableCollection &symbols,
                                       FlatSymbolRefAttr sym, ArrayRef<int64_t> expected,
                                       StringRef meaning) {
  auto type = lookupWeight<DenseWeightType>(op, symbols, sym);
  if (failed(type))
    return failure();
  ArrayRef<int64_t> shape = type->getShape();
  bool ok = shape.size() == expected.size();
  for (size_t i = 0; ok && i < shape.size(); ++i)
    ok = compatible(expected[i], shape[i]);
  if (!ok)
    return op->emitOpError() << "expects " << sym << " to have shape " << shapeStr(expected)
                             << " (" << meaning << "), got " << shapeStr(shape);
  return type;
}

// A quantized weight with in-features K and out-features N (per expert or not).
FailureOr<QWeightType> lookupQuant(Operation *op, SymbolTableCollection &symbols,
                                   FlatSymbolRefAttr sym, bool perExpert, int64_t k, int64_t n) {
  auto type = lookupWeight<QWeightType>(op, symbols, sym);
  if (failed(type))
    return failure();
  if (type->isPerExpert() != perExpert)
    return op->emitOpError() << "expects " << sym << " to be "
                             << (perExpert ? "a per-expert" : "a single-linear")
                             << " !moe.qweight, got " << *type;
  if (!compatible(k, type->getK()) || !compatible(n, type->getN()))
    return op->emitOpError() << "expects " << sym << " to have K x N = " << dimStr(k) << " x "
                             << dimStr(n) << ", got " << type->getK() << " x " << type->getN();
  return type;
}

int64_t dim(Value v, int64_t i) { return shaped(v).getDimSize(i); }
int64_t lastDim(Value v) { return shaped(v).getShape().back(); }

// [T, X] activation pairs: ranks 2 and the same number of rows.
LogicalResult checkRows2D(Operation *op, Value in, Value out) {
  if (failed(checkRank(op, "the input", in, 2)) || failed(checkRank(op, "the result", out, 2)))
    return failure();
  return checkDim(op, "the result's rows", dim(in, 0), dim(out, 0));
}

} // namespace

//===----------------------------------------------------------------------===//
// Weights
//===----------------------------------------------------------------------===//

LogicalResult WeightOp::verify() {
  if (getTensor().empty())
    return emitOpError() << "expects a non-empty tensor name";
  bool perExpert = false;
  if (auto q = dyn_cast<QWeightType>(getWeightType()))
    perExpert = q.isPerExpert();
  bool hasPattern = getTensor().contains("{E}");
  if (perExpert != hasPattern)
    return emitOpError() << (perExpert ? "expects the per-expert tensor pattern to contain {E}"
                                       : "expects a tensor name without {E} for a non-expert "
                                         "weight")
                         << ", got \"" << getTensor() << "\"";
  return success();
}

LogicalResult DequantOp::verifySymbolUses(SymbolTableCollection &symbols) {
  if (failed(checkRank(*this, "the result", getResult(), 2)))
    return failure();
  return lookupQuant(*this, symbols, getWeightAttr(), false, dim(getResult(), 0),
                     dim(getResult(), 1));
}

LogicalResult MatmulOp::verify() {
  if (failed(checkRows2D(*this, getInput(), getResult())) ||
      failed(checkRank(*this, "the matrix", getMatrix(), 2)) ||
      failed(checkDim(*this, "the matrix's rows (K)", lastDim(getInput()), dim(getMatrix(), 0))) ||
      failed(checkDim(*this, "the result's columns (N)", dim(getMatrix(), 1),
                      lastDim(getResult()))) ||
      failed(checkSameElementType(*this, "input and matrix", getInput(), getMatrix())))
    return failure();
  return checkSameElementType(*this, "input and result", getInput(), getResult());
}

//===----------------------------------------------------------------------===//
// Embedding, norms, linears
//===----------------------------------------------------------------------===//

LogicalResult EmbedOp::verify() {
  if (failed(checkRank(*this, "the result", getResult(), 2)))
    return failure();
  return checkDim(*this, "the result's rows", dim(getTokens(), 0), dim(getResult(), 0));
}

LogicalResult EmbedOp::verifySymbolUses(SymbolTableCollection &symbols) {
  auto type = lookupDense(*this, symbols, getWeightAttr(),
                          {ShapedType::kDynamic, lastDim(getResult())}, "vocab x hidden");
  if (failed(type))
    return failure();
  if (type->getElementType() != shaped(getResult()).getElementType())
    return emitOpError() << "expects the result element type to be the table's "
                         << type->getElementType() << ", got "
                         << shaped(getResult()).getElementType();
  return success();
}

LogicalResult RmsNormOp::verify() {
  if (failed(checkRank(*this, "the input", getInput(), 2)))
    return failure();
  if (!(getEps().convertToFloat() > 0.0f))
    return emitOpError() << "expects eps > 0, got " << getEps().convertToFloat();
  return success();
}

LogicalResult RmsNormOp::verifySymbolUses(SymbolTableCollection &symbols) {
  return lookupDense(*this, symbols, getWeightAttr(), {lastDim(getInput())}, "hidden");
}

LogicalResult W4LinearOp::verify() {
  if (failed(checkRows2D(*this, getInput(), getResult())))
    return failure();
  return checkSameElementType(*this, "input and result", getInput(), getResult());
}

LogicalResult W4LinearOp::verifySymbolUses(SymbolTableCollection &symbols) {
  return lookupQuant(*this, symbols, getWeightAttr(), false, lastDim(getInput()),
                     lastDim(getResult()));
}

LogicalResult LinearOp::verify() { return checkRows2D(*this, getInput(), getResult()); }

LogicalResult LinearOp::verifySymbolUses(SymbolTableCollection &symbols) {
  return lookupDense(*this, symbols, getWeightAttr(), {lastDim(getResult()), lastDim(getInput())},
                     "out x in");
}

//===----------------------------------------------------------------------===//
// Attention
//===----------------------------------------------------------------------===//

LogicalResult QKNormOp::verify() {
  if (failed(checkRank(*this, "q", getQ(), 2)) || failed(checkRank(*this, "k", getK(), 2)) ||
      failed(checkDim(*this, "k's rows", dim(getQ(), 0), dim(getK(), 0))))
    return failure();
  if (!(getEps().convertToFloat() > 0.0f))
    return emitOpError() << "expects eps > 0, got " << getEps().convertToFloat();
  return success();
}

LogicalResult QKNormOp::verifySymbolUses(SymbolTableCollection &symbols) {
  if (failed(lookupDense(*this, symbols, getQWeightAttr(), {lastDim(getQ())}, "q width")))
    return failure();
  return lookupDense(*this, symbols, getKWeightAttr(), {lastDim(getK())}, "k width");
}

LogicalResult RopeOp::verify() {
  int64_t headDim = static_cast<int64_t>(getHeadDim());
  int64_t rotary = static_cast<int64_t>(getRotaryDim());
  if (failed(checkRank(*this, "q", getQ(), 2)) || failed(checkRank(*this, "k", getK(), 2)) ||
      failed(checkDim(*this, "k's rows", dim(getQ(), 0), dim(getK(), 0))) ||
      failed(checkDim(*this, "the number of positions", dim(getQ(), 0),
                      dim(getPositions(), 0))))
    return failure();
  if (headDim <= 0)
    return emitOpError() << "expects head_dim > 0, got " << headDim;
  if (rotary <= 0 || rotary > headDim || rotary % 2 != 0)
    return emitOpError() << "expects an even rotary_dim in (0, head_dim = " << headDim
                         << "], got " << rotary;
  for (auto [name, v] : {std::pair<StringRef, Value>{"q", getQ()}, {"k", getK()}})
    if (ShapedType::isDynamic(lastDim(v)) || lastDim(v) % headDim != 0)
      return emitOpError() << "expects the width of " << name << " to be a multiple of head_dim "
                           << headDim << ", got " << dimStr(lastDim(v));
  if (!(getTheta().convertToDouble() > 0.0))
    return emitOpError() << "expects theta > 0, got " << getTheta().convertToDouble();
  return success();
}

LogicalResult KVAppendOp::verify() {
  KVCacheType cache = getCache().getType();
  int64_t width = cache.getKvHeads() * cache.getHeadDim();
  // I64Attr getters are unsigned: read the layer as signed so -1 reports as -1.
  int64_t layer = static_cast<int64_t>(getLayer());
  if (layer < 0 || layer >= cache.getLayers())
    return emitOpError() << "expects layer in [0, " << cache.getLayers() << "), got " << layer;
  if (failed(checkRank(*this, "k", getK(), 2)) || failed(checkRank(*this, "v", getV(), 2)) ||
      failed(checkDim(*this, "the width of k (kv_heads x head_dim)", width, lastDim(getK()))) ||
      failed(checkDim(*this, "the width of v (kv_heads x head_dim)", width, lastDim(getV()))) ||
      failed(checkDim(*this, "v's rows", dim(getK(), 0), dim(getV(), 0))) ||
      failed(checkDim(*this, "the number of positions", dim(getK(), 0), dim(getPositions(), 0))))
    return failure();
  return checkSameElementType(*this, "k and v", getK(), getV());
}

LogicalResult AttentionOp::verify() {
  KVCacheType cache = getCache().getType();
  int64_t heads = static_cast<int64_t>(getNumHeads());
  int64_t layer = static_cast<int64_t>(getLayer());
  if (layer < 0 || layer >= cache.getLayers())
    return emitOpError() << "expects layer in [0, " << cache.getLayers() << "), got " << layer;
  if (heads <= 0 || heads % cache.getKvHeads() != 0)
    return emitOpError() << "expects num_heads to be a positive multiple of kv_heads "
                         << cache.getKvHeads() << ", got " << heads;
  if (failed(checkRows2D(*this, getQ(), getResult())) ||
      failed(checkDim(*this, "the width of q (num_heads x head_dim)", heads * cache.getHeadDim(),
                      lastDim(getQ()))) ||
      failed(checkDim(*this, "the result's width", lastDim(getQ()), lastDim(getResult()))) ||
      failed(checkDim(*this, "the number of positions", dim(getQ(), 0), dim(getPositions(), 0))))
    return failure();
  if (!(getScale().convertToFloat() > 0.0f))
    return emitOpError() << "expects scale > 0, got " << getScale().convertToFloat();
  return checkSameElementType(*this, "q and result", getQ(), getResult());
}

//===----------------------------------------------------------------------===//
// Router chain
//===----------------------------------------------------------------------===//

LogicalResult AddBiasOp::verify() { return checkRank(*this, "the input", getInput(), 2); }

LogicalResult AddBiasOp::verifySymbolUses(SymbolTableCollection &symbols) {
  return lookupDense(*this, symbols, getBiasAttr(), {lastDim(getInput())}, "experts");
}

LogicalResult TopKOp::verify() {
  if (failed(checkRows2D(*this, getInput(), getResult())))
    return failure();
  int64_t k = static_cast<int64_t>(getK()), experts = lastDim(getInput());
  if (k <= 0 || (!ShapedType::isDynamic(experts) && k > experts))
    return emitOpError() << "expects k in [1, " << dimStr(experts) << "], got " << k;
  return checkDim(*this, "the result's width (k)", k, lastDim(getResult()));
}

LogicalResult GatherOp::verify() {
  if (failed(checkRows2D(*this, getInput(), getResult())) ||
      failed(checkRank(*this, "the indices", getIndices(), 2)) ||
      failed(checkDim(*this, "the indices' rows", dim(getInput(), 0), dim(getIndices(), 0))))
    return failure();
  return checkDim(*this, "the result's width", lastDim(getIndices()), lastDim(getResult()));
}

LogicalResult RenormalizeOp::verify() { return checkRank(*this, "the input", getInput(), 2); }

//===----------------------------------------------------------------------===//
// Expert FFN pieces
//===----------------------------------------------------------------------===//

LogicalResult ExpertLinearOp::verify() {
  int64_t rank = shaped(getInput()).getRank();
  if (rank != 2 && rank != 3)
    return emitOpError() << "expects the input to be [T, K] or [T, k, K], got rank " << rank;
  if (failed(checkRank(*this, "the ids", getIds(), 2)) ||
      failed(checkRank(*this, "the result", getResult(), 3)) ||
      failed(checkDim(*this, "the ids' rows", dim(getInput(), 0), dim(getIds(), 0))) ||
      failed(checkDim(*this, "the result's rows", dim(getInput(), 0), dim(getResult(), 0))) ||
      failed(checkDim(*this, "the result's slots", dim(getIds(), 1), dim(getResult(), 1))))
    return failure();
  if (rank == 3 && failed(checkDim(*this, "the input's slots", dim(getIds(), 1),
                                   dim(getInput(), 1))))
    return failure();
  return checkSameElementType(*this, "input and result", getInput(), getResult());
}

LogicalResult ExpertLinearOp::verifySymbolUses(SymbolTableCollection &symbols) {
  return lookupQuant(*this, symbols, getWeightAttr(), true, lastDim(getInput()),
                     lastDim(getResult()));
}

LogicalResult CombineOp::verify() {
  if (failed(checkRank(*this, "the input", getInput(), 3)) ||
      failed(checkRank(*this, "the weights", getWeights(), 2)) ||
      failed(checkRank(*this, "the result", getResult(), 2)) ||
      failed(checkDim(*this, "the weights' rows", dim(getInput(), 0), dim(getWeights(), 0))) ||
      failed(checkDim(*this, "the weights' slots", dim(getInput(), 1), dim(getWeights(), 1))) ||
      failed(checkDim(*this, "the result's rows", dim(getInput(), 0), dim(getResult(), 0))) ||
      failed(checkDim(*this, "the result's width", dim(getInput(), 2), dim(getResult(), 1))))
    return failure();
  return checkSameElementType(*this, "input and result", getInput(), getResult());
}

//===----------------------------------------------------------------------===//
// Residual, head, sampling
//===----------------------------------------------------------------------===//

LogicalResult TakeLastOp::verify() {
  if (failed(checkRank(*this, "the input", getInput(), 2)) ||
      failed(checkRank(*this, "the result", getResult(), 2)) ||
      failed(checkDim(*this, "the result's rows", 1, dim(getResult(), 0))) ||
      failed(checkDim(*this, "the result's width", lastDim(getInput()), lastDim(getResult()))))
    return failure();
  return checkSameElementType(*this, "input and result", getInput(), getResult());
}

LogicalResult LMHeadOp::verify() { return checkRows2D(*this, getInput(), getResult()); }

LogicalResult LMHeadOp::verifySymbolUses(SymbolTableCollection &symbols) {
  return lookupDense(*this, symbols, getWeightAttr(), {lastDim(getResult()), lastDim(getInput())},
                     "vocab x hidden");
}

LogicalResult SampleOp::verify() {
  if (failed(checkRank(*this, "the logits", getLogits(), 2)))
    return failure();
  int64_t rows = dim(getLogits(), 0);
  if (failed(checkDim(*this, "the number of temperatures", rows, dim(getTemperature(), 0))) ||
      failed(checkDim(*this, "the number of top_p values", rows, dim(getTopP(), 0))) ||
      failed(checkDim(*this, "the number of seeds", rows, dim(getSeeds(), 0))))
    return failure();
  return checkDim(*this, "the number of sampled ids", rows, dim(getResult(), 0));
}

//===----------------------------------------------------------------------===//
// Fused ops
//===----------------------------------------------------------------------===//

LogicalResult RouteTopKOp::verify() {
  if (failed(checkRank(*this, "the input", getInput(), 2)) ||
      failed(checkRank(*this, "the weights", getWeights(), 2)) ||
      failed(checkRank(*this, "the ids", getIds(), 2)))
    return failure();
  int64_t k = static_cast<int64_t>(getK());
  if (k <= 0)
    return emitOpError() << "expects k >= 1, got " << k;
  if (failed(checkDim(*this, "the weights' rows", dim(getInput(), 0), dim(getWeights(), 0))) ||
      failed(checkDim(*this, "the ids' rows", dim(getInput(), 0), dim(getIds(), 0))) ||
      failed(checkDim(*this, "the weights' width (k)", k, lastDim(getWeights()))))
    return failure();
  return checkDim(*this, "the ids' width (k)", k, lastDim(getIds()));
}

LogicalResult RouteTopKOp::verifySymbolUses(SymbolTableCollection &symbols) {
  auto gate = lookupDense(*this, symbols, getGateAttr(),
                          {ShapedType::kDynamic, lastDim(getInput())}, "experts x hidden");
  if (failed(gate))
    return failure();
  int64_t experts = gate->getShape()[0];
  int64_t k = static_cast<int64_t>(getK());
  if (k > experts)
    return emitOpError() << "expects k <= the number of experts " << experts << ", got " << k;
  return lookupDense(*this, symbols, getBiasAttr(), {experts}, "experts");
}

LogicalResult DequantGemmOp::verify() {
  size_t n = getWeights().size();
  if (n == 0 || n != getResults().size())
    return emitOpError() << "expects one result per weight and at least one weight, got "
                         << n << " weight(s) and " << getResults().size() << " result(s)";
  if (failed(checkRank(*this, "the input", getInput(), 2)))
    return failure();
  for (Value r : getResults())
    if (failed(checkRank(*this, "every result", r, 2)) ||
        failed(checkDim(*this, "every result's rows", dim(getInput(), 0), dim(r, 0))) ||
        failed(checkSameElementType(*this, "input and results", getInput(), r)))
      return failure();
  return success();
}

LogicalResult DequantGemmOp::verifySymbolUses(SymbolTableCollection &symbols) {
  QWeightType first;
  for (auto [attr, result] : llvm::zip(getWeights(), getResults())) {
    auto sym = cast<FlatSymbolRefAttr>(attr);
    auto type = lookupQuant(*this, symbols, sym, false, lastDim(getInput()), lastDim(result));
    if (failed(type))
      return failure();
    if (!first) {
      first = *type;
      continue;
    }
    // One kernel runs all weights: they must share the quantization layout.
    if (type->getGroupSize() != first.getGroupSize() ||
        type->getScaleType() != first.getScaleType())
      return emitOpError() << "expects all weights to share group size and scale dtype ("
                           << first.getGroupSize() << ", " << first.getScaleType() << "), got "
                           << type->getGroupSize() << ", " << type->getScaleType() << " for "
                           << sym;
  }
  return success();
}

LogicalResult ExpertFfnOp::verify() {
  if (failed(checkRows2D(*this, getInput(), getResult())) ||
      failed(checkRank(*this, "the weights", getWeights(), 2)) ||
      failed(checkRank(*this, "the ids", getIds(), 2)) ||
      failed(checkDim(*this, "the weights' rows", dim(getInput(), 0), dim(getWeights(), 0))) ||
      failed(checkDim(*this, "the ids' rows", dim(getInput(), 0), dim(getIds(), 0))) ||
      failed(checkDim(*this, "the ids' width", lastDim(getWeights()), lastDim(getIds()))) ||
      failed(checkDim(*this, "the result's width", lastDim(getInput()), lastDim(getResult()))))
    return failure();
  return checkSameElementType(*this, "input and result", getInput(), getResult());
}

LogicalResult ExpertFfnOp::verifySymbolUses(SymbolTableCollection &symbols) {
  int64_t hidden = lastDim(getInput());
  auto w1 = lookupQuant(*this, symbols, getW1Attr(), true, hidden, ShapedType::kDynamic);
  if (failed(w1))
    return failure();
  int64_t inter = w1->getN(), experts = w1->getExperts();
  auto w3 = lookupQuant(*this, symbols, getW3Attr(), true, hidden, inter);
  auto w2 = succeeded(w3) ? lookupQuant(*this, symbols, getW2Attr(), true, inter, hidden)
                          : FailureOr<QWeightType>(failure());
  if (failed(w2))
    return failure();
  if (w3->getExperts() != experts || w2->getExperts() != experts)
    return emitOpError() << "expects w1, w3 and w2 to cover the same number of experts ("
                         << experts << "), got " << w3->getExperts() << " and "
                         << w2->getExperts();
  return success();
}

LogicalResult AddRmsNormOp::verify() {
  if (failed(checkRank(*this, "the input", getLhs(), 2)))
    return failure();
  if (!(getEps().convertToFloat() > 0.0f))
    return emitOpError() << "expects eps > 0, got " << getEps().convertToFloat();
  return success();
}

LogicalResult AddRmsNormOp::verifySymbolUses(SymbolTableCollection &symbols) {
  return lookupDense(*this, symbols, getWeightAttr(), {lastDim(getLhs())}, "hidden");
}

#define GET_OP_CLASSES
#include "dialects/moe/ir/MoEOps.cpp.inc"
