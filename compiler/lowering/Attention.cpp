//===- Attention.cpp - projections, q/k norm + RoPE + KV write, attention ---===//
//
// qkv = dequant_gemm(x, [q, k, v])          -> GEMM_W4 over the N-concatenated weight
// qk_norm -> rope -> kv_append              -> QK_NORM_ROPE_KV (one launch, at the kv_append)
// attention                                 -> prefill: ATTENTION over the paged cache (the
//                                              tensor-core flash variant 3); decode:
//                                              ATTENTION_DECODE split + combine
// Tensor parallel (tp > 1, docs/parallel.md): each rank lowers its heads. q|k|v is
// column-parallel, the q/k norms' sums of squares are all-reduced (the norm spans every head),
// o_proj is row-parallel and its output all-reduced.
//
//===----------------------------------------------------------------------===//
#include "compiler/lowering/Lowering.h"

#include <algorithm>

#include "mlir/IR/BuiltinTypes.h"

#include "codegen/kernels/abi.h"

using namespace mlir;
using namespace mm;

namespace mm::compiler::lowering {

static int64_t kvDtypeCode(moe::KVCacheType cache) {
  return cache.getDtype().isBF16() ? MM_DT_BF16 : MM_DT_FP8E4M3;
}

LogicalResult lowerDequantGemm(Lowering &l, moe::DequantGemmOp op) {
  SmallVector<FlatSymbolRefAttr> syms;
  for (Attribute a : op.getWeights())
    syms.push_back(cast<FlatSymbolRefAttr>(a));
  if (syms.size() != 1 && syms.size() != 3)
    return op.emitOpError() << "lowers one weight or a merged q|k|v triple, got " << syms.size();
  // o_proj (the projection of the attention output) is row-parallel; q|k|v column-parallel.
  const bool oProj = syms.size() == 1 && op.getInput().getDefiningOp<moe::AttentionOp>();
  const TpSplit split = syms.size() == 3 ? TpSplit::Columns : oProj ? TpSplit::Rows : TpSplit::None;
  auto w = l.linearWeights(syms, op, split);
  auto x = l.bufferOf(op.getInput(), op);
  if (failed(w) || failed(x))
    return failure();
  // The bandwidth kernel serves decode up to 16 rows; prefill uses the mma.sync tiles of the v2
  // core (B dequantized once per block into shared memory).
  int64_t variant = l.isDecode() && l.maxTokens() <= 16 ? 0 : 2;
  SmallVector<NamedAttribute> params{l.p("K", w->k), l.p("N", w->n), l.p("G", w->group),
                                     l.p("OUT", MM_DT_BF16), l.p("VARIANT", variant), l.p("MDIM", 0),
                                     l.p("QL", w->ql)};
  if (variant == 2 && l.options().prefillTileRows > 0)
    params.push_back(l.p("BM", l.options().prefillTileRows));
  auto k = l.kernel("GEMM_W4", params, op);
  if (failed(k))
    return failure();
  bool qkv = syms.size() == 3;
  std::string y = l.newBuffer(qkv ? "qkv" : "proj", l.maxTokens() * w->n * 2);
  l.launch(*k, {l.buf(*x), l.weight(w->qweight), l.weight(w->scales), l.buf(y)}, op,
           qkv ? "qkv" : "proj");
  // Each rank's o_proj output is its heads' share of the sum: all-reduce it.
  if (l.tp() > 1 && split == TpSplit::Rows && failed(l.allReduce(y, w->n, MM_DT_BF16, op, "proj_all_reduce")))
    return failure();
  // q, k and v are column ranges of one buffer; only QK_NORM_ROPE_KV reads them (checked there).
  for (Value r : op.getResults())
    l.bind(r, y);
  return success();
}

LogicalResult lowerLinear(Lowering &l, moe::LinearOp op) {
  auto w = l.denseWeight(op.getWeightAttr(), false, exec::WeightRole::dense, op);
  auto wdt = l.denseDtype(op.getWeightAttr(), op);
  auto x = l.bufferOf(op.getInput(), op);
  if (failed(w) || failed(wdt) || failed(x))
    return failure();
  bool f32 = cast<ShapedType>(op.getResult().getType()).getElementType().isF32();
  int64_t n = width(op.getResult());
  auto k = l.kernel("GEMM_DENSE",
                    {l.p("K", width(op.getInput())), l.p("N", n), l.p("WDT", *wdt),
                     l.p("OUT", f32 ? MM_DT_F32 : MM_DT_BF16), l.p("MDIM", 0),
                     l.p("VARIANT", denseGemmVariant(*wdt, width(op.getInput())))},
                    op);
  if (failed(k))
    return failure();
  std::string y = l.newBuffer("linear", l.maxTokens() * n * (f32 ? 4 : 2));
  l.launch(*k, {l.buf(*x), l.weight(*w), l.buf(y)}, op, "linear");
  l.bind(op.getResult(), y);
  return success();
}

LogicalResult lowerKVAppend(Lowering &l, moe::KVAppendOp op) {
  auto rope = op.getK().getDefiningOp<moe::RopeOp>();
  auto norm = rope ? rope.getQ().getDefiningOp<moe::QKNormOp>() : nullptr;
  auto gemm = norm ? norm.getQ().getDefiningOp<moe::DequantGemmOp>() : nullptr;
  if (!rope || !norm || !gemm || gemm.getNumResults() != 3 ||
      rope.getK() != norm.getKOut() || norm.getQ() != gemm.getResult(0) ||
      norm.getK() != gemm.getResult(1) || op.getV() != gemm.getResult(2))
    return op.emitOpError()
           << "expects k = rope(qk_norm(q, k)) and v from one merged q|k|v dequant_gemm "
              "(run mm-moe-fuse: moe-fuse-dequant-gemm and moe-merge-qkv)";
  for (Value q : {gemm.getResult(0), gemm.getResult(1)})
    for (Operation *user : q.getUsers())
      if (user != norm)
        return user->emitOpError() << "reads a column range of the merged q|k|v projection; "
                                      "only qk_norm may";
  auto qkv = l.bufferOf(gemm.getResult(0), op);
  const int64_t tp = l.tp();
  auto normWeight = [&](FlatSymbolRefAttr sym) {
    return tp > 1 ? l.rankSlice(sym, exec::WeightRole::norm, op)
                  : l.denseWeight(sym, false, exec::WeightRole::norm, op);
  };
  auto qn = normWeight(norm.getQWeightAttr());
  auto kn = normWeight(norm.getKWeightAttr());
  auto wdt = l.denseDtype(norm.getQWeightAttr(), op);
  if (failed(qkv) || failed(qn) || failed(kn) || failed(wdt))
    return failure();
  auto cache = cast<moe::KVCacheType>(op.getCache().getType());
  int64_t d = rope.getHeadDim(), kvdt = kvDtypeCode(cache);
  int64_t layer = op.getLayer();
  const int64_t nq = width(norm.getQ()) / d / tp, nkv = width(norm.getK()) / d / tp;
  auto params = [&](int64_t stats) {
    SmallVector<NamedAttribute> p{l.p("NQ", nq), l.p("NKV", nkv), l.p("D", d),
                                  l.p("DR", rope.getRotaryDim()),
                                  l.pf("THETA", rope.getTheta().convertToDouble()),
                                  l.pf("EPS", norm.getEps().convertToDouble()), l.p("WDT", *wdt),
                                  l.p("KVDT", kvdt), l.p("BLOCK", l.options().kvBlockSize),
                                  l.p("MAX_BLOCKS", l.maxBlocksPerSeq())};
    if (tp > 1) {
      p.push_back(l.p("TP", tp));
      p.push_back(l.p("STATS", stats));
    }
    // Decode: blocks of 8 heads (8 per token for MiniMax-M2's 64 q|k|v heads) instead of one
    // block per token on one SM; prefill has a block per token on every SM already.
    if (const int64_t split = (nq + 2 * nkv) / 8; l.isDecode() && split > 1)
      p.push_back(l.p("SPLIT", split));
    return p;
  };
  auto k = l.kernel("QK_NORM_ROPE_KV", params(0), op);
  if (failed(k))
    return failure();
  bool fp8 = kvdt == MM_DT_FP8E4M3;
  std::string q = l.newBuffer("q", l.maxTokens() * nq * d * 2);
  Attribute sumsq = l.none();
  SmallVector<Attribute> operands{
      l.buf(*qkv), l.weight(*qn), l.weight(*kn), l.input("positions"),
      l.input("seq_slots"), l.input("block_tables"), l.kv(layer, "k"), l.kv(layer, "v"),
      fp8 ? l.kv(layer, "k_scale") : l.none(), fp8 ? l.kv(layer, "v_scale") : l.none(),
      l.buf(q), sumsq};
  if (tp > 1) {
    // The norms span every rank's heads: this rank's sums of squares, all-reduced, then the norm.
    std::string ss = l.newBuffer("qk_sumsq", l.maxTokens() * 2 * 4);
    operands.back() = l.buf(ss);
    auto stats = l.kernel("QK_NORM_ROPE_KV", params(1), op);
    if (failed(stats))
      return failure();
    l.launch(*stats, operands, op, "qk_sumsq");
    if (failed(l.allReduce(ss, 2, MM_DT_F32, op, "qk_sumsq_all_reduce")))
      return failure();
  }
  l.launch(*k, operands, op, "qk_norm_rope_kv");
  l.bind(rope.getQOut(), q);
  return success();
}

LogicalResult lowerAttention(Lowering &l, moe::AttentionOp op) {
  auto q = l.bufferOf(op.getQ(), op);
  if (failed(q))
    return failure();
  auto cache = cast<moe::KVCacheType>(op.getCache().getType());
  // A tensor-parallel rank attends with its own heads (and holds only its kv heads' cache).
  int64_t nq = op.getNumHeads() / l.tp(), d = cache.getHeadDim(), kvdt = kvDtypeCode(cache);
  int64_t nkv = cache.getKvHeads() / l.tp();
  int64_t layer = op.getLayer();
  bool decode = l.isDecode();
  bool fp8 = kvdt == MM_DT_FP8E4M3;
  std::string o = l.newBuffer("attn", l.maxTokens() * nq * d * 2);
  auto common = [&](int64_t variant) {
    return SmallVector<NamedAttribute>{
        l.p("NQ", nq),         l.p("NKV", nkv),
        l.p("D", d),           l.p("KVDT", kvdt),
        l.p("BLOCK", l.options().kvBlockSize), l.p("MAX_BLOCKS", l.maxBlocksPerSeq()),
        l.p("VARIANT", variant)};
  };
  if (!decode) {
    // Prefill: the tensor-core flash kernel (VARIANT 3); enough (token, head) work per launch
    // already, so one split. VARIANT 0 (FMA) stays as the reference-shaped kernel the GPU tests
    // compare against.
    auto params = common(3);
    auto k = l.kernel("ATTENTION", params, op);
    if (failed(k))
      return failure();
    l.launch(*k,
             {l.buf(*q), l.input("positions"), l.input("seq_slots"), l.input("block_tables"),
              l.kv(layer, "k"), l.kv(layer, "v"), fp8 ? l.kv(layer, "k_scale") : l.none(),
              fp8 ? l.kv(layer, "v_scale") : l.none(), l.buf(o)},
             op, "attention");
    l.bind(op.getResult(), o);
    return success();
  }
  // Decode: ATTENTION_DECODE splits each token's own context (at least 16 keys per split, at
  // most W(T) = min(SPLITS, ceil(256 / T)) splits) so a batch of one still fills the GPU at long
  // context, then a combine launch merges the partial softmaxes (it returns at once for tokens
  // that needed one split). SPLITS: one split per 16 keys of the longest context, at most 256.
  int64_t splits = std::clamp<int64_t>((l.options().maxSeqLen + 15) / 16, 1, 256);
  // The scratch holds W(T) splits per token: sized for the T that needs the most.
  int64_t partialRows = 0;
  for (int64_t t = 1; t <= l.maxTokens(); ++t)
    partialRows = std::max(partialRows, t * std::min<int64_t>(splits, (256 + t - 1) / t));
  auto params = [&](int64_t variant) {
    auto p = common(variant);
    p.push_back(l.p("SPLITS", splits));
    return p;
  };
  auto k = l.kernel("ATTENTION_DECODE", params(0), op);
  if (failed(k))
    return failure();
  // Decode always names the split-K scratch (kinds.def: VARIANT 1 has the slot), even with one
  // split, where the kernel writes `o` directly and never touches it (a few hundred KB).
  Attribute partial = l.none();
  if (splits > 1) // [T, NQ, W(T), D + 2] f32: unnormalized output, running max and sum
    partial = l.buf(l.newBuffer("attn_partial", partialRows * nq * (d + 2) * 4));
  SmallVector<Attribute> operands{
      l.buf(*q),       l.input("positions"), l.input("seq_slots"),
      l.input("block_tables"), l.kv(layer, "k"), l.kv(layer, "v"),
      fp8 ? l.kv(layer, "k_scale") : l.none(), fp8 ? l.kv(layer, "v_scale") : l.none(),
      partial,         l.buf(o)};
  l.launch(*k, operands, op, "attention");
  if (splits > 1) {
    auto combine = l.kernel("ATTENTION_DECODE", params(1), op);
    if (failed(combine))
      return failure();
    l.launch(*combine, operands, op, "attention_combine");
  }
  l.bind(op.getResult(), o);
  return success();
}

} // namespace mm::compiler::lowering
