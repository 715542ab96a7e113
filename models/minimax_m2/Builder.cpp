//===- Builder.cpp - MiniMax-M2 checkpoint -> moe dialect -----------------===//
//
// Model quirks that bite here (minimax-m2-spec.md section 3):
//  - q/k RMSNorm spans the whole projection (all heads), and runs BEFORE RoPE;
//  - RoPE is partial: only the first rotary_dim dims of each head (NeoX half split) rotate;
//  - the router is fp32: sigmoid scores, +bias only to select, unbiased renormalized weights,
//    no routed scaling factor;
//  - experts: w1 = gate, w3 = up, w2 = down.
//
//===----------------------------------------------------------------------===//
#include "models/minimax_m2/Builder.h"

#include <cmath>
#include <map>

#include "dialects/moe/ir/MoEOps.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Diagnostics.h"

using namespace mlir;
using namespace mm::moe;

namespace mm::minimax_m2 {
namespace {

class GraphBuilder {
public:
  GraphBuilder(MLIRContext &context, const ModelDesc &desc, const BuildOptions &options)
      : ctx(context), desc(desc), hp(desc.hp), options(options), b(&context),
        loc(FileLineColLoc::get(&context, desc.dir + "/config.json", 0, 0)) {}

  FailureOr<OwningOpRef<ModuleOp>> build() {
    OwningOpRef<ModuleOp> module = ModuleOp::create(loc);
    b.setInsertionPointToEnd(module->getBody());
    auto act = elementType(desc.activation_dtype, "the activation dtype");
    if (failed(act))
      return failure();
    actType = *act;
    Type kvDtype;
    if (options.kvCacheDtype == "bf16")
      kvDtype = b.getBF16Type();
    else if (options.kvCacheDtype == "fp8")
      kvDtype = Float8E4M3FNType::get(&ctx);
    else
      return emitError(loc) << "unknown KV-cache dtype '" << options.kvCacheDtype
                            << "' (expected bf16 or fp8)";
    kvType = KVCacheType::get(&ctx, hp.num_layers, hp.num_kv_heads, hp.head_dim, kvDtype);
    if (failed(declareWeights()))
      return failure();
    buildProgram("prefill", /*lastRowOnly=*/true);
    buildProgram("decode", /*lastRowOnly=*/false);
    return module;
  }

private:
  MLIRContext &ctx;
  const ModelDesc &desc;
  const HParams &hp;
  const BuildOptions &options;
  OpBuilder b;
  Location loc;
  Type actType;
  KVCacheType kvType;
  // (role, layer) -> weight symbol; layer -1 for model-level weights.
  std::map<std::pair<Role, int64_t>, FlatSymbolRefAttr> weights;
  std::map<std::pair<Role, int64_t>, bool> quantized;

  FailureOr<Type> elementType(DType dtype, StringRef what) {
    switch (dtype) {
    case DType::BF16: return Type(b.getBF16Type());
    case DType::F16: return Type(b.getF16Type());
    case DType::F32: return Type(b.getF32Type());
    default:
      return emitError(loc) << what << " is " << std::string(dtype_name(dtype))
                            << ", expected BF16, F16 or F32";
    }
  }

  std::string symbolName(Role role, int64_t layer) {
    if (layer < 0)
      return role_name(role);
    return "l" + std::to_string(layer) + "." + role_name(role);
  }

  void declare(Role role, int64_t layer, Type type, const std::string &tensor) {
    std::string name = symbolName(role, layer);
    WeightOp::create(b, loc, b.getStringAttr(name), TypeAttr::get(type), b.getStringAttr(tensor));
    weights[{role, layer}] = FlatSymbolRefAttr::get(&ctx, name);
  }

  // A 1-D or 2-D 16/32-bit tensor: "<prefix>.weight", or "<prefix>" (the router bias).
  LogicalResult declareDense(Role role, int64_t layer) {
    std::string prefix = tensor_prefix(role, layer, -1);
    const TensorInfo *t = desc.find(prefix + ".weight");
    if (!t)
      t = desc.find(prefix);
    if (!t)
      return emitError(loc) << "tensor '" << prefix << ".weight' is missing from the checkpoint";
    auto elt = elementType(t->dtype, "tensor '" + t->name + "'");
    if (failed(elt))
      return failure();
    auto type = DenseWeightType::getChecked([&] { return emitError(loc) << t->name << ": "; },
                                            &ctx, ArrayRef<int64_t>(t->shape), *elt);
    if (!type)
      return failure();
    declare(role, layer, type, t->name);
    return success();
  }

