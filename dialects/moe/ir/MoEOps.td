//===- MoEOps.td - ops of the moe dialect ---------------------------------===//
//
// Graph-level ops follow minimax-m2-spec.md section 3 one step at a time; the fused ops at the end
// are what the mm-moe-fuse passes produce. Ops that name a weight implement SymbolUserOpInterface:
// the verifier looks the symbol up (cached per verification) and checks it against the operands.
//
//===----------------------------------------------------------------------===//
#ifndef MM_MOE_OPS_TD
#define MM_MOE_OPS_TD

include "dialects/moe/ir/MoEBase.td"
include "dialects/moe/ir/MoETypes.td"
include "mlir/IR/SymbolInterfaces.td"
include "mlir/Interfaces/InferTypeOpInterface.td"
include "mlir/Interfaces/SideEffectInterfaces.td"

def MoE_Act : RankedTensorOf<[BF16, F16]>;        // activations (model dtype)
def MoE_F32Tensor : RankedTensorOf<[F32]>;        // router scores, routing weights, logits
def MoE_I32Tensor : RankedTensorOf<[I32]>;        // token ids, positions, expert ids

// An op that names weights: its verifySymbolUses checks them against the operands.
class MoE_WeightUserOp<string mnemonic, list<Trait> traits = []>
    : MoE_Op<mnemonic, !listconcat(traits, [Pure,
          DeclareOpInterfaceMethods<SymbolUserOpInterface>])>;

//===----------------------------------------------------------------------===//
// Weights
//===----------------------------------------------------------------------===//

def MoE_WeightOp : MoE_Op<"weight", [Symbol, HasParent<"::mlir::ModuleOp">]> {
  let summary = "a weight symbol bound to a checkpoint tensor (name or prefix), never data";
  let description = [{
    Declares a weight by reference. For `!moe.qweight` the `tensor` attribute is the Linear's
    prefix (`.qweight`, `.qzeros`, `.scales` are appended by the binder); for
    `!moe.dense_weight` it is the full tensor name. A per-expert qweight covers all experts of
    a layer, and its prefix contains `{E}`, replaced by the expert index.

    ```mlir
    moe.weight @l0.q_proj : !moe.qweight<3072x6144, bits = 4, group = 128, scale = f16>
        {tensor = "model.layers.0.self_attn.q_proj"}
    moe.weight @l0.expert_w1 : !moe.qweight<192x3072x1536, bits = 4, group = 128, scale = f16>
        {tensor = "model.layers.0.block_sparse_moe.experts.{E}.w1"}
    moe.weight @norm : !moe.dense_weight<3072xbf16> {tensor = "model.norm.weight"}
    ```
  }];
  let arguments = (ins SymbolNameAttr:$sym_name, TypeAttrOf<MoE_AnyWeight>:$weight_type,
                       StrAttr:$tensor);
  let assemblyFormat = "$sym_name `:` $weight_type attr-dict";
  let hasVerifier = 1;
}

def MoE_DequantOp : MoE_WeightUserOp<"dequant"> {
  let summary = "materializes an int4 weight as a dense K x N matrix (unfused graph form)";
  let description = [{
    `w[k, n] = (q[k, n] - 8) * scale[k / group, n]` in the activation dtype. Only the graph
    level uses it; `moe-fuse-dequant-gemm` folds it into `moe.dequant_gemm`.

    ```mlir
    %w = moe.dequant @l0.q_proj : tensor<3072x6144xbf16>
    ```
  }];
  let arguments = (ins FlatSymbolRefAttr:$weight);
  let results = (outs MoE_Act:$result);
  let assemblyFormat = "$weight attr-dict `:` type($result)";
}

