//===- MoEBlock.cpp - routing and the expert FFN -> exec --------------------===//
//
// decode (3 launches): ROUTE_TOPK with the gate GEMV inside -> MOE_W13 per slot -> MOE_W2 with
//                      the routing weights and the combine in its epilogue.
// prefill: GEMM_DENSE router logits -> ROUTE_TOPK -> MOE_ALIGN (group slots by expert) ->
//          grouped MOE_W13 -> grouped MOE_W2 (weighted, fp32 per slot) -> MOE_COMBINE.
// Expert parallel (docs/parallel.md): every rank routes over all experts, runs the expert kernels
// on its own experts only (E0/E: the experts [E0, E0 + E) its weights hold; the other slots add
// nothing), and an ALL_REDUCE of the bf16 [T, H] partial outputs sums the ranks' contributions.
//
//===----------------------------------------------------------------------===//
#include "compiler/lowering/Lowering.h"

#include "mlir/IR/BuiltinTypes.h"

#include "codegen/kernels/abi.h"

using namespace mlir;
using namespace mm;

namespace mm::compiler::lowering {

LogicalResult lowerRouteTopK(Lowering &l, moe::RouteTopKOp op) {
  auto gate = l.denseWeight(op.getGateAttr(), false, exec::WeightRole::dense, op);
  auto wdt = l.denseDtype(op.getGateAttr(), op);
  auto bias = l.denseWeight(op.getBiasAttr(), /*upcastF32=*/true, exec::WeightRole::bias, op);
  auto x = l.bufferOf(op.getInput(), op);
  if (failed(gate) || failed(wdt) || failed(bias) || failed(x))
    return failure();
  auto gateType = cast<moe::DenseWeightType>(l.lookupWeight(op.getGateAttr()).getWeightType());
  int64_t e = gateType.getShape()[0], h = width(op.getInput()), topk = op.getK();
  int64_t t = l.maxTokens();
  std::string ids = l.newBuffer("topk_ids", t * topk * 4);
  std::string weights = l.newBuffer("topk_weights", t * topk * 4);
  if (l.isDecode()) {
    auto k = l.kernel("ROUTE_TOPK",
                      {l.p("E", e), l.p("TOPK", topk), l.p("H", h), l.p("WDT", *wdt),
                       l.p("FUSED_GEMM", 1)},
                      op);
    if (failed(k))
      return failure();
    l.launch(*k, {l.buf(*x), l.weight(*gate), l.weight(*bias), l.buf(ids), l.buf(weights)}, op,
             "route");
  } else {
    auto gemm = l.kernel("GEMM_DENSE",
                         {l.p("K", h), l.p("N", e), l.p("WDT", *wdt), l.p("OUT", MM_DT_F32),
                          l.p("MDIM", 0), l.p("VARIANT", denseGemmVariant(*wdt, h))},
                         op);
    auto k = l.kernel("ROUTE_TOPK",
                      {l.p("E", e), l.p("TOPK", topk), l.p("H", h), l.p("WDT", *wdt),
                       l.p("FUSED_GEMM", 0)},
                      op);
    if (failed(gemm) || failed(k))
      return failure();
    std::string logits = l.newBuffer("router_logits", t * e * 4);
    l.launch(*gemm, {l.buf(*x), l.weight(*gate), l.buf(logits)}, op, "router");
    l.launch(*k, {l.buf(logits), l.none(), l.weight(*bias), l.buf(ids), l.buf(weights)}, op,
             "route");
  }
  l.bind(op.getIds(), ids);
  l.bind(op.getWeights(), weights);
  return success();
}

LogicalResult lowerExpertFfn(Lowering &l, moe::ExpertFfnOp op) {
  auto w13 = l.expertWeights(op.getW1Attr(), op.getW3Attr(), op);
  auto w2 = l.expertWeights(op.getW2Attr(), FlatSymbolRefAttr(), op);
  auto x = l.bufferOf(op.getInput(), op);
  auto ids = l.bufferOf(op.getIds(), op);
  auto weights = l.bufferOf(op.getWeights(), op);
  if (failed(w13) || failed(w2) || failed(x) || failed(ids) || failed(weights))
    return failure();
  auto w1Type = cast<moe::QWeightType>(l.lookupWeight(op.getW1Attr()).getWeightType());
  // e: the experts this rank holds (all of them unless expert parallel), from e0 on.
  const Lowering::ExpertRange local = l.localExperts(w1Type.getExperts());
  const bool ep = l.ep() > 1;
  int64_t h = width(op.getInput()), inter = w1Type.getN(), e = local.count, e0 = local.first;
  int64_t topk = width(op.getIds()), g = w13->group, t = l.maxTokens();
  bool grouped = !l.isDecode();
  // Prefill: the grouped GEMMs on the v2 W4 core (GROUPED = 2).
  auto common = [&](int64_t groupedFlag) {
    SmallVector<NamedAttribute> p{l.p("H", h),        l.p("I", inter), l.p("E", e),
                                  l.p("TOPK", topk), l.p("G", g),      l.p("GROUPED", groupedFlag)};
    if (groupedFlag == 2 && l.options().prefillTileRows > 0)
      p.push_back(l.p("BM", l.options().prefillTileRows));
    if (ep)
      p.push_back(l.p("E0", e0));
    return p;
  };
  Attribute offsets = l.none(), sorted = l.none();
  if (grouped) {
    SmallVector<NamedAttribute> pa{l.p("E", e), l.p("TOPK", topk)};
    if (ep)
      pa.push_back(l.p("E0", e0));
    auto align = l.kernel("MOE_ALIGN", pa, op);
    if (failed(align))
      return failure();
    std::string off = l.newBuffer("expert_offsets", (e + 1) * 4);
    std::string srt = l.newBuffer("sorted_slots", t * topk * 4);
    l.launch(*align, {l.buf(*ids), l.buf(off), l.buf(srt)}, op, "moe_align");
    offsets = l.buf(off);
    sorted = l.buf(srt);
  }
  SmallVector<NamedAttribute> p13 = common(grouped ? 2 : 0);
  p13.push_back(l.p("QL", w13->ql));
  auto k13 = l.kernel("MOE_W13", p13, op);
  SmallVector<NamedAttribute> p2 = common(grouped ? 2 : 0);
  p2.push_back(l.p("COMBINE", grouped ? 0 : 1));
  p2.push_back(l.p("QL", w2->ql));
  auto k2 = l.kernel("MOE_W2", p2, op);
  if (failed(k13) || failed(k2))
    return failure();
  std::string act = l.newBuffer("expert_act", t * topk * inter * 2);
  l.launch(*k13,
           {l.buf(*x), l.weight(w13->qweight), l.weight(w13->scales), l.buf(*ids), offsets, sorted,
            l.buf(act)},
           op, "moe_w13");
  std::string out = l.newBuffer("moe_out", t * h * 2);
  if (grouped) {
    // Under expert parallelism the other ranks' slots of `expert_out` are never written: the
    // combine reads `ids` and sums only this rank's (EL = its expert count).
    SmallVector<NamedAttribute> pc{l.p("H", h), l.p("TOPK", topk)};
    if (ep)
      pc.append({l.p("E0", e0), l.p("EL", e)});
    auto combine = l.kernel("MOE_COMBINE", pc, op);
    if (failed(combine))
      return failure();
    std::string slots = l.newBuffer("expert_out", t * topk * h * 4);
    l.launch(*k2,
             {l.buf(act), l.weight(w2->qweight), l.weight(w2->scales), l.buf(*ids),
              l.buf(*weights), offsets, sorted, l.buf(slots)},
             op, "moe_w2");
    l.launch(*combine, {l.buf(slots), l.buf(out), ep ? l.buf(*ids) : l.none()}, op,
             "moe_combine");
  } else {
    l.launch(*k2,
             {l.buf(act), l.weight(w2->qweight), l.weight(w2->scales), l.buf(*ids),
              l.buf(*weights), offsets, sorted, l.buf(out)},
             op, "moe_w2");
  }
  // Each rank holds the sum over its experts' slots; the ranks' sums add up to the whole MoE
  // output (fixed rank order, so every rank gets the same bits).
  if (ep && failed(l.allReduce(out, h, MM_DT_BF16, op, "moe_all_reduce")))
    return failure();
  l.bind(op.getResult(), out);
  return success();
}

} // namespace mm::compiler::lowering