  // A Linear: int4 (qweight/qzeros/scales) when "<prefix>.qweight" exists, else 16-bit [N, K].
  LogicalResult declareLinear(Role role, int64_t layer) {
    const RoleInfo &info = role_info(role);
    LinearInfo li = desc.linear(role, layer, info.per_expert ? 0 : -1);
    std::string prefix = tensor_prefix(role, layer, info.per_expert ? 0 : -1);
    if (!li.quantized) {
      if (info.per_expert)
        return emitError(loc) << "expert linear '" << prefix
                              << "' is not quantized; experts must be int4 (qweight)";
      quantized[{role, layer}] = false;
      return declareDense(role, layer);
    }
    if (li.scales < 0)
      return emitError(loc) << "tensor '" << prefix << ".scales' is missing from the checkpoint";
    auto scale = elementType(desc.tensors[li.scales].dtype, "tensor '" + prefix + ".scales'");
    if (failed(scale))
      return failure();
    std::string tensor = prefix;
    int64_t experts = 0;
    if (info.per_expert) {
      // One symbol for all experts of the layer: the pattern keeps {E}, the type carries E.
      tensor = info.pattern;
      tensor.replace(tensor.find("{L}"), 3, std::to_string(layer));
      experts = hp.num_experts;
    }
    auto type = QWeightType::getChecked([&] { return emitError(loc) << prefix << ": "; }, &ctx,
                                        experts, li.in_features, li.out_features,
                                        int64_t{desc.quant.bits},
                                        int64_t{desc.quant.group_size}, *scale);
    if (!type)
      return failure();
    declare(role, layer, type, tensor);
    quantized[{role, layer}] = true;
    return success();
  }

  LogicalResult declareWeights() {
    if (failed(declareDense(Role::EMBED, -1)))
      return failure();
    for (int64_t l = 0; l < hp.num_layers; ++l) {
      for (Role role : {Role::INPUT_NORM, Role::Q_NORM, Role::K_NORM, Role::POST_NORM,
                        Role::ROUTER_BIAS})
        if (failed(declareDense(role, l)))
          return failure();
      for (Role role : {Role::Q_PROJ, Role::K_PROJ, Role::V_PROJ, Role::O_PROJ, Role::ROUTER,
                        Role::EXPERT_W1, Role::EXPERT_W3, Role::EXPERT_W2})
        if (failed(declareLinear(role, l)))
          return failure();
      if (quantized[{Role::ROUTER, l}])
        return emitError(loc) << "router '" << tensor_prefix(Role::ROUTER, l, -1)
                              << "' is quantized; the router gate must be 16-bit";
    }
    if (failed(declareDense(Role::FINAL_NORM, -1)) || failed(declareDense(Role::LM_HEAD, -1)))
      return failure();
    return success();
  }

  FlatSymbolRefAttr weight(Role role, int64_t layer = -1) { return weights.at({role, layer}); }

  RankedTensorType rows(int64_t width, Type elt, int64_t n = ShapedType::kDynamic) {
    return RankedTensorType::get({n, width}, elt);
  }

  // The graph form of a projection: dequant + matmul for int4 (moe-fuse-dequant-gemm fuses
  // them), linear for a 16-bit weight.
  Value project(Location l, Value x, Role role, int64_t layer, int64_t outWidth) {
    auto type = rows(outWidth, actType);
    if (quantized.at({role, layer})) {
      int64_t inWidth = cast<ShapedType>(x.getType()).getShape().back();
      auto matrix = DequantOp::create(b, l, RankedTensorType::get({inWidth, outWidth}, actType),
                                      weight(role, layer));
      return MatmulOp::create(b, l, type, x, matrix);
    }
    return LinearOp::create(b, l, type, x, weight(role, layer));
  }

  Value attentionBlock(Location l, int64_t layer, Value x, Value positions, Value &kv) {
    FloatAttr eps = b.getF32FloatAttr(static_cast<float>(hp.rms_norm_eps));
    Value q = project(l, x, Role::Q_PROJ, layer, hp.q_dim());
    Value k = project(l, x, Role::K_PROJ, layer, hp.kv_dim());
    Value v = project(l, x, Role::V_PROJ, layer, hp.kv_dim());
    auto norm = QKNormOp::create(b, l, q.getType(), k.getType(), q, k, weight(Role::Q_NORM, layer),
                                 weight(Role::K_NORM, layer), eps);
    auto rope = RopeOp::create(b, l, q.getType(), k.getType(), norm.getQOut(), norm.getKOut(),
                               positions, b.getI64IntegerAttr(hp.head_dim),
                               b.getI64IntegerAttr(hp.rotary_dim),
                               b.getF64FloatAttr(hp.rope_theta));
    kv = KVAppendOp::create(b, l, kvType, kv, rope.getKOut(), v, positions,
                            b.getI64IntegerAttr(layer));
    float scale = 1.0f / std::sqrt(static_cast<float>(hp.head_dim));
    Value o = AttentionOp::create(b, l, q.getType(), rope.getQOut(), kv, positions,
                                  b.getI64IntegerAttr(layer), b.getI64IntegerAttr(hp.num_heads),
                                  b.getF32FloatAttr(scale));
    return project(l, o, Role::O_PROJ, layer, hp.hidden_size);
  }

