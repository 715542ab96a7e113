//===- Lowering.h - shared state of the moe -> exec lowering ----*- C++ -*-===//
//
// One `Lowering` object walks the fused moe module once. It owns the exec module being built,
// turns weight symbols into device weights (with their load-time transforms), declares each
// distinct kernel specialization once, and gives every SSA activation an arena buffer. The op
// families (Norms, Attention, MoEBlock) are lowered by free functions in their own files.
//
//===----------------------------------------------------------------------===//
#pragma once

#include <array>
#include <map>
#include <string>

#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/DenseSet.h"
#include "llvm/ADT/StringMap.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/BuiltinTypes.h"

#include "compiler/lowering/MoEToExec.h"
#include "dialects/exec/ir/ExecOps.h"
#include "dialects/moe/ir/MoEOps.h"

#include "codegen/kernels/specialize.h"

namespace mm::compiler::lowering {

// Device weights of one quantized linear (or several concatenated along N).
struct QuantWeights {
  std::string qweight, scales;
  int64_t k = 0, n = 0, group = 0;
  int64_t ql = 0;   // qweight layout, the kernels' QL (kinds.def): 0 rows, 1 strips of 32 columns
};

// What the specializer decided for one kernel: the complete parameters (defaults and derived
// tile constants included), thread-block shape, dynamic shared memory and grid.
struct Geometry {
  mlir::DictionaryAttr params;
  std::array<int64_t, 3> block{1, 1, 1};
  int64_t smem = 0;
  std::array<mm::exec::DimAttr, 3> grid;
};

// Exec kernel params (integers and floats) in the form codegen/kernels takes, and back.
mm::kernels::Params toKernelParams(mlir::DictionaryAttr params);
mlir::DictionaryAttr toParamsAttr(mlir::MLIRContext *ctx, const mm::kernels::Params &params);

// Specializes a kernel (codegen/kernels/specialize.h) — the one time it happens: the exec IR
// records the result (KernelGeometry.cpp).
mlir::FailureOr<Geometry> kernelGeometry(mlir::MLIRContext *ctx, mm::kernels::Kind kind,
                                         mlir::DictionaryAttr params, mlir::Location loc);

// How a tensor-parallel rank takes its part of a quantized linear (docs/parallel.md).
enum class TpSplit {
  None,    // replicated: every rank holds the whole weight
  Columns, // column-parallel: each source's N outputs split in tp equal ranges (q|k|v by heads)
  Rows,    // row-parallel: the K inputs split in tp ranges (o_proj); the partial sums are
           // all-reduced after the product
};

class Lowering {
public:
  Lowering(mlir::ModuleOp src, mlir::ModuleOp dst, const LoweringOptions &opts);

  const LoweringOptions &options() const { return opts; }
  mlir::MLIRContext *context() { return ctx; }
  mlir::OpBuilder &builder() { return b; }

  // --- weights --------------------------------------------------------------
  // A 16-bit tensor as stored (copy), or upcast to f32 (the router bias), with what it is to its
  // kernel (recorded in the plan: the runtime never guesses it).
  mlir::FailureOr<std::string> denseWeight(mlir::FlatSymbolRefAttr sym, bool upcastF32,
                                           mm::exec::WeightRole role, mlir::Operation *user);
  // The dtype code (MM_DT_*) of a 16-bit weight symbol.
  mlir::FailureOr<int64_t> denseDtype(mlir::FlatSymbolRefAttr sym, mlir::Operation *user);
  // Quantized linears concatenated along N (one symbol: plain copy).
  mlir::FailureOr<QuantWeights> linearWeights(llvm::ArrayRef<mlir::FlatSymbolRefAttr> syms,
                                              mlir::Operation *user,
                                              TpSplit split = TpSplit::None);
  // This rank's 1/tp of a 16-bit vector (the q/k norm weights of its heads).
  mlir::FailureOr<std::string> rankSlice(mlir::FlatSymbolRefAttr sym, mm::exec::WeightRole role,
                                         mlir::Operation *user);
  // Per-expert linears stacked along E; with `w3`, w1|w3 concatenated along N per expert. Under
  // expert parallelism only this rank's experts (localExperts()) are stacked.
  mlir::FailureOr<QuantWeights> expertWeights(mlir::FlatSymbolRefAttr w1,
                                              mlir::FlatSymbolRefAttr w3, mlir::Operation *user);
  mm::moe::WeightOp lookupWeight(mlir::FlatSymbolRefAttr sym) const;

  // --- kernels and launches -------------------------------------------------
  // Declares (once) the specialization kind+params; returns its symbol.
  mlir::FailureOr<mlir::FlatSymbolRefAttr> kernel(llvm::StringRef kind,
                                                  llvm::ArrayRef<mlir::NamedAttribute> params,
                                                  mlir::Operation *user);
  const Geometry &geometry(mlir::FlatSymbolRefAttr kernel) const;
  void launch(mlir::FlatSymbolRefAttr kernel, llvm::ArrayRef<mlir::Attribute> operands,
              mlir::Operation *src, llvm::StringRef note);

