//===- MoEDialect.cpp - the moe dialect, its types and their syntax -------===//
#include "dialects/moe/ir/MoEDialect.h"

#include "dialects/moe/ir/MoEOps.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/DialectImplementation.h"
#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;
using namespace mm::moe;

#include "dialects/moe/ir/MoEDialect.cpp.inc"

#define GET_TYPEDEF_CLASSES
#include "dialects/moe/ir/MoETypes.cpp.inc"

void MoEDialect::initialize() {
  addOperations<
#define GET_OP_LIST
#include "dialects/moe/ir/MoEOps.cpp.inc"
      >();
  addTypes<
#define GET_TYPEDEF_LIST
#include "dialects/moe/ir/MoETypes.cpp.inc"
      >();
}

//===----------------------------------------------------------------------===//
// !moe.qweight<[E x] K x N, bits = B, group = G, scale = T>
//===----------------------------------------------------------------------===//

Type QWeightType::parse(AsmParser &parser) {
  SMLoc loc = parser.getCurrentLocation();
  SmallVector<int64_t> dims;
  int64_t bits = 0, group = 0;
  Type scale;
  if (parser.parseLess() ||
      parser.parseDimensionList(dims, /*allowDynamic=*/false, /*withTrailingX=*/false) ||
      parser.parseComma() || parser.parseKeyword("bits") || parser.parseEqual() ||
      parser.parseInteger(bits) || parser.parseComma() || parser.parseKeyword("group") ||
      parser.parseEqual() || parser.parseInteger(group) || parser.parseComma() ||
      parser.parseKeyword("scale") || parser.parseEqual() || parser.parseType(scale) ||
      parser.parseGreater())
    return {};
  if (dims.size() != 2 && dims.size() != 3) {
    parser.emitError(loc) << "expected K x N or E x K x N dimensions, got " << dims.size()
                          << " dimension(s)";
    return {};
  }
  int64_t experts = dims.size() == 3 ? dims[0] : 0;
  return getChecked([&] { return parser.emitError(loc); }, parser.getContext(), experts,
                    dims[dims.size() - 2], dims.back(), bits, group, scale);
}

void QWeightType::print(AsmPrinter &printer) const {
  printer << "<";
  if (isPerExpert())
    printer << getExperts() << "x";
  printer << getK() << "x" << getN() << ", bits = " << getBits() << ", group = " << getGroupSize()
          << ", scale = " << getScaleType() << ">";
}

LogicalResult QWeightType::verify(function_ref<InFlightDiagnostic()> emitError, int64_t experts,
                                  int64_t k, int64_t n, int64_t bits, int64_t groupSize,
                                  Type scaleType) {
  if (experts < 0 || k <= 0 || n <= 0)
    return emitError() << "expected positive dimensions, got experts " << experts << ", K " << k
                       << ", N " << n;
  // GPTQ v1 packing as the checkpoints store it: 8 int4 values per i32 along K (qweight) and
  // along N (qzeros); only symmetric 4-bit is supported by the kernels.
  if (bits != 4)
    return emitError() << "expected bits = 4, got " << bits;
  if (groupSize <= 0 || k % groupSize != 0)
    return emitError() << "expected K (" << k << ") to be a multiple of the group size ("
                       << groupSize << ")";
  if (k % 8 != 0 || n % 8 != 0)
    return emitError() << "expected K and N to be multiples of 8 (int4 packing), got K " << k
                       << ", N " << n;
  if (!scaleType.isF16() && !scaleType.isBF16())
    return emitError() << "expected scale dtype f16 or bf16, got " << scaleType;
  return success();
}

//===----------------------------------------------------------------------===//
// !moe.dense_weight<D0 x D1 x T>
//===----------------------------------------------------------------------===//

Type DenseWeightType::parse(AsmParser &parser) {
  SMLoc loc = parser.getCurrentLocation();
  SmallVector<int64_t> dims;
  Type elementType;
  if (parser.parseLess() ||
      parser.parseDimensionList(dims, /*allowDynamic=*/false, /*withTrailingX=*/true) ||
      parser.parseType(elementType) || parser.parseGreater())
    return {};
  return getChecked([&] { return parser.emitError(loc); }, parser.getContext(), dims,
                    elementType);
}

void DenseWeightType::print(AsmPrinter &printer) const {
  printer << "<";
  for (int64_t d : getShape())
    printer << d << "x";
  printer << getElementType() << ">";
}

LogicalResult DenseWeightType::verify(function_ref<InFlightDiagnostic()> emitError,
                                      ArrayRef<int64_t> shape, Type elementType) {
  if (shape.size() != 1 && shape.size() != 2)
    return emitError() << "expected a 1-D or 2-D weight, got rank " << shape.size();
  for (int64_t d : shape)
    if (d <= 0)
      return emitError() << "expected positive dimensions, got " << d;
  if (!elementType.isBF16() && !elementType.isF16() && !elementType.isF32())
    return emitError() << "expected element type bf16, f16 or f32, got " << elementType;
  return success();
}

//===----------------------------------------------------------------------===//
// !moe.kv_cache<layers = L, kv_heads = H, head_dim = D, dtype = T>
//===----------------------------------------------------------------------===//

LogicalResult KVCacheType::verify(function_ref<InFlightDiagnostic()> emitError, int64_t layers,
                                  int64_t kvHeads, int64_t headDim, Type dtype) {
  if (layers <= 0 || kvHeads <= 0 || headDim <= 0)
    return emitError() << "expected positive layers, kv_heads and head_dim, got " << layers
                       << ", " << kvHeads << ", " << headDim;
  if (!dtype.isBF16() && !isa<Float8E4M3FNType>(dtype))
    return emitError() << "expected cache dtype bf16 or f8E4M3FN, got " << dtype;
  return success();
}
