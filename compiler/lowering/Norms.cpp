//===- Norms.cpp - embedding, RMSNorm, residual adds, lm_head -> exec -------===//
//
// Every residual add of the model is fused into an RMS_NORM launch (RESIDUAL=1 updates the
// residual stream in place); the last norm of prefill gathers only the rows whose logits are
// needed (GATHER=1 over the runtime input `logit_rows`).
//
//===----------------------------------------------------------------------===//
#include "compiler/lowering/Lowering.h"

#include "mlir/IR/BuiltinTypes.h"

#include "codegen/kernels/abi.h"

using namespace mlir;
using namespace mm;

namespace mm::compiler::lowering {

// Rows of the logits programs compute: prefill only the last token, decode every sequence.
static int64_t maxLogitRows(Lowering &l) { return l.isDecode() ? l.maxTokens() : 1; }

LogicalResult lowerEmbed(Lowering &l, moe::EmbedOp op) {
  auto table = l.denseWeight(op.getWeightAttr(), /*upcastF32=*/false, exec::WeightRole::embedding, op);
  auto wdt = l.denseDtype(op.getWeightAttr(), op);
  if (failed(table) || failed(wdt))
    return failure();
  auto shape = cast<moe::DenseWeightType>(l.lookupWeight(op.getWeightAttr()).getWeightType())
                   .getShape();
  auto k = l.kernel("EMBED", {l.p("V", shape[0]), l.p("H", shape[1]), l.p("WDT", *wdt)}, op);
  if (failed(k))
    return failure();
  std::string y = l.newBuffer("h", l.maxTokens() * shape[1] * 2);
  l.launch(*k, {l.input("tokens"), l.weight(*table), l.buf(y)}, op, "embed");
  l.bind(op.getResult(), y);
  return success();
}

// RMS_NORM with everything spelled out; `rows` is the source of GATHER.
static LogicalResult emitNorm(Lowering &l, Operation *op, Value x, Value r,
                              FlatSymbolRefAttr weight, double eps, bool gather, Value result,
                              StringRef note) {
  auto w = l.denseWeight(weight, false, exec::WeightRole::norm, op);
  auto wdt = l.denseDtype(weight, op);
  auto xb = l.bufferOf(x, op);
  if (failed(w) || failed(wdt) || failed(xb))
    return failure();
  Attribute rAttr = l.none();
  if (r) {
    auto rb = l.bufferOf(r, op);
    if (failed(rb))
      return failure();
    rAttr = l.buf(*rb);
  }
  int64_t n = width(x);
  auto k = l.kernel("RMS_NORM",
                    {l.p("N", n), l.pf("EPS", eps), l.p("WDT", *wdt), l.p("RESIDUAL", r ? 1 : 0),
                     l.p("GATHER", gather ? 1 : 0)},
                    op);
  if (failed(k))
    return failure();
  int64_t rows = gather ? maxLogitRows(l) : l.maxTokens();
  std::string y = l.newBuffer("normed", rows * n * 2);
  l.launch(*k, {l.buf(*xb), rAttr, l.weight(*w), gather ? l.input("logit_rows") : l.none(),
                l.buf(y)},
           op, note);
  l.bind(result, y);
  return success();
}

LogicalResult lowerRmsNorm(Lowering &l, moe::RmsNormOp op) {
  Value x = op.getInput();
  bool gather = false;
  if (auto last = x.getDefiningOp<moe::TakeLastOp>()) {
    x = last.getInput();
    gather = true;
  }
  return emitNorm(l, op, x, Value(), op.getWeightAttr(), op.getEps().convertToDouble(), gather,
                  op.getResult(), gather ? "final_norm" : "norm");
}

// The residual stream is updated in place: the sum result aliases the lhs buffer, which is
// only sound when nothing reads the old residual after this op.
static LogicalResult checkLastUse(Operation *op, Value lhs) {
  for (Operation *user : lhs.getUsers())
    if (user != op && user->getBlock() == op->getBlock() && op->isBeforeInBlock(user))
      return op->emitOpError()
             << "the residual stream is read after the fused add; cannot update it in place";
  return success();
}

LogicalResult lowerAddRmsNorm(Lowering &l, moe::AddRmsNormOp op) {
  if (failed(checkLastUse(op, op.getLhs())))
    return failure();
  if (failed(emitNorm(l, op, op.getLhs(), op.getRhs(), op.getWeightAttr(),
                      op.getEps().convertToDouble(), false, op.getNormed(), "add_norm")))
    return failure();
  auto lhs = l.bufferOf(op.getLhs(), op);
  if (failed(lhs))
    return failure();
  l.bind(op.getSum(), *lhs);
  return success();
}

// add -> take_last -> rms_norm (the end of prefill): one RMS_NORM with RESIDUAL and GATHER.
LogicalResult lowerFinalAdd(Lowering &l, moe::AddOp op) {
  auto last = op->hasOneUse() ? dyn_cast<moe::TakeLastOp>(*op->user_begin()) : nullptr;
  auto norm = last && last->hasOneUse() ? dyn_cast<moe::RmsNormOp>(*last->user_begin()) : nullptr;
  if (!norm)
    return op.emitOpError() << "an unfused residual add can only precede take_last + rms_norm "
                               "(run mm-moe-fuse to fuse the others into add_rms_norm)";
  if (failed(checkLastUse(op, op.getLhs())))
    return failure();
  l.handled.insert(last);
  l.handled.insert(norm);
  return emitNorm(l, op, op.getLhs(), op.getRhs(), norm.getWeightAttr(),
                  norm.getEps().convertToDouble(), /*gather=*/true, norm.getResult(),
                  "final_norm");
}

LogicalResult lowerLMHead(Lowering &l, moe::LMHeadOp op) {
  auto w = l.denseWeight(op.getWeightAttr(), false, exec::WeightRole::dense, op);
  auto wdt = l.denseDtype(op.getWeightAttr(), op);
  auto x = l.bufferOf(op.getInput(), op);
  if (failed(w) || failed(wdt) || failed(x))
    return failure();
  int64_t k = width(op.getInput()), v = width(op.getResult());
  auto gemm = l.kernel("GEMM_DENSE",
                       {l.p("K", k), l.p("N", v), l.p("WDT", *wdt), l.p("OUT", MM_DT_F32),
                        l.p("MDIM", 1)},
                       op);
  auto sample = l.kernel("SAMPLE", {l.p("V", v)}, op);
  if (failed(gemm) || failed(sample))
    return failure();
  l.launch(*gemm, {l.buf(*x), l.weight(*w), l.input("logits")}, op, "lm_head");
  // Sampling is part of every program: the runtime reads `sampled`, or `logits` when it wants
  // the distribution (teacher forcing, --dump-logits).
  l.launch(*sample,
           {l.input("logits"), l.input("temperature"), l.input("top_k"), l.input("top_p"),
            l.input("seed"), l.input("sampled")},
           op, "sample");
  return success();
}

} // namespace mm::compiler::lowering