  Value moeBlock(Location l, int64_t layer, Value x) {
    Type f32 = b.getF32Type();
    int64_t e = hp.num_experts, k = hp.top_k;
    Value logits = LinearOp::create(b, l, rows(e, f32), x, weight(Role::ROUTER, layer));
    Value scores = SigmoidOp::create(b, l, logits);
    Value biased = AddBiasOp::create(b, l, scores, weight(Role::ROUTER_BIAS, layer));
    Value ids = TopKOp::create(b, l, rows(k, b.getI32Type()), biased, b.getI64IntegerAttr(k));
    Value picked = GatherOp::create(b, l, rows(k, f32), scores, ids);
    Value routeWeights = RenormalizeOp::create(b, l, picked);

    auto slots = [&](int64_t width) {
      return RankedTensorType::get({ShapedType::kDynamic, k, width}, actType);
    };
    int64_t inter = hp.intermediate_size;
    Value gate = ExpertLinearOp::create(b, l, slots(inter), x, ids, weight(Role::EXPERT_W1, layer));
    Value up = ExpertLinearOp::create(b, l, slots(inter), x, ids, weight(Role::EXPERT_W3, layer));
    Value act = SiluMulOp::create(b, l, gate, up);
    Value down = ExpertLinearOp::create(b, l, slots(hp.hidden_size), act, ids,
                                        weight(Role::EXPERT_W2, layer));
    return CombineOp::create(b, l, rows(hp.hidden_size, actType), down, routeWeights);
  }

  void buildProgram(StringRef name, bool lastRowOnly) {
    auto ids = RankedTensorType::get({ShapedType::kDynamic}, b.getI32Type());
    int64_t outRows = lastRowOnly ? 1 : ShapedType::kDynamic;
    auto logitsType = rows(hp.vocab_size, b.getF32Type(), outRows);
    auto fnType = b.getFunctionType({ids, ids, kvType}, {logitsType});
    OpBuilder::InsertionGuard guard(b);
    auto fn = func::FuncOp::create(b, loc, name, fnType);
    b.setInsertionPointToStart(fn.addEntryBlock());
    Value tokens = fn.getArgument(0), positions = fn.getArgument(1), kv = fn.getArgument(2);
    FloatAttr eps = b.getF32FloatAttr(static_cast<float>(hp.rms_norm_eps));

    Value h = EmbedOp::create(b, loc, rows(hp.hidden_size, actType), tokens, weight(Role::EMBED));
    for (int64_t layer = 0; layer < hp.num_layers; ++layer) {
      Location l = NameLoc::get(b.getStringAttr("model.layers." + std::to_string(layer)), loc);
      Value x = RmsNormOp::create(b, l, h, weight(Role::INPUT_NORM, layer), eps);
      h = AddOp::create(b, l, h, attentionBlock(l, layer, x, positions, kv));
      Value m = RmsNormOp::create(b, l, h, weight(Role::POST_NORM, layer), eps);
      h = AddOp::create(b, l, h, moeBlock(l, layer, m));
    }
    if (lastRowOnly)
      h = TakeLastOp::create(b, loc, rows(hp.hidden_size, actType, 1), h);
    Value n = RmsNormOp::create(b, loc, h, weight(Role::FINAL_NORM), eps);
    Value logits = LMHeadOp::create(b, loc, logitsType, n, weight(Role::LM_HEAD));
    func::ReturnOp::create(b, loc, logits);
  }
};

} // namespace

FailureOr<OwningOpRef<ModuleOp>> buildMoEModule(MLIRContext &context, const ModelDesc &desc,
                                                const BuildOptions &options) {
  context.loadDialect<MoEDialect, func::FuncDialect>();
  return GraphBuilder(context, desc, options).build();
}

} // namespace mm::minimax_m2