def MoE_MatmulOp : MoE_Op<"matmul", [Pure]> {
  let summary = "x[T, K] * w[K, N] with fp32 accumulation";
  let description = [{
    ```mlir
    %y = moe.matmul %x, %w : tensor<?x3072xbf16>, tensor<3072x6144xbf16> -> tensor<?x6144xbf16>
    ```
  }];
  let arguments = (ins MoE_Act:$input, MoE_Act:$matrix);
  let results = (outs MoE_Act:$result);
  let assemblyFormat = [{
    $input `,` $matrix attr-dict `:` type($input) `,` type($matrix) `->` type($result)
  }];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Embedding, norms, linears
//===----------------------------------------------------------------------===//

def MoE_EmbedOp : MoE_WeightUserOp<"embed"> {
  let summary = "looks up token ids in the embedding table (no scaling)";
  let description = [{
    ```mlir
    %h = moe.embed %tokens, @embed : tensor<?xi32> -> tensor<?x3072xbf16>
    ```
  }];
  let arguments = (ins 1DTensorOf<[I32]>:$tokens, FlatSymbolRefAttr:$weight);
  let results = (outs MoE_Act:$result);
  let assemblyFormat = "$tokens `,` $weight attr-dict `:` type($tokens) `->` type($result)";
  let hasVerifier = 1;
}

def MoE_RmsNormOp : MoE_WeightUserOp<"rms_norm", [AllTypesMatch<["input", "result"]>]> {
  let summary = "RMSNorm over the last dimension: w * x / sqrt(mean(x^2) + eps), fp32 statistics";
  let description = [{
    Plain weight (no `1 + w` offset). Used for the input, post-attention and final norms.

    ```mlir
    %n = moe.rms_norm %h, @l0.input_norm {eps = 1.0e-06 : f32} : tensor<?x3072xbf16>
    ```
  }];
  let arguments = (ins MoE_Act:$input, FlatSymbolRefAttr:$weight, F32Attr:$eps);
  let results = (outs MoE_Act:$result);
  let assemblyFormat = "$input `,` $weight attr-dict `:` type($input)";
  let hasVerifier = 1;
}

def MoE_W4LinearOp : MoE_WeightUserOp<"w4_linear"> {
  let summary = "W4A16 linear y = x * dequant(w), fp32 accumulation (compact graph form)";
  let description = [{
    Equivalent to `moe.dequant` + `moe.matmul`; `moe-fuse-dequant-gemm` turns either form
    into `moe.dequant_gemm`.

    ```mlir
    %y = moe.w4_linear %x, @l0.o_proj : tensor<?x6144xbf16> -> tensor<?x3072xbf16>
    ```
  }];
  let arguments = (ins MoE_Act:$input, FlatSymbolRefAttr:$weight);
  let results = (outs MoE_Act:$result);
  let assemblyFormat = "$input `,` $weight attr-dict `:` type($input) `->` type($result)";
  let hasVerifier = 1;
}

def MoE_LinearOp : MoE_WeightUserOp<"linear"> {
  let summary = "16-bit linear y = x * w^T with w [N, K]; operands upcast, fp32 accumulation";
  let description = [{
    The result dtype is the op's: f32 for the router logits (spec 3.4 recommends a full fp32
    router GEMM), the activation dtype for unquantized projections.

    ```mlir
    %logits = moe.linear %x, @l0.router : tensor<?x3072xbf16> -> tensor<?x192xf32>
    ```
  }];
  let arguments = (ins MoE_Act:$input, FlatSymbolRefAttr:$weight);
  let results = (outs RankedTensorOf<[BF16, F16, F32]>:$result);
  let assemblyFormat = "$input `,` $weight attr-dict `:` type($input) `->` type($result)";
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Attention
//===----------------------------------------------------------------------===//

def MoE_QKNormOp : MoE_WeightUserOp<"qk_norm", [AllTypesMatch<["q", "q_out"]>,
                                                 AllTypesMatch<["k", "k_out"]>]> {
  let summary = "RMSNorm of q and of k, each over the whole projection (all heads)";
  let description = [{
    MiniMax-M2's `qk_norm_type = per_layer`: the statistics of q span all Nq*D elements of a
    token (not one head), likewise k. Runs before RoPE.

    ```mlir
    %qn, %kn = moe.qk_norm %q, %k, @l0.q_norm, @l0.k_norm {eps = 1.0e-06 : f32}
        : tensor<?x6144xbf16>, tensor<?x1024xbf16>
    ```
  }];
  let arguments = (ins MoE_Act:$q, MoE_Act:$k, FlatSymbolRefAttr:$q_weight,
                       FlatSymbolRefAttr:$k_weight, F32Attr:$eps);
  let results = (outs MoE_Act:$q_out, MoE_Act:$k_out);
  let assemblyFormat = [{
    $q `,` $k `,` $q_weight `,` $k_weight attr-dict `:` type($q) `,` type($k)
  }];
  let hasVerifier = 1;
}

def MoE_RopeOp : MoE_Op<"rope", [Pure, AllTypesMatch<["q", "q_out"]>,
                                 AllTypesMatch<["k", "k_out"]>]> {
  let summary = "partial NeoX RoPE on the first rotary_dim dims of every head of q and k";
  let description = [{
    For each head, dims `i` and `i + rotary_dim/2` (i < rotary_dim/2) rotate by
    `pos * theta^(-2i/rotary_dim)` (fp32 angles); dims `rotary_dim..head_dim` pass through.

    ```mlir
    %qr, %kr = moe.rope %qn, %kn, %positions
        {head_dim = 128 : i64, rotary_dim = 64 : i64, theta = 5.0e+06 : f64}
        : tensor<?x6144xbf16>, tensor<?x1024xbf16>, tensor<?xi32>
    ```
  }];
  let arguments = (ins MoE_Act:$q, MoE_Act:$k, 1DTensorOf<[I32]>:$positions,
                       I64Attr:$head_dim, I64Attr:$rotary_dim, F64Attr:$theta);
  let results = (outs MoE_Act:$q_out, MoE_Act:$k_out);
  let assemblyFormat = [{
    $q `,` $k `,` $positions attr-dict `:` type($q) `,` type($k) `,` type($positions)
  }];
  let hasVerifier = 1;
}

def MoE_KVAppendOp : MoE_Op<"kv_append", [MemoryEffects<[MemWrite]>,
                                          AllTypesMatch<["cache", "result"]>]> {
  let summary = "writes k and v of each token into the cache of one layer at its position";
  let description = [{
    Prefill: all rows belong to one sequence; decode: row b is sequence slot b. The result is
    the cache after the write; attention reads it, so reads follow writes in SSA order.

    ```mlir
    %kv1 = moe.kv_append %kv0, %kr, %v, %positions {layer = 0 : i64}
        : !moe.kv_cache<layers = 62, kv_heads = 8, head_dim = 128, dtype = bf16>,
          tensor<?x1024xbf16>, tensor<?x1024xbf16>, tensor<?xi32>
    ```
  }];
  let arguments = (ins MoE_KVCacheType:$cache, MoE_Act:$k, MoE_Act:$v,
                       1DTensorOf<[I32]>:$positions, I64Attr:$layer);
  let results = (outs MoE_KVCacheType:$result);
  let assemblyFormat = [{
    $cache `,` $k `,` $v `,` $positions attr-dict `:` type($cache) `,` type($k) `,` type($v)
    `,` type($positions)
  }];
  let hasVerifier = 1;
}

def MoE_AttentionOp : MoE_Op<"attention", [Pure]> {
  let summary = "causal GQA attention of q against one layer of the cache, fp32 softmax";
  let description = [{
    Row t attends cache positions `0..positions[t]` of its sequence (causal in prefill, the
    whole context in decode); query head h reads kv head `h / (num_heads / kv_heads)`.

    ```mlir
    %o = moe.attention %qr, %kv1, %positions
        {layer = 0 : i64, num_heads = 48 : i64, scale = 0.0883883461 : f32}
        : tensor<?x6144xbf16>, !moe.kv_cache<layers = 62, kv_heads = 8, head_dim = 128,
          dtype = bf16>, tensor<?xi32> -> tensor<?x6144xbf16>
    ```
  }];
  let arguments = (ins MoE_Act:$q, MoE_KVCacheType:$cache, 1DTensorOf<[I32]>:$positions,
                       I64Attr:$layer, I64Attr:$num_heads, F32Attr:$scale);
  let results = (outs MoE_Act:$result);
  let assemblyFormat = [{
    $q `,` $cache `,` $positions attr-dict `:` type($q) `,` type($cache) `,` type($positions)
    `->` type($result)
  }];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Router chain (graph level)
//===----------------------------------------------------------------------===//

def MoE_SigmoidOp : MoE_Op<"sigmoid", [Pure, AllTypesMatch<["input", "result"]>]> {
  let summary = "elementwise fp32 sigmoid (router scores)";
  let description = [{
    ```mlir
    %s = moe.sigmoid %logits : tensor<?x192xf32>
    ```
  }];
  let arguments = (ins MoE_F32Tensor:$input);
  let results = (outs MoE_F32Tensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($input)";
}

def MoE_AddBiasOp : MoE_WeightUserOp<"add_bias", [AllTypesMatch<["input", "result"]>]> {
  let summary = "adds a per-expert bias (e_score_correction_bias) to router scores, fp32";
  let description = [{
    The biased scores only select experts; the weights come from the unbiased scores.

    ```mlir
    %c = moe.add_bias %s, @l0.router_bias : tensor<?x192xf32>
    ```
  }];
  let arguments = (ins MoE_F32Tensor:$input, FlatSymbolRefAttr:$bias);
  let results = (outs MoE_F32Tensor:$result);
  let assemblyFormat = "$input `,` $bias attr-dict `:` type($input)";
  let hasVerifier = 1;
}

def MoE_TopKOp : MoE_Op<"topk", [Pure]> {
  let summary = "indices of the k largest scores per row (ties: lower expert id wins)";
  let description = [{
    ```mlir
    %ids = moe.topk %c {k = 8 : i64} : tensor<?x192xf32> -> tensor<?x8xi32>
    ```
  }];
  let arguments = (ins MoE_F32Tensor:$input, I64Attr:$k);
  let results = (outs MoE_I32Tensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($input) `->` type($result)";
  let hasVerifier = 1;
}

def MoE_GatherOp : MoE_Op<"gather", [Pure]> {
  let summary = "per row, picks the scores at the given expert ids";
  let description = [{
    ```mlir
    %w = moe.gather %s, %ids : tensor<?x192xf32>, tensor<?x8xi32> -> tensor<?x8xf32>
    ```
  }];
  let arguments = (ins MoE_F32Tensor:$input, MoE_I32Tensor:$indices);
  let results = (outs MoE_F32Tensor:$result);
  let assemblyFormat = [{
    $input `,` $indices attr-dict `:` type($input) `,` type($indices) `->` type($result)
  }];
  let hasVerifier = 1;
}

def MoE_RenormalizeOp : MoE_Op<"renormalize", [Pure, AllTypesMatch<["input", "result"]>]> {
  let summary = "divides each row by its sum (routing weights sum to 1)";
  let description = [{
    ```mlir
    %wn = moe.renormalize %w : tensor<?x8xf32>
    ```
  }];
  let arguments = (ins MoE_F32Tensor:$input);
  let results = (outs MoE_F32Tensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($input)";
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Expert FFN pieces (graph level)
//===----------------------------------------------------------------------===//

def MoE_ExpertLinearOp : MoE_WeightUserOp<"expert_linear"> {
  let summary = "per token and routing slot, the W4A16 linear of the selected expert";
  let description = [{
    `y[t, j] = x[t] * dequant(w[ids[t, j]])`; the input is either shared by the slots
    (`[T, K]`, the gate/up projections) or per slot (`[T, k, K]`, the down projection).

    ```mlir
    %g = moe.expert_linear %x, %ids, @l0.expert_w1
        : tensor<?x3072xbf16>, tensor<?x8xi32> -> tensor<?x8x1536xbf16>
    ```
  }];
  let arguments = (ins MoE_Act:$input, MoE_I32Tensor:$ids, FlatSymbolRefAttr:$weight);
  let results = (outs MoE_Act:$result);
  let assemblyFormat = [{
    $input `,` $ids `,` $weight attr-dict `:` type($input) `,` type($ids) `->` type($result)
  }];
  let hasVerifier = 1;
}

def MoE_SiluMulOp : MoE_Op<"silu_mul", [Pure, AllTypesMatch<["gate", "up", "result"]>]> {
  let summary = "silu(gate) * up, elementwise (silu(z) = z * sigmoid(z))";
  let description = [{
    ```mlir
    %a = moe.silu_mul %g, %u : tensor<?x8x1536xbf16>
    ```
  }];
  let arguments = (ins MoE_Act:$gate, MoE_Act:$up);
  let results = (outs MoE_Act:$result);
  let assemblyFormat = "$gate `,` $up attr-dict `:` type($gate)";
}

def MoE_CombineOp : MoE_Op<"combine", [Pure]> {
  let summary = "sum over routing slots of weight * expert output, fp32 accumulation";
  let description = [{
    ```mlir
    %y = moe.combine %d, %w : tensor<?x8x3072xbf16>, tensor<?x8xf32> -> tensor<?x3072xbf16>
    ```
  }];
  let arguments = (ins MoE_Act:$input, MoE_F32Tensor:$weights);
  let results = (outs MoE_Act:$result);
  let assemblyFormat = [{
    $input `,` $weights attr-dict `:` type($input) `,` type($weights) `->` type($result)
  }];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Residual, head, sampling
//===----------------------------------------------------------------------===//

def MoE_AddOp : MoE_Op<"add", [Pure, SameOperandsAndResultType]> {
  let summary = "elementwise residual add";
  let description = [{
    ```mlir
    %h1 = moe.add %h0, %o : tensor<?x3072xbf16>
    ```
  }];
  let arguments = (ins MoE_Act:$lhs, MoE_Act:$rhs);
  let results = (outs MoE_Act:$result);
  let assemblyFormat = "$lhs `,` $rhs attr-dict `:` type($result)";
}

def MoE_TakeLastOp : MoE_Op<"take_last", [Pure]> {
  let summary = "the last row of a [T, H] activation (prefill only needs its logits)";
  let description = [{
    ```mlir
    %last = moe.take_last %h : tensor<?x3072xbf16> -> tensor<1x3072xbf16>
    ```
  }];
  let arguments = (ins MoE_Act:$input);
  let results = (outs MoE_Act:$result);
  let assemblyFormat = "$input attr-dict `:` type($input) `->` type($result)";
  let hasVerifier = 1;
}

def MoE_LMHeadOp : MoE_WeightUserOp<"lm_head"> {
  let summary = "fp32 logits = x * lm_head^T, lm_head [V, H]";
  let description = [{
    ```mlir
    %logits = moe.lm_head %n, @lm_head : tensor<?x3072xbf16> -> tensor<?x200064xf32>
    ```
  }];
  let arguments = (ins MoE_Act:$input, FlatSymbolRefAttr:$weight);
  let results = (outs MoE_F32Tensor:$result);
  let assemblyFormat = "$input `,` $weight attr-dict `:` type($input) `->` type($result)";
  let hasVerifier = 1;
}

def MoE_SampleOp : MoE_Op<"sample", [Pure]> {
  let summary = "draws one token per row (temperature 0: greedy, lower id wins ties)";
  let description = [{
    Per row: temperature, top-p nucleus and a 64-bit seed of the row's random stream.

    ```mlir
    %next = moe.sample %logits, %temperature, %top_p, %seeds
        : tensor<?x200064xf32>, tensor<?xf32>, tensor<?xf32>, tensor<?xi64> -> tensor<?xi32>
    ```
  }];
  let arguments = (ins MoE_F32Tensor:$logits, 1DTensorOf<[F32]>:$temperature,
                       1DTensorOf<[F32]>:$top_p, 1DTensorOf<[I64]>:$seeds);
  let results = (outs 1DTensorOf<[I32]>:$result);
  let assemblyFormat = [{
    $logits `,` $temperature `,` $top_p `,` $seeds attr-dict `:` type($logits) `,`
    type($temperature) `,` type($top_p) `,` type($seeds) `->` type($result)
  }];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Fused ops (produced by the mm-moe-fuse passes)
//===----------------------------------------------------------------------===//

def MoE_RouteTopKOp : MoE_WeightUserOp<"route_topk"> {
  let summary = "fused router: fp32 gate GEMM, sigmoid, +bias top-k, renormalized weights";
  let description = [{
    `s = sigmoid(x * gate^T)` in fp32; `ids = topk(s + bias)`; `weights = s[ids] / sum(s[ids])`.
    Produced by `moe-fuse-routing` from linear -> sigmoid -> add_bias -> topk -> gather ->
    renormalize.

    ```mlir
    %w, %ids = moe.route_topk %x, @l0.router, @l0.router_bias {k = 8 : i64}
        : tensor<?x3072xbf16> -> tensor<?x8xf32>, tensor<?x8xi32>
    ```
  }];
  let arguments = (ins MoE_Act:$input, FlatSymbolRefAttr:$gate, FlatSymbolRefAttr:$bias, I64Attr:$k);
  let results = (outs MoE_F32Tensor:$weights, MoE_I32Tensor:$ids);
  let assemblyFormat = [{
    $input `,` $gate `,` $bias attr-dict `:` type($input) `->` type($weights) `,` type($ids)
  }];
  let hasVerifier = 1;
}

def MoE_DequantGemmOp : MoE_WeightUserOp<"dequant_gemm"> {
  let summary = "W4A16 GEMM with dequantization in the main loop; one result per weight";
  let description = [{
    All weights share K and quantization; result i is `x * dequant(weights[i])`. With several
    weights (q|k|v after `moe-merge-qkv`) one kernel reads x once and writes each result
    directly, so the split into q, k and v costs nothing.

    ```mlir
    %y = moe.dequant_gemm %x, [@l0.o_proj] : tensor<?x6144xbf16> -> tensor<?x3072xbf16>
    %q, %k, %v = moe.dequant_gemm %x, [@l0.q_proj, @l0.k_proj, @l0.v_proj]
        : tensor<?x3072xbf16> -> tensor<?x6144xbf16>, tensor<?x1024xbf16>, tensor<?x1024xbf16>
    ```
  }];
  let arguments = (ins MoE_Act:$input, FlatSymbolRefArrayAttr:$weights);
  let results = (outs Variadic<MoE_Act>:$results);
  let assemblyFormat = "$input `,` $weights attr-dict `:` type($input) `->` type($results)";
  let hasVerifier = 1;
}

def MoE_ExpertFfnOp : MoE_WeightUserOp<"expert_ffn"> {
  let summary = "fused MoE experts: group tokens by expert, w13 GEMM + silu*mul, w2 GEMM, combine";
  let description = [{
    `y[t] = sum_j weights[t, j] * W2_e(silu(W1_e x[t]) * W3_e x[t])`, `e = ids[t, j]`, with
    w1 = gate, w3 = up, w2 = down, fp32 accumulation of the slots and one rounding.

    ```mlir
    %y = moe.expert_ffn %x, %w, %ids gate(@l0.expert_w1) up(@l0.expert_w3)
        down(@l0.expert_w2) : tensor<?x3072xbf16>, tensor<?x8xf32>, tensor<?x8xi32>
        -> tensor<?x3072xbf16>
    ```
  }];
  let arguments = (ins MoE_Act:$input, MoE_F32Tensor:$weights, MoE_I32Tensor:$ids,
                       FlatSymbolRefAttr:$w1, FlatSymbolRefAttr:$w3, FlatSymbolRefAttr:$w2);
  let results = (outs MoE_Act:$result);
  let assemblyFormat = [{
    $input `,` $weights `,` $ids `gate` `(` $w1 `)` `up` `(` $w3 `)` `down` `(` $w2 `)` attr-dict
    `:` type($input) `,` type($weights) `,` type($ids) `->` type($result)
  }];
  let hasVerifier = 1;
}

def MoE_AddRmsNormOp : MoE_WeightUserOp<"add_rms_norm", [AllTypesMatch<["lhs", "rhs", "sum",
                                                                        "normed"]>]> {
  let summary = "fused residual add and the next RMSNorm: (lhs + rhs, rms_norm(lhs + rhs))";
  let description = [{
    ```mlir
    %h1, %n1 = moe.add_rms_norm %h0, %o, @l0.post_norm {eps = 1.0e-06 : f32}
        : tensor<?x3072xbf16>
    ```
  }];
  let arguments = (ins MoE_Act:$lhs, MoE_Act:$rhs, FlatSymbolRefAttr:$weight, F32Attr:$eps);
  let results = (outs MoE_Act:$sum, MoE_Act:$normed);
  let assemblyFormat = "$lhs `,` $rhs `,` $weight attr-dict `:` type($lhs)";
  let hasVerifier = 1;
}

#endif // MM_MOE_OPS_TD