  // --- tensor and expert parallel (docs/parallel.md) -------------------------
  int64_t tp() const { return opts.tp; }
  int64_t ep() const { return opts.ep; }
  int64_t ranks() const { return opts.ranks(); }
  int64_t rank() const { return rankIndex; }
  // The experts [first, first + count) this rank holds out of `experts` (all of them when ep = 1).
  struct ExpertRange { int64_t first, count; };
  ExpertRange localExperts(int64_t experts) const {
    const int64_t count = experts / opts.ep;
    return {opts.ep > 1 ? rankIndex * count : 0, count};
  }
  // The programs begun after this belong to rank r.
  void beginRank(int64_t r) { rankIndex = r; }
  // ALL_REDUCE of a [rows, n] buffer over all the plan's ranks (dtype code dt: bf16 or f32).
  mlir::LogicalResult allReduce(const std::string &buffer, int64_t n, int64_t dt,
                                mlir::Operation *src, llvm::StringRef note);

  // --- programs and buffers -------------------------------------------------
  void beginProgram(llvm::StringRef name, int64_t maxTokens, bool decode);
  bool isDecode() const { return decode; }
  int64_t maxTokens() const { return tokens; }
  int64_t maxBlocksPerSeq() const {
    return (opts.maxSeqLen + opts.kvBlockSize - 1) / opts.kvBlockSize;
  }
  std::string newBuffer(llvm::StringRef hint, int64_t bytes);
  void bind(mlir::Value v, const std::string &buffer) { buffers[v] = buffer; }
  mlir::FailureOr<std::string> bufferOf(mlir::Value v, mlir::Operation *user);

  // Operand attributes.
  mlir::Attribute buf(llvm::StringRef name);
  mlir::Attribute weight(llvm::StringRef name);
  mlir::Attribute input(llvm::StringRef name);
  mlir::Attribute kv(int64_t layer, llvm::StringRef pool);
  mlir::Attribute none();

  // Parameter helpers.
  mlir::NamedAttribute p(llvm::StringRef name, int64_t v);
  mlir::NamedAttribute pf(llvm::StringRef name, double v);

  // Ops lowered together with an earlier op (take_last + rms_norm after a final add).
  llvm::DenseSet<mlir::Operation *> handled;

  // Layer index from an op's location ("model.layers.N"), -1 if none.
  static int64_t layerOf(mlir::Operation *op);

private:
  mlir::FailureOr<std::string> declareWeight(const std::string &name, llvm::StringRef dtype,
                                             llvm::ArrayRef<int64_t> shape,
                                             llvm::StringRef transform,
                                             llvm::ArrayRef<std::string> sources,
                                             llvm::StringRef category, mm::exec::WeightRole role,
                                             int64_t fanIn, int64_t concatAxis = -1,
                                             llvm::ArrayRef<int64_t> slices = {}, int64_t ql = 0);
  std::string tensorName(mm::moe::WeightOp w, int64_t expert) const;

  mlir::ModuleOp src, dst;
  LoweringOptions opts;
  mlir::MLIRContext *ctx;
  mlir::OpBuilder b;
  mlir::OpBuilder programBuilder;
  llvm::StringMap<bool> declaredWeights;
  std::map<std::string, mlir::FlatSymbolRefAttr> kernelsByKey;
  llvm::StringMap<Geometry> geometries;
  llvm::StringMap<int64_t> kindCounts;
  llvm::DenseMap<mlir::Value, std::string> buffers;
  llvm::StringMap<int64_t> bufferNames;
  mm::exec::ProgramOp program;
  bool decode = false;
  int64_t tokens = 0;
  int64_t rankIndex = 0;
};

// The row width (last dim) of an activation tensor.
inline int64_t width(mlir::Value v) {
  return mlir::cast<mlir::ShapedType>(v.getType()).getShape().back();
}

// GEMM_DENSE's variant for a many-row (prefill) GEMM: the tensor-core tiles (2) where the weights
// are bf16 and K a multiple of their 32-k step, else the fp32 FMA tiles (1) (codegen/kernels/
// gemm_dense.cuh).
inline int64_t denseGemmVariant(int64_t wdt, int64_t k) { return wdt == 0 && k % 32 == 0 ? 2 : 1; }

// Op-family lowerings (one file each). Each returns failure after emitting a diagnostic.
mlir::LogicalResult lowerEmbed(Lowering &l, mm::moe::EmbedOp op);
mlir::LogicalResult lowerRmsNorm(Lowering &l, mm::moe::RmsNormOp op);
mlir::LogicalResult lowerAddRmsNorm(Lowering &l, mm::moe::AddRmsNormOp op);
mlir::LogicalResult lowerFinalAdd(Lowering &l, mm::moe::AddOp op);
mlir::LogicalResult lowerLMHead(Lowering &l, mm::moe::LMHeadOp op);
mlir::LogicalResult lowerDequantGemm(Lowering &l, mm::moe::DequantGemmOp op);
mlir::LogicalResult lowerLinear(Lowering &l, mm::moe::LinearOp op);
mlir::LogicalResult lowerKVAppend(Lowering &l, mm::moe::KVAppendOp op);
mlir::LogicalResult lowerAttention(Lowering &l, mm::moe::AttentionOp op);
mlir::LogicalResult lowerRouteTopK(Lowering &l, mm::moe::RouteTopKOp op);
mlir::LogicalResult lowerExpertFfn(Lowering &l, mm::moe::ExpertFfnOp op);

} // namespace mm::compiler::lowering
